"""Malformed inputs through the real command line.

Every case runs ``python -m stentrans.cli qc BAD -o OUT`` as a subprocess and
must exit with status 2, print exactly one non-empty line on stderr naming the
file and the problem (no traceback), and leave no output behind.

The subprocesses run two at a time in one module-scoped fixture, since each
pays the package's import time; further malformed inputs go through
``cli.main`` in this process with the same checks.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]


def _w(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _spaceranger_positions(outs: Path, barcodes, header=True) -> Path:
    (outs / "spatial").mkdir(parents=True, exist_ok=True)
    n = len(barcodes)
    rows = np.arange(n) // 4
    cols = 2 * (np.arange(n) % 4) + rows % 2
    df = pd.DataFrame({"barcode": barcodes, "in_tissue": 1, "array_row": rows, "array_col": cols, "pxl_row_in_fullres": rows * 87.0, "pxl_col_in_fullres": cols * 50.0})
    f = outs / "spatial" / ("tissue_positions.csv" if header else "tissue_positions_list.csv")
    df.to_csv(f, index=False, header=header)
    return f


def _cases(d: Path) -> dict:
    """name -> (cli args after 'qc', [substrings stderr must contain])."""
    hdr = "\tg1\tg2\n"
    c = {}
    c["missing_file"] = ([str(d / "nope.tsv")], ["nope.tsv", "not found"])
    c["unknown_format"] = ([str(_w(d / "data.xlsx", "x"))], ["data.xlsx", "unknown input format"])
    c["empty_file"] = ([str(_w(d / "empty.tsv", ""))], ["empty.tsv", "empty"])
    c["empty_matrix"] = ([str(_w(d / "header_only.tsv", hdr))], ["header_only.tsv", "empty matrix"])
    c["non_numeric"] = ([str(_w(d / "nonnum.tsv", hdr + "1x1\t1\tabc\n2x1\t3\t0\n"))], ["nonnum.tsv", "non-numeric", "abc"])
    c["negative"] = ([str(_w(d / "neg.tsv", hdr + "1x1\t1\t2\n2x1\t-3\t0\n"))], ["neg.tsv", "negative", "2x1"])
    c["nan"] = ([str(_w(d / "nan.tsv", hdr + "1x1\t1\tNA\n2x1\t3\t0\n"))], ["nan.tsv", "NaN", "1x1"])
    c["duplicate_spots"] = ([str(_w(d / "dupspot.tsv", hdr + "1x1\t1\t2\n1x1\t3\t0\n"))], ["dupspot.tsv", "duplicate spot id", "1x1"])
    c["duplicate_genes"] = ([str(_w(d / "dupgene.tsv", "\tg1\tg1\n1x1\t1\t2\n2x1\t3\t0\n"))], ["dupgene.tsv", "duplicate gene", "g1"])
    c["ragged_rows"] = ([str(_w(d / "ragged.tsv", hdr + "1x1\t1\t2\n2x1\t3\t0\t5\n"))], ["ragged.tsv", "malformed"])
    c["counts_without_positions"] = ([str(_w(d / "noxy.tsv", hdr + "A\t1\t2\nB\t3\t0\n"))], ["noxy.tsv", "counts without positions"])
    # a 10x HDF5 with no spatial/ folder beside it
    h5 = d / "lonely" / "filtered_feature_bc_matrix.h5"
    h5.parent.mkdir(parents=True)
    h5.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    c["h5_without_positions"] = ([str(h5)], ["filtered_feature_bc_matrix.h5", "counts without positions"])
    # a Space Ranger folder with positions only
    outs = d / "posonly" / "outs"
    _spaceranger_positions(outs, [f"AAA{i}-1" for i in range(8)], header=False)
    c["positions_without_counts"] = ([str(outs)], ["outs", "positions without counts"])
    # a Space Ranger folder whose matrix is corrupt
    outs2 = d / "corrupt" / "outs"
    _spaceranger_positions(outs2, [f"AAA{i}-1" for i in range(8)])
    (outs2 / "filtered_feature_bc_matrix.h5").write_bytes(b"this is not HDF5")
    c["corrupt_h5"] = ([str(outs2)], ["filtered_feature_bc_matrix.h5", "cannot be read"])
    # counts + coords with no spot in common
    counts = _w(d / "counts.csv", ",g1,g2\ns1,1,2\ns2,3,0\n")
    coords = _w(d / "coords.csv", ",row,col\nt1,0,0\nt2,0,1\n")
    c["zero_overlap"] = ([str(counts), "--coords", str(coords)], ["coords.csv", "no spot id in common"])
    # coordinates: off-lattice centroid, collision, non-numeric positions
    c["off_lattice"] = ([str(_w(d / "far.tsv", hdr + "2x3\t1\t2\n5.45x3\t3\t0\n"))], ["far.tsv", "off-lattice", "5.45x3"])
    c["collision"] = ([str(_w(d / "collide.tsv", hdr + "2x3\t1\t2\n2.1x2.9\t3\t0\n"))], ["collide.tsv", "collision", "2x3", "2.1x2.9"])
    coords_bad = _w(d / "coords_bad.csv", ",row,col\ns1,0,0\ns2,zero,1\n")
    c["non_numeric_coords"] = ([str(counts), "--coords", str(coords_bad)], ["coords_bad.csv", "array_row", "zero"])
    # gzip: truncated and corrupt
    rng = np.random.default_rng(0)
    body = hdr.replace("g2", "g2\tg3") + "".join(f"{x}x{y}\t{rng.integers(9)}\t{rng.integers(9)}\t{rng.integers(9)}\n" for x in range(40) for y in range(40))
    raw = gzip.compress(body.encode())
    trunc = d / "trunc.tsv.gz"
    trunc.write_bytes(raw[: len(raw) // 2])
    c["truncated_gzip"] = ([str(trunc)], ["trunc.tsv.gz", "truncated gzip"])
    garbage = d / "garbage.csv.gz"
    garbage.write_bytes(b"\x1f\x8b" + bytes(rng.integers(0, 256, 300, dtype=np.uint8)))
    c["corrupt_gzip"] = ([str(garbage)], ["garbage.csv.gz", "gzip"])
    # an explicit lattice the data contradicts
    ok = _w(d / "square.tsv", hdr + "1x1\t1\t2\n2x1\t3\t0\n1x2\t0\t1\n")
    c["lattice_contradiction"] = ([str(ok), "--lattice", "hex"], ["square.tsv", "contradicts"])
    # QC leaves nothing: every gene is seen in at most half of the spots
    sparse_rows = "".join(f"{x}x{y}\t{int((x + y) % 2 == 0)}\t{int((x + y) % 2 == 1)}\n" for x in range(5) for y in range(5))
    c["qc_nothing_left"] = ([str(_w(d / "sparse.tsv", hdr + sparse_rows)), "--min-spot-fraction", "0.99"], ["sparse.tsv", "min_spot_fraction", "no gene"])
    return c


# run through the real CLI in a subprocess: the inputs the design names
SUBPROCESS = [
    "missing_file",
    "unknown_format",
    "empty_matrix",
    "non_numeric",
    "negative",
    "nan",
    "duplicate_spots",
    "duplicate_genes",
    "counts_without_positions",
    "zero_overlap",
    "off_lattice",
    "truncated_gzip",
    "qc_nothing_left",
    "positions_without_counts",
]
# the same checks through ``cli.main`` in this process (saves the package
# import time per case)
IN_PROCESS = [
    "empty_file",
    "ragged_rows",
    "h5_without_positions",
    "corrupt_h5",
    "collision",
    "non_numeric_coords",
    "corrupt_gzip",
    "lattice_contradiction",
]
CASES = SUBPROCESS + IN_PROCESS


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    return _cases(d), d


@pytest.fixture(scope="module")
def subprocess_results(cases):
    cs, d = cases
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("STENTRANS_THREADS", "1")

    def run(name):
        args, _ = cs[name]
        out = d / "out" / f"{name}.h5ad"
        proc = subprocess.run([sys.executable, "-m", "stentrans.cli", "qc", *args, "-o", str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        return name, (proc.returncode, proc.stderr)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(run, SUBPROCESS))


def _check(name, rc, err, out, expect):
    assert rc == 2, f"{name}: exit {rc}; stderr:\n{err}"
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, f"{name}: expected one line on stderr, got:\n{err}"
    assert "Traceback" not in err
    line = lines[0]
    assert line.startswith("stentrans qc: error: ")
    for s in expect:
        assert s in line, f"{s!r} not in {line!r}"
    assert not out.exists()
    if out.parent.exists():
        assert not list(out.parent.glob(f".{out.name}*"))  # no partial output


@pytest.mark.parametrize("name", SUBPROCESS)
def test_bad_input_cli_subprocess(cases, subprocess_results, name):
    cs, d = cases
    rc, err = subprocess_results[name]
    _check(name, rc, err, d / "out" / f"{name}.h5ad", cs[name][1])


@pytest.mark.parametrize("name", IN_PROCESS)
def test_bad_input_cli_in_process(cases, name, capsys):
    from stentrans import cli

    cs, d = cases
    args, expect = cs[name]
    out = d / "out" / f"{name}.h5ad"
    capsys.readouterr()
    rc = cli.main(["qc", *args, "-o", str(out)])
    _check(name, rc, capsys.readouterr().err, out, expect)


def test_case_list():
    assert len(SUBPROCESS) >= 12 and len(set(CASES)) == len(CASES)
