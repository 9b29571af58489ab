"""The package's own structure (design notes, "Architecture"): import graph,
layers, where argparse lives, private modules, keyword-only public API,
module sizes, one correlation."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "stentrans"
MAX_LINES = 600
#: the package's parts from the bottom up: a part imports only from its own
#: layer's part or from the layers below (``_x``: the package-wide private
#: modules ``stentrans/_x.py``; ``""``: ``stentrans/__init__.py``)
LAYERS = [
    {"_errors", "_version"},
    {"_utils", "lattice"},
    {"grid", "metrics"},
    {"io"},
    {"pp", "lost", "datasets"},
    {"models"},
    {"tl"},
    {"pl", "report"},
    {"run"},
    {"cli"},
    {"", "__main__"},
]


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        rel = p.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


MODULES = _modules()


def _is_pkg(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _resolve(mod: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = mod.split(".") if _is_pkg(mod) else mod.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(mod: str) -> list[tuple[str, str, int]]:
    """(imported stentrans module, imported name or '', line) of every import, at any depth."""
    tree = ast.parse(MODULES[mod].read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                out.append((a.name, "", node.lineno))
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(mod, node)
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.append((sub, "", node.lineno) if sub in MODULES else (target, a.name, node.lineno))
    return [(t, n, ln) for t, n, ln in out if t == "stentrans" or t.startswith("stentrans.")]


def _graph() -> dict[str, set[str]]:
    g = {m: set() for m in MODULES}
    for m in MODULES:
        for t, _, _ in _imports(m):
            while t and t not in MODULES:  # `import stentrans.x.y` of an attribute path
                t = t.rpartition(".")[0]
            if t and t != m:
                g[m].add(t)
    return g


def _cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_the_checker_finds_a_cycle_and_resolves_relative_imports():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    node = ast.parse("from ..lattice import physical").body[0]
    assert _resolve("stentrans.models.registry", node) == "stentrans.lattice"
    assert _resolve("stentrans.models", ast.parse("from .registry import get").body[0]) == "stentrans.models.registry"


def test_no_import_cycles():
    cycles = _cycles(_graph())
    assert not cycles, f"import cycles (module- or function-level imports): {cycles}"


def test_argparse_only_under_cli():
    bad = [m for m in MODULES if not m.startswith("stentrans.cli") and any(t == "argparse" for t, _, _ in [(a.name, "", 0) for n in ast.walk(ast.parse(MODULES[m].read_text())) if isinstance(n, ast.Import) for a in n.names] + [(n.module or "", "", 0) for n in ast.walk(ast.parse(MODULES[m].read_text())) if isinstance(n, ast.ImportFrom)])]
    assert not bad, f"argparse imported outside stentrans/cli/: {bad}"
    wiring = [m for m in MODULES if not m.startswith("stentrans.cli") and ("add_argument(" in MODULES[m].read_text() or "add_parser(" in MODULES[m].read_text())]
    assert not wiring, f"command-line wiring outside stentrans/cli/: {wiring}"


@pytest.mark.parametrize("layer", ["stentrans.tl", "stentrans.pl", "stentrans.report", "stentrans.cli"])
def test_models_import_nothing_above_them(layer):
    bad = [(m, t, ln) for m in MODULES if m.startswith("stentrans.models") for t, _, ln in _imports(m) if t == layer or t.startswith(layer + ".")]
    assert not bad, f"models import from {layer}: {bad}"


def test_no_private_names_across_subpackages():
    def top(m):
        parts = m.split(".")
        return ".".join(parts[:2]) if len(parts) > 1 else m

    bad = []
    for m in MODULES:
        for t, name, ln in _imports(m):
            if name.startswith("_") and not name.startswith("__") and top(t) != top(m):
                bad.append(f"{MODULES[m].relative_to(PKG.parent)}:{ln} imports {t}.{name}")
    assert not bad, "private names imported from another part of the package:\n" + "\n".join(bad)


def test_no_module_over_the_line_limit():
    sizes = {str(p.relative_to(PKG.parent)): len(p.read_text().splitlines()) for p in MODULES.values()}
    over = {k: v for k, v in sizes.items() if v > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}"


def test_only_metrics_computes_correlations():
    words = ("corrcoef", "pearsonr", "spearmanr", ".corr(")
    bad = [m for m, p in MODULES.items() if m != "stentrans.metrics" and any(w in p.read_text() for w in words)]
    assert not bad, f"correlations computed outside stentrans/metrics.py: {bad}"


def _part(mod: str) -> str:
    """``stentrans.tl._enhance`` -> ``tl``; ``stentrans`` -> ``""``."""
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else ""


def _layer(part: str) -> int:
    for i, layer in enumerate(LAYERS):
        if part in layer:
            return i
    raise AssertionError(f"stentrans.{part} is in no layer of LAYERS: add it where it belongs")


def test_every_part_has_a_layer():
    for m in MODULES:
        _layer(_part(m))


def test_parts_import_only_from_their_layer_or_below():
    """Data flows one way: io (readers) -> pp -> models -> tl -> pl/report -> run -> cli (design notes, section 8)."""
    bad = []
    for m in MODULES:
        here = _part(m)
        for t, _, ln in _imports(m):
            there = _part(t)
            if there != here and (_layer(there) > _layer(here) or (_layer(there) == _layer(here) and there)):
                bad.append(f"{MODULES[m].relative_to(REPO)}:{ln} ({here}) imports {t} ({there})")
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


@pytest.mark.parametrize("above", ["stentrans.pl", "stentrans.report", "stentrans.run", "stentrans.cli"])
def test_tl_imports_nothing_above_it(above):
    """tl computes and returns (or stores into AnnData); drawing, tables, files and the command line are above it."""
    bad = [(m, t, ln) for m in MODULES if m.startswith("stentrans.tl") for t, _, ln in _imports(m) if t == above or t.startswith(above + ".")]
    assert not bad, f"tl imports from {above}: {bad}"


def _private_module(target: str) -> bool:
    """A module path with a private part below the top level, e.g. ``stentrans.tl._enhance``."""
    return any(p.startswith("_") and not p.startswith("__") for p in target.split(".")[2:])


def _script_imports(path: Path) -> list[tuple[str, int]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            out += [(f"{node.module}.{a.name}", node.lineno) for a in node.names] + [(node.module or "", node.lineno)]
    return [(t, ln) for t, ln in out if t.startswith("stentrans.")]


def test_no_private_module_imported_across_subpackages():
    """A subpackage's ``_modules`` are its own: others import the names it exports (scripts and benchmarks too).

    The package-wide private modules (``stentrans/_errors.py``, ``_utils.py``,
    ``_version.py``) are shared by every part of the package, not by scripts.
    """
    bad = []
    for m in MODULES:
        for t, _, ln in _imports(m):
            if _private_module(t) and _part(t) != _part(m):
                bad.append(f"{MODULES[m].relative_to(REPO)}:{ln} imports {t}")
    for folder in ("scripts", "benchmarks"):
        for path in sorted((REPO / folder).glob("*.py")):
            for t, ln in _script_imports(path):
                if any(p.startswith("_") and not p.startswith("__") for p in t.split(".")[1:]):
                    bad.append(f"{path.relative_to(REPO)}:{ln} imports {t}")
    assert not bad, "private modules imported from outside their subpackage:\n" + "\n".join(bad)


def test_the_private_module_check_sees_what_it_should():
    assert _private_module("stentrans.tl._enhance") and _private_module("stentrans.pl._patterns.figure_files")
    assert not _private_module("stentrans._utils") and not _private_module("stentrans.tl") and not _private_module("stentrans.models.registry")


@pytest.mark.parametrize("namespace", ["tl", "pp", "pl", "run"])
def test_public_functions_take_their_options_by_keyword(namespace):
    """After the data, every parameter with a default is keyword-only (scanpy's style): calls say what they set."""
    import importlib
    import inspect

    mod = importlib.import_module(f"stentrans.{namespace}")
    bad = []
    for name in mod.__all__:
        obj = getattr(mod, name)
        if not inspect.isfunction(obj):
            continue
        params = list(inspect.signature(obj).parameters.values())[1:]
        loose = [p.name for p in params if p.kind == p.POSITIONAL_OR_KEYWORD and p.default is not p.empty]
        if loose:
            bad.append(f"{namespace}.{name}: {loose}")
    assert not bad, "options that can be given by position:\n" + "\n".join(bad)


def _unused_exports(namespace: str, names) -> list[str]:
    """Names of ``stentrans.<namespace>`` that occur (as a word) in no file besides the namespace's ``__init__`` and the module defining them."""
    import importlib
    import inspect
    import re

    mod = importlib.import_module(f"stentrans.{namespace}")
    files = [p for folder in ("stentrans", "scripts", "benchmarks", "tests", "docs", "rules") for p in (REPO / folder).rglob("*") if p.suffix in (".py", ".md", ".smk")]
    files.append(REPO / "README.md")
    texts = {p.resolve(): p.read_text(errors="replace") for p in files if p.resolve() != Path(__file__).resolve()}
    out = []
    for n in names:
        obj = getattr(mod, n, None)
        home = {(PKG / namespace / "__init__.py").resolve()}
        try:
            home.add(Path(inspect.getsourcefile(obj)).resolve())
        except TypeError:  # a constant: the module it is defined in is named in the namespace's table
            pass
        word = re.compile(rf"\b{re.escape(n)}\b")
        if not any(word.search(t) for p, t in texts.items() if p not in home):
            out.append(n)
    return out


@pytest.mark.parametrize("namespace", ["tl", "pl"])
def test_every_export_is_used(namespace):
    """No name in a namespace that nothing in the repository uses (package, scripts, benchmarks, tests, docs)."""
    import importlib

    mod = importlib.import_module(f"stentrans.{namespace}")
    assert _unused_exports(namespace, ["no_such_export_anywhere"]) == ["no_such_export_anywhere"]
    unused = _unused_exports(namespace, mod.__all__)
    assert not unused, f"stentrans.{namespace} exports names used nowhere: {unused}"
