"""The package's own structure (design notes, "Architecture"): import graph,
where argparse lives, what models may import, module sizes, one correlation."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "stentrans"
MAX_LINES = 600


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
