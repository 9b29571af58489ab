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


# ---------------------------------------------------------------------------
# issue 19: inputs that broke things, through `enhance` (the command that
# would write) and `patterns`, as subprocesses
# ---------------------------------------------------------------------------
def _write_h5ad(path: Path, X, obs_rc, var_names) -> Path:
    import anndata as ad

    a = ad.AnnData(X=np.asarray(X, dtype=np.float64), obs=pd.DataFrame({"array_row": obs_rc[:, 0], "array_col": obs_rc[:, 1]}, index=[f"s{i}" for i in range(len(obs_rc))]), var=pd.DataFrame(index=var_names))
    a.write_h5ad(path)
    return path


def _write_10x_h5(path: Path, X, barcodes, genes) -> Path:
    """The 10x feature-barcode HDF5 layout (CSC of genes x barcodes)."""
    import h5py
    import scipy.sparse as sp

    M = sp.csr_matrix(np.asarray(X))
    with h5py.File(path, "w") as f:
        g = f.create_group("matrix")
        g.create_dataset("barcodes", data=np.array([b.encode() for b in barcodes]))
        g.create_dataset("data", data=M.data.astype(np.int32))
        g.create_dataset("indices", data=M.indices.astype(np.int64))
        g.create_dataset("indptr", data=M.indptr.astype(np.int64))
        g.create_dataset("shape", data=np.array([M.shape[1], M.shape[0]], dtype=np.int32))
        fg = g.create_group("features")
        fg.create_dataset("_all_tag_keys", data=np.array([b"genome"]))
        fg.create_dataset("id", data=np.array([f"ENSG{i:05d}".encode() for i in range(len(genes))]))
        fg.create_dataset("name", data=np.array([s.encode() for s in genes]))
        fg.create_dataset("feature_type", data=np.array([b"Gene Expression"] * len(genes)))
        fg.create_dataset("genome", data=np.array([b"GRCh38"] * len(genes)))
    return path


def _st_block(n=5, genes=("g1", "g2", "g3"), seed=0):
    rng = np.random.default_rng(seed)
    ids = [f"{x}x{y}" for x in range(1, n + 1) for y in range(1, n + 1)]
    vals = rng.integers(0, 9, size=(len(ids), len(genes)))
    vals[:, 0] += 1
    return ids, list(genes), vals


def _st_text(ids, genes, vals, header=None) -> str:
    head = header if header is not None else "\t" + "\t".join(genes)
    return head + "\n" + "".join(f"{i}\t" + "\t".join(str(v) for v in row) + "\n" for i, row in zip(ids, vals))


def _cases_19(d: Path) -> dict:
    """name -> (command, args, [substrings the error line must contain])."""
    d.mkdir(parents=True, exist_ok=True)
    ids, genes, vals = _st_block()
    c = {}
    # spot ids that would make a grid of 10**12 columns
    huge = list(ids)
    huge[3] = "1000000000000x1"
    c["huge_spot_id"] = ("enhance", [str(_w(d / "huge_id.tsv", _st_text(huge, genes, vals)))], ["huge_id.tsv", "array_col", "limit of 32768"])
    # a Space Ranger positions file with array_row 10**9
    outs = d / "huge_row" / "outs"
    bcs = [f"AAC{i:03d}-1" for i in range(12)]
    f = _spaceranger_positions(outs, bcs)
    pos = pd.read_csv(f)
    pos.loc[5, "array_row"] = 10**9
    pos.loc[5, "array_col"] = 10**9 + 1
    pos.to_csv(f, index=False)
    _write_10x_h5(outs / "filtered_feature_bc_matrix.h5", np.arange(1, 37).reshape(12, 3), bcs, ["g1", "g2", "g3"])
    c["huge_array_row"] = ("enhance", [str(outs)], ["tissue_positions.csv", "array_row", "limit of 32768"])
    # counts that are no counts
    v = vals.astype(object)
    v[7, 1] = "1e308"
    c["count_1e308"] = ("enhance", [str(_w(d / "count_1e308.tsv", _st_text(ids, genes, v)))], ["count_1e308.tsv", "counts", "1e+308", ids[7], "g2"])
    v = vals.astype(object)
    v[2, 2] = "inf"
    c["count_inf"] = ("enhance", [str(_w(d / "count_inf.tsv", _st_text(ids, genes, v)))], ["count_inf.tsv", "counts", "inf", ids[2], "g3"])
    X = vals.astype(np.float64)
    X[4, 0] = 1e308
    rc = np.array([[int(s.split("x")[1]), int(s.split("x")[0])] for s in ids])
    c["count_1e308_h5ad"] = ("enhance", [str(_write_h5ad(d / "count_1e308.h5ad", X, rc, genes))], ["count_1e308.h5ad", "X", "1e+308", "'s4'", "'g1'"])
    X = vals.astype(np.float64)
    X[6, 2] = -2
    c["count_negative_h5ad"] = ("enhance", [str(_write_h5ad(d / "count_neg.h5ad", X, rc, genes))], ["count_neg.h5ad", "X", "negative count -2", "'s6'"])
    # a header with one gene name missing
    c["empty_gene_name"] = ("enhance", [str(_w(d / "empty_gene.tsv", _st_text(ids, genes, vals, header="\tg1\t\tg3")))], ["empty_gene.tsv", "header", "column 3"])
    c["empty_gene_name_h5ad"] = ("enhance", [str(_write_h5ad(d / "empty_gene.h5ad", vals, rc, ["g1", "", "g3"]))], ["empty_gene.h5ad", "genes", "gene 2 of 3"])
    # too few spots for the robust variant's self-supervision: the file is named
    c["too_few_spots"] = ("enhance", [str(_w(d / "few.tsv", "\tg1\tg2\tg3\n1x1\t3\t4\t5\n2x1\t1\t2\t8\n3x1\t4\t4\t1\n1x2\t5\t1\t0\n"))], ["few.tsv", "too few spots"])
    # a malformed GMT: the error line stands alone
    c["malformed_gmt"] = ("patterns", [str(_w(d / "ok.tsv", _st_text(ids, genes, vals))), "--gmt", str(_w(d / "bad.gmt", "SET1 no tabs here\n")), "--top", "3"], ["bad.gmt", "line 1", "expected 'name<TAB>description<TAB>gene...'"])
    return c


SUBPROCESS_19 = ["huge_spot_id", "huge_array_row", "count_1e308", "count_inf", "count_1e308_h5ad", "count_negative_h5ad", "empty_gene_name", "empty_gene_name_h5ad", "too_few_spots", "malformed_gmt"]


@pytest.fixture(scope="module")
def results_19(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad19")
    cs = _cases_19(d / "in")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("STENTRANS_THREADS", "1")

    def run(name):
        cmd, args, _ = cs[name]
        out = d / "out" / (f"{name}.h5ad" if cmd == "enhance" else name)
        flag = "-o" if cmd == "enhance" else "--outdir"
        proc = subprocess.run([sys.executable, "-m", "stentrans.cli", cmd, *args, flag, str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        return name, (proc.returncode, proc.stderr, out)

    # one process (the first) imports everything alone: the rest find warm file caches
    first = run(SUBPROCESS_19[0])
    with ThreadPoolExecutor(max_workers=2) as pool:
        rest = dict(pool.map(run, SUBPROCESS_19[1:]))
    return cs, {first[0]: first[1], **rest}


@pytest.mark.parametrize("name", SUBPROCESS_19)
def test_issue19_bad_input_subprocess(results_19, name):
    cs, res = results_19
    cmd, _, expect = cs[name]
    rc, err, out = res[name]
    assert rc == 2, f"{name}: exit {rc}; stderr:\n{err}"
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    prefix = f"stentrans {cmd}: error: "
    errors = [ln for ln in lines if ln.startswith(prefix)]
    assert len(errors) == 1 and lines[-1] == errors[0], f"{name}: the error must be one line of its own:\n{err}"
    if cmd == "enhance":
        assert len(lines) == 1, f"{name}: expected one line on stderr, got:\n{err}"
    else:
        # patterns logs its Sepal progress first: whole log lines, nothing glued to the error
        assert all(ln.startswith("INFO: ") for ln in lines[:-1]), err
        assert prefix not in lines[-1][len(prefix):]
    for s in expect:
        assert s in errors[0], f"{s!r} not in {errors[0]!r}"
    if cmd == "enhance":
        assert not out.exists()
        if out.parent.exists():
            assert not list(out.parent.glob(f".{out.name}*")) and not list(out.parent.glob(f"{out.name}*"))


def test_make_names_ids_read_by_info_subprocess(tmp_path):
    ids, genes, vals = _st_block(4)
    f = _w(tmp_path / "from_r.tsv", _st_text([f"X{i}" for i in ids[:-1]] + ["X16.92x9.015"], genes, vals))
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run([sys.executable, "-m", "stentrans.cli", "info", str(f)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "spots: 16" in proc.stdout and "lattice: square" in proc.stdout


def test_error_line_stands_alone_after_a_partial_line(capsys):
    """A progress bar (or a library) that left the cursor mid-line does not glue onto the error."""
    import stentrans.cli as cli_pkg

    capsys.readouterr()
    tracker = cli_pkg._LineTracker(sys.stderr)
    saved = sys.stderr
    sys.stderr = tracker
    try:
        tracker.write("\rsepal:  50%|#####     | 1/2")
        cli_pkg._print_error("patterns", "x.gmt: line 1: malformed")
    finally:
        sys.stderr = saved
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == "stentrans patterns: error: x.gmt: line 1: malformed"


def test_warnings_are_whole_log_lines(tmp_path, capsys, monkeypatch):
    """Python warnings raised while a command runs come out as whole lines before the error."""
    import warnings

    import stentrans.cli as cli_pkg
    from stentrans.cli import read as cli_read

    def warn_then_fail(args):
        warnings.warn("a library warning", UserWarning)
        sys.stderr.write("partial")
        from stentrans import InputError

        raise InputError(args.input, "field", "bad value 7")

    monkeypatch.setattr(cli_read, "_cmd_info", warn_then_fail)
    capsys.readouterr()
    rc = cli_pkg.main(["info", str(tmp_path / "x.tsv")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.splitlines()[-1] == f"stentrans info: error: {tmp_path / 'x.tsv'}: field: bad value 7"


# ---------------------------------------------------------------------------
# errors found on arrays name the input file in the API too (the workflow
# scripts call the API); GMT files that are no text, or are malformed, stop
# `patterns` before it writes anything
# ---------------------------------------------------------------------------
FEW_SPOTS = "\tg1\tg2\tg3\n1x1\t3\t4\t5\n2x1\t1\t2\t8\n3x1\t4\t4\t1\n1x2\t5\t1\t0\n"


def _cli(*args):
    """``python -m stentrans ARGS`` in a subprocess."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("STENTRANS_THREADS", "1")
    return subprocess.run([sys.executable, "-m", "stentrans", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def _one_error_line(proc, cmd) -> str:
    assert proc.returncode == 2, f"exit {proc.returncode}; stderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"stentrans {cmd}: error: "), proc.stderr
    return lines[0]


def test_too_few_spots_api_names_the_file(tmp_path):
    import stentrans
    from stentrans import InputError

    f = _w(tmp_path / "few.tsv", FEW_SPOTS)
    a = stentrans.read(f)
    with pytest.raises(InputError, match="too few spots") as e:
        stentrans.tl.train(a, progress=False)
    assert e.value.file == str(f) and e.value.field == "mask" and str(e.value).startswith(f"{f}: mask: ")
    with pytest.raises(InputError, match="too few spots") as e:
        stentrans.run.enhance_to(a, tmp_path / "out.h5ad", progress=False)
    assert e.value.file == str(f)
    assert not (tmp_path / "out.h5ad").exists()
    # an AnnData that knows no file still says so
    del a.uns["stentrans"]["source"]
    with pytest.raises(InputError) as e:
        stentrans.tl.train(a, progress=False)
    assert e.value.file == "<memory>"


def test_too_few_spots_cli_names_the_file(tmp_path):
    # FEW_SPOTS as an .h5ad: (array_row, array_col) = (Y, X) of the ids 1x1, 2x1, 3x1, 1x2
    rc = np.array([[1, 1], [1, 2], [1, 3], [2, 1]])
    f = _write_h5ad(tmp_path / "few.h5ad", [[3, 4, 5], [1, 2, 8], [4, 4, 1], [5, 1, 0]], rc, ["g1", "g2", "g3"])
    out = tmp_path / "out" / "few_enhanced.h5ad"
    line = _one_error_line(_cli("enhance", str(f), "-o", str(out)), "enhance")
    assert f"{f}: mask: too few spots" in line
    assert not out.exists() and not (out.parent.exists() and list(out.parent.iterdir()))


def _bad_gmts(d: Path) -> dict:
    """name -> (GMT file, [substrings of the error line])."""
    good = "SET_A\tGO:1\tg1\tg2\nSET_B\tGO:2\tg2\tg3\n"
    gz = d / "sets.gmt"
    gz.write_bytes(gzip.compress(good.encode()))
    noise = d / "noise.gmt"
    noise.write_bytes(bytes(np.random.default_rng(3).integers(128, 256, 400, dtype=np.uint8)))
    nul = d / "nul.gmt"
    nul.write_bytes(good.encode() + b"\0\0\x07binary")
    return {
        "gzip": (gz, [str(gz), "gzip-compressed", "not a text GMT file"]),
        "random_bytes": (noise, [str(noise), "line 1", "not UTF-8 text"]),
        "nul_bytes": (nul, [str(nul), "binary data"]),
        "malformed_line_3": (_w(d / "bad3.gmt", good + "SET_C only-two-fields\tg1\n"), [str(d / "bad3.gmt"), "line 3", "expected 'name<TAB>description<TAB>gene...'"]),
    }


def test_bad_gmt_api_writes_nothing(tmp_path):
    from stentrans import InputError
    from stentrans.run import patterns_to
    from stentrans.tl import read_gmt

    import stentrans

    ids, genes, vals = _st_block()
    a = stentrans.read(_w(tmp_path / "ok.tsv", _st_text(ids, genes, vals)))
    (tmp_path / "gmt").mkdir()
    for name, (gmt, expect) in _bad_gmts(tmp_path / "gmt").items():
        with pytest.raises(InputError) as e:
            read_gmt(gmt)
        for s in expect:
            assert s in str(e.value), f"{name}: {s!r} not in {str(e.value)!r}"
        assert "\n" not in str(e.value)
        out = tmp_path / f"out_{name}"
        with pytest.raises(InputError):
            patterns_to(a, out, gmt=gmt, top=3, plots=False)
        assert not out.exists(), f"{name}: {sorted(p.name for p in out.iterdir())}"


@pytest.mark.parametrize("name", ["gzip", "random_bytes", "malformed_line_3"])
def test_bad_gmt_cli_subprocess(tmp_path, name):
    ids, genes, vals = _st_block()
    data = _w(tmp_path / "ok.tsv", _st_text(ids, genes, vals))
    (tmp_path / "gmt").mkdir()
    gmt, expect = _bad_gmts(tmp_path / "gmt")[name]
    out = tmp_path / "patterns"
    line = _one_error_line(_cli("patterns", str(data), "--gmt", str(gmt), "--top", "3", "-o", str(out)), "patterns")
    for s in expect:
        assert s in line, f"{s!r} not in {line!r}"
    assert not out.exists()
