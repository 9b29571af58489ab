"""The command line's help and its output checks (issue 30, items 2 and 4)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stentrans.cli import build_parser
from stentrans.datasets import simulate


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _options():
    for name, p in _commands().items():
        for a in p._actions:
            if not isinstance(a, argparse._HelpAction):
                yield name, a


def _cli(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stentrans.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_every_flag_of_every_command_has_help():
    missing = [f"{name} {a.option_strings or a.dest}" for name, a in _options() if not a.help or a.help == argparse.SUPPRESS or not a.help.strip()]
    assert not missing, f"flags without help: {missing}"


def test_negated_flags_say_what_they_turn_off():
    negated = [(name, a) for name, a in _options() if any("no-" in o for o in a.option_strings)]
    assert len(negated) >= 8  # --robust-no-keep-measured, --no-pos, --no-filter ...
    bad = [f"{name} {a.option_strings}: {a.help!r}" for name, a in negated if not a.help.startswith("turn off")]
    assert not bad, "negated flags whose help does not say what they turn off:\n" + "\n".join(bad)
    keep = next(a for name, a in negated if name == "enhance" and "--robust-no-keep-measured" in a.option_strings)
    assert keep.help.startswith("turn off (on by default): measured spots keep their measured values")


def test_enhance_help_groups_options_by_method_default_first():
    from stentrans.models import registry

    text = _commands()["enhance"].format_help()
    titles = [g.title for g in _commands()["enhance"]._action_groups]
    robust = next(i for i, t in enumerate(titles) if t.startswith("the robust method (the default"))
    network = next(i for i, t in enumerate(titles) if t.startswith("network methods"))
    assert registry.DEFAULT_METHOD == "robust" and robust < network
    # each group holds its method's options: the paper network's epochs after every robust option
    assert text.index("--robust-no-keep-measured") < text.index("--epochs EPOCHS") and text.index("--robust-net") < text.index("--model MODEL.pt")
    assert "--resume" in text[text.index("network methods") :]


def test_counts_without_positions_names_the_flag_enhance_has(tmp_path):
    """A counts table without spot ids: the error points at --coords, which enhance (every command that reads) has."""
    a = simulate("square", n_genes=6, seed=1, size="st")
    counts = tmp_path / "counts.csv"
    coords = tmp_path / "coords.csv"
    X = a.X.toarray() if hasattr(a.X, "toarray") else a.X
    ids = [f"s{i}" for i in range(a.n_obs)]
    with counts.open("w") as fh:
        fh.write("spot," + ",".join(a.var_names) + "\n")
        for i, row in zip(ids, X):
            fh.write(i + "," + ",".join(f"{v:g}" for v in row) + "\n")
    with coords.open("w") as fh:
        fh.write("spot,row,col\n")
        for i, (r, c) in zip(ids, a.obs[["array_row", "array_col"]].to_numpy()):
            fh.write(f"{i},{int(r)},{int(c)}\n")
    out = tmp_path / "out.h5ad"
    r = _cli("enhance", counts, "-o", out, "--method", "linear", "--no-filter")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "--coords FILE" in r.stderr and not out.exists()
    r = _cli("enhance", counts, "--coords", coords, "-o", out, "--method", "linear", "--no-filter")
    assert r.returncode == 0, r.stderr
    assert out.is_file()


def _unwritable_dir() -> Path | None:
    """A folder this process cannot create files in (root writes anywhere but on read-only file systems such as /sys)."""
    for d in (Path("/sys"), Path("/proc")):
        try:
            probe = d / ".stentrans-probe"
            probe.touch()
            probe.unlink()
        except OSError:
            return d
    return None


@pytest.mark.parametrize("case", ["folder", "unwritable", "under_a_file", "suffix"])
def test_enhance_checks_its_output_before_any_work(tmp_path, case):
    """A bad -o: one line naming it, exit 2, nothing written, and no input read (the input here does not even exist)."""
    missing_input = tmp_path / "no_such_input.h5ad"
    if case == "folder":
        out = tmp_path / "already_a_folder.h5ad"
        out.mkdir()
        expect = "is an existing folder"
    elif case == "unwritable":
        d = _unwritable_dir()
        if d is None:
            pytest.skip("no unwritable folder on this system")
        out = d / "enhanced.h5ad"
        expect = "cannot be written"
    elif case == "under_a_file":
        (tmp_path / "plain_file").write_text("x")
        out = tmp_path / "plain_file" / "enhanced.h5ad"
        expect = "is a file, not a folder"
    else:
        out = tmp_path / "enhanced.txt"
        expect = "must end in .h5ad or .zarr"
    before = sorted(p.name for p in tmp_path.iterdir())
    r = _cli("enhance", missing_input, "-o", out)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(out) in lines[0] and expect in lines[0] and "Traceback" not in r.stderr, r.stderr
    assert "no_such_input" not in lines[0]  # the output was checked first
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if case == "folder":
        assert not any(out.iterdir())


@pytest.mark.parametrize(
    "command",
    [
        ["simulate", "--size", "st"],
        ["qc", "IN"],
        ["bin", "IN", "--spacing", "10", "--lattice", "hex"],
        ["evaluate", "IN"],
        ["patterns", "IN"],
        ["train", "IN"],
    ],
)
def test_every_command_that_writes_checks_its_output_first(tmp_path, command):
    (tmp_path / "plain_file").write_text("x")
    data_file = command[0] in ("simulate", "qc", "bin")
    out = tmp_path / "out.txt" if data_file else tmp_path / "plain_file" / "out"
    args = [str(tmp_path / "no_such_input.h5ad") if c == "IN" else c for c in command]
    r = _cli(*args, "-o", out)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(out) in lines[0] and "no_such_input" not in lines[0], r.stderr
    assert ("must end in .h5ad" in lines[0]) if data_file else ("is a file, not a folder" in lines[0] or "not a folder" in lines[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain_file"]


def test_the_check_leaves_no_probe_behind(tmp_path):
    from stentrans.run import check_output

    assert check_output(tmp_path / "sub" / "x.h5ad", suffixes=(".h5ad",)) == tmp_path / "sub" / "x.h5ad"
    assert check_output(tmp_path / "x.ZARR", suffixes=(".h5ad", ".zarr")).name == "x.ZARR"
    assert not list(tmp_path.iterdir()) and not os.path.exists(tmp_path / "sub")
