"""Readers of finer data (stentrans.io.formats and the point readers): each layout on a small file, bad input, and the shared finer sets (slow)."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from stentrans import InputError, cli
from stentrans.io.binning import noise_ceiling, pseudospots
from stentrans.io.formats import detect_format, read_finer

REPO = Path(__file__).resolve().parents[1]
MOL = pd.DataFrame({"x": [1.0, 2.5, 3.0, 10.0, 11.5], "y": [0.5, 1.0, 7.0, 3.0, 3.5], "gene": ["B", "A", "B", "C", "A"]})


def _layout(df, x, y, gene, **extra):
    out = pd.DataFrame({x: df["x"], y: df["y"], gene: df["gene"]})
    for k, v in extra.items():
        out[k] = v
    return out


def _dense(pts):
    """{(x, y, gene): count} of Points."""
    X = pts.counts.tocoo()
    return {(pts.xy[i, 0], pts.xy[i, 1], pts.genes[j]): v for i, j, v in zip(X.row, X.col, X.data)}


def _expected(df, counts=None):
    c = np.ones(len(df)) if counts is None else counts
    return {(x, y, g): float(v) for x, y, g, v in zip(df["x"], df["y"], df["gene"], c) if v}


@pytest.mark.parametrize(
    "name,cols,unit",
    [
        ("merscope.csv.gz", ("global_x", "global_y", "gene"), "um"),
        ("xenium_transcripts.csv.gz", ("x_location", "y_location", "feature_name"), "um"),
        ("cosmx_tx_file.csv", ("x_global_px", "y_global_px", "target"), "px"),
        ("generic.tsv", ("x", "y", "gene"), None),
    ],
)
def test_molecule_layouts(tmp_path, name, cols, unit):
    extra = {"global_z": 0, "fov": 3} if "merscope" in name else {"qv": 30.0, "cell_id": "UNASSIGNED"} if "xenium" in name else {}
    df = _layout(MOL, *cols, **extra)
    path = tmp_path / name
    df.to_csv(path, index=False, sep="\t" if name.endswith(".tsv") else ",")
    assert detect_format(path) == "molecules"
    pts = read_finer(path)
    assert pts.kind == "molecules" and pts.unit == unit and pts.n == 5
    assert list(pts.genes) == ["A", "B", "C"]
    assert _dense(pts) == _expected(MOL)
    assert pts.columns["x"] == cols[0] and pts.columns["gene"] == cols[2]


def test_xenium_parquet(tmp_path):
    pytest.importorskip("pyarrow", reason="pyarrow is needed for .parquet molecule tables")
    path = tmp_path / "transcripts.parquet"
    df = _layout(MOL, "x_location", "y_location", "feature_name", qv=[20.0] * 5)
    df["feature_name"] = df["feature_name"].str.encode("utf-8")  # older Xenium writes bytes
    df.to_parquet(path)
    pts = read_finer(path)
    assert detect_format(path) == "molecules" and pts.unit == "um" and _dense(pts) == _expected(MOL)


def test_count_column_and_overrides(tmp_path):
    path = tmp_path / "mol.csv"
    df = pd.DataFrame({"px": MOL.x, "py": MOL.y, "probe": MOL.gene, "Counts": [1, 2, 0, 3, 1], "gene": "X"})
    df.to_csv(path, index=False)
    pts = read_finer(path, x="px", y="py", gene="probe")
    assert pts.columns["count"] == "Counts"  # detected in any case
    assert _dense(pts) == _expected(MOL, [1, 2, 0, 3, 1])
    assert pts.unit is None


def _gem(path, count_col, comments=True):
    lines = ["#FileFormat=GEMv0.1", "#SortedBy=None", "#OffsetX=0", "#OffsetY=0"] if comments else []
    lines.append(f"geneID\tx\ty\t{count_col}\tExonCount")
    rows = [("Gad1", 10, 20, 2), ("Gad1", 11, 20, 1), ("Mbp", 10, 20, 5), ("Snap25", 300, 310, 1)]
    lines += [f"{g}\t{x}\t{y}\t{c}\t{c}" for g, x, y, c in rows]
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    return rows


@pytest.mark.parametrize("count_col,comments", [("MIDCounts", True), ("UMICount", False)])
def test_gem(tmp_path, count_col, comments):
    path = tmp_path / ("chip.gem.gz" if comments else "chip.tsv.gz")
    rows = _gem(path, count_col, comments)
    assert detect_format(path) == "gem"
    pts = read_finer(path)
    assert pts.kind == "gem" and pts.unit == "DNB" and pts.um_per_unit == 0.5 and pts.columns["count"] == count_col
    assert pts.counts.sum() == sum(r[3] for r in rows)
    assert _dense(pts) == {(float(x), float(y), g): float(c) for g, x, y, c in rows}


def test_bead_table(tmp_path):
    path = tmp_path / "beads.tsv.gz"
    beads = pd.DataFrame([[0, 3, 1], [2, 0, 0], [0, 0, 7]], index=["1705.25x3916.8", "10x20", "33.5x2.25"], columns=["Gad1", "Mbp", "Snap25"])
    beads.to_csv(path, sep="\t")
    assert detect_format(path) == "beads"
    pts = read_finer(path)
    assert pts.kind == "beads" and pts.n == 3 and list(pts.genes) == ["Gad1", "Mbp", "Snap25"]
    assert np.array_equal(pts.xy, [[1705.25, 3916.8], [10, 20], [33.5, 2.25]])
    assert np.array_equal(pts.counts.toarray(), beads.to_numpy())
    # genes x beads works too
    path_t = tmp_path / "beads_t.csv"
    beads.T.to_csv(path_t)
    pt = read_finer(path_t, "beads")
    assert np.array_equal(pt.counts.toarray(), beads.to_numpy()) and np.array_equal(pt.xy, pts.xy)


def test_cells_h5ad_and_csv(tmp_path):
    rng = np.random.default_rng(0)
    counts = rng.poisson(2.0, (30, 4)).astype(np.float32)
    obs = pd.DataFrame({"x": rng.uniform(0, 100, 30), "y": rng.uniform(0, 50, 30), "cluster": ["a"] * 30}, index=[f"c{i}" for i in range(30)])
    a = ad.AnnData(X=sp.csc_matrix(counts), obs=obs, var=pd.DataFrame(index=["G1", "G2", "G3", "G4"]))
    h5 = tmp_path / "cells.h5ad"
    a.write_h5ad(h5)
    pts = read_finer(h5)
    assert pts.kind == "cells" and np.array_equal(pts.counts.toarray(), counts) and np.array_equal(pts.xy, obs[["x", "y"]].to_numpy())
    table = pd.concat([obs[["x", "y"]].rename(columns={"x": "cx", "y": "cy"}), pd.DataFrame(counts.astype(int), index=obs.index, columns=a.var_names)], axis=1)
    csv = tmp_path / "cells.csv"
    table.to_csv(csv, index_label="cell_id")
    assert detect_format(csv) == "cells"
    pc = read_finer(csv, x="cx", y="cy")
    assert list(pc.genes) == ["G1", "G2", "G3", "G4"] and np.array_equal(pc.counts.toarray(), counts)
    # each cell is one point at its centroid: a disk sums whole cells
    spots, _ = pseudospots(pc, "square", 40.0, config=None)
    assert spots.X.sum() <= counts.sum()


# ---------------------------------------------------------------- bad input


def _one_line(err: str, *parts):
    lines = [ln for ln in err.strip().splitlines() if "error:" in ln]
    assert len(lines) == 1, err
    for p in parts:
        assert p in lines[0], (p, lines[0])


@pytest.mark.parametrize(
    "name,content,parts",
    [
        ("bad_coord.csv", "global_x,global_y,gene\n1.0,2.0,A\nabc,3.0,B\n", ["'global_x'", "'abc'", "row 2"]),
        ("bad_count.csv", "x,y,gene,count\n1.0,2.0,A,1\n1.0,3.0,B,-2\n", ["'count'", "negative", "'-2'"]),
        ("frac_count.csv", "x,y,gene,count\n1.0,2.0,A,1.5\n", ["'count'", "non-integer", "'1.5'"]),
        ("no_gene.csv", "x,y,gene\n1.0,2.0,A\n1.0,3.0,\n", ["'gene'", "missing gene"]),
        ("beads_bad.tsv", "\tA\tB\n1x2\t0\t1\n3x4\tfoo\t0\n", ["column 'A'", "'foo'", "'3x4'"]),
        ("beads_neg.tsv", "\tA\tB\n1x2\t0\t1\n3x4\t0\t-1\n", ["column 'B'", "negative", "'3x4'"]),
        ("beads_id.tsv", "\tA\tB\n1x2\t0\t1\nbead7\t0\t1\n", ["bead ids", "bead7"]),
        ("chip.gem", "geneID\tx\ty\nA\t1\t2\n", ["count column", "MIDCounts"]),
        ("big_count.csv", "x,y,gene,count\n1.0,2.0,A,1\n1.0,3.0,B,1e308\n", ["'count'", "too large (above 1e+09)", "'1e+308'", "row 2"]),
        ("beads_big.tsv", "\tA\tB\n1x2\t0\t1\n3x4\t0\t1e308\n", ["column 'B'", "too large (above 1e+09)", "'3x4'"]),
        ("beads_blank.tsv", "\tA\t \n1x2\t0\t1\n3x4\t0\t1\n", ["genes", "empty gene name (gene 2 of 2"]),
        # one molecule far off (issue 30, item 9): refused before the tissue mask asks for terabytes
        ("far.csv", "x,y,gene\n1.0,2.0,A\n1e12,3.0,B\n2.0,2.5,A\n", ["column 'x'", "value 1000000000000 at row 2 lies far from the other points", "hex lattice steps at spacing 2"]),
        ("far_beads.tsv", "\tA\tB\n1x2\t0\t1\n3x-1e15\t0\t1\n2x2\t1\t0\n", ["column 'bead id Y'", "value -1e+15 at bead '3x-1e15'"]),
    ],
)
def test_bad_input_one_line_nothing_left(tmp_path, capsys, name, content, parts):
    path = tmp_path / name
    path.write_text(content)
    if not name.startswith("far"):  # a far-off point reads; binning it is what fails
        with pytest.raises(InputError):
            read_finer(path)
    out = tmp_path / "o" / "spots.h5ad"
    truth = tmp_path / "o" / "truth.h5ad"
    assert cli.main(["bin", str(path), "-o", str(out), "--lattice", "hex", "--spacing", "2", "--truth", str(truth)]) == 2
    _one_line(capsys.readouterr().err, str(path), *parts)
    assert not any((tmp_path / "o").glob("*")) if (tmp_path / "o").exists() else True


def test_bad_format_and_columns(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(InputError, match=r"columns: no layout fits the columns found \(a, b, c\)"):
        read_finer(path)
    with pytest.raises(InputError, match="no molecule columns found"):
        read_finer(path, "molecules")
    with pytest.raises(InputError, match="format"):
        read_finer(path, "visium")
    with pytest.raises(InputError, match="not found"):
        read_finer(tmp_path / "missing.csv")
    bad = tmp_path / "x.bin"
    bad.write_text("1")
    with pytest.raises(InputError, match="unknown input format"):
        read_finer(bad)


def test_extent_is_bounded_before_anything_is_allocated(tmp_path):
    """The lattice and the tissue-mask raster are bounded by the points' extent (issue 30, item 9)."""
    from stentrans.io.binning import MAX_MASK_PIXELS, PseudoSpotConfig, tissue_mask
    from stentrans.io.points import Points

    # 4,000 x 4,000 lattice steps fit a lattice grid (2**26 pixels) but not a mask of quarter steps (16,000**2 > 2**27)
    xy = np.array([[0.0, 0.0], [4000.0, 4000.0], [2000.0, 2000.0]])
    pts = Points(xy, sp.csr_matrix(np.ones((3, 1))), ["A"], kind="molecules", source="wide.csv", columns={"x": "px", "y": "py"})
    with pytest.raises(InputError, match=r"wide\.csv: column 'p[xy]': value 4000 at row 2 lies far .* tissue-mask pixels of side 0\.25, more than the limit of 134217728 in all"):
        pseudospots(pts, "square", 1.0)
    with pytest.raises(InputError, match=f"more than {MAX_MASK_PIXELS}"):
        tissue_mask(xy, np.ones(3), 1.0)
    # a coarser mask fits, and so do the spots
    spots, _ = pseudospots(pts, "square", 1.0, config=PseudoSpotConfig(mask_pitch=2.0, mask_sigma=4.0, mask_closing=4.0))
    assert spots.n_obs == 3
    with pytest.raises(InputError, match="--mask-pitch: 0 must be a positive number"):
        pseudospots(pts, "square", 1.0, config=PseudoSpotConfig(mask_pitch=0.0))


# ---------------------------------------------------------------- column names in any case (issue 30, item 8)


@pytest.mark.parametrize(
    "header,layout,unit",
    [
        (("x", "y", "Gene"), "generic", None),  # pciSeq / ISS spot tables
        (("X", "Y", "GENE"), "generic", None),
        (("Global_X", "Global_Y", "Gene"), "MERSCOPE", "um"),
        (("X_LOCATION", "Y_LOCATION", "Feature_Name"), "Xenium", "um"),
        (("x_global_PX", "y_global_PX", "Target"), "CosMx", "px"),
    ],
)
def test_molecule_columns_in_any_case(tmp_path, header, layout, unit):
    path = tmp_path / "spots.csv"
    _layout(MOL, *header).to_csv(path, index=False)
    assert detect_format(path) == "molecules"
    pts = read_finer(path)
    assert pts.columns == {"x": header[0], "y": header[1], "gene": header[2], "layout": layout} and pts.unit == unit
    assert _dense(pts) == _expected(MOL)


def test_pciseq_header_bins_without_flags(tmp_path, capsys):
    """``Gene,x,y`` (gene first, as pciSeq writes it) is a molecule table in both binning modes, with no column flags."""
    path = tmp_path / "pciseq_spots.csv"
    MOL[["gene", "x", "y"]].rename(columns={"gene": "Gene"}).to_csv(path, index=False)
    disks, squares = tmp_path / "disks.h5ad", tmp_path / "squares.h5ad"
    assert cli.main(["bin", str(path), "-o", str(disks), "--lattice", "square", "--spacing", "4"]) == 0
    assert cli.main(["bin", str(path), "-o", str(squares), "--bin-size", "5"]) == 0
    a, b = ad.read_h5ad(disks), ad.read_h5ad(squares)
    assert a.uns["binning"]["columns"] == {"x": "x", "y": "y", "gene": "Gene", "layout": "generic"}
    assert list(a.var_names) == list(b.var_names) == ["A", "B", "C"]
    # 5 molecules in squares of side 5 from (1, 0.5): (1,0.5),(2.5,1),(3,7) -> x squares 0,0,0; (10,3),(11.5,3.5) -> 1,2
    assert b.X.sum() == 5 and b.n_obs == 4 and dict(zip(b.obs_names, b.obs["n_cells"])) == {"0x0": 2, "0x1": 1, "1x0": 1, "2x0": 1}


def test_gem_and_cell_columns_in_any_case(tmp_path):
    gem = tmp_path / "chip.tsv"
    gem.write_text("GeneID\tX\tY\tmidcount\nGad1\t10\t20\t2\nMbp\t11\t20\t5\n")
    assert detect_format(gem) == "gem"
    pg = read_finer(gem)
    assert pg.columns["gene"] == "GeneID" and pg.columns["count"] == "midcount" and pg.counts.sum() == 7
    cells = pd.DataFrame({"Cell_ID": ["a", "b", "c"], "X_Centroid": [1.0, 5.0, 9.0], "Y_Centroid": [2.0, 2.0, 8.0], "G1": [1, 0, 4], "G2": [0, 3, 1]})
    for cols in ({}, {"X_Centroid": "X", "Y_Centroid": "Y"}, {"X_Centroid": "center_x", "Y_Centroid": "CENTER_Y"}):
        path = tmp_path / "cells.csv"
        cells.rename(columns=cols).to_csv(path, index=False)
        assert detect_format(path) == "cells"
        pc = read_finer(path)
        want = [cols.get(c, c) for c in ("X_Centroid", "Y_Centroid")]
        assert [pc.columns["x"], pc.columns["y"]] == want and list(pc.genes) == ["G1", "G2"]
        assert np.array_equal(pc.xy, [[1, 2], [5, 2], [9, 8]]) and np.array_equal(pc.counts.toarray(), [[1, 0], [0, 3], [4, 1]])


def test_vendor_layout_wins_over_local_coordinates_when_binning_squares(tmp_path):
    """A MERSCOPE table carries local ``x``/``y`` beside ``global_x``/``global_y``: both modes bin the global ones."""
    df = pd.DataFrame({"global_x": [100.0, 130.0, 260.0], "global_y": [50.0, 55.0, 90.0], "x": [5.0, 5.0, 5.0], "y": [1.0, 1.0, 1.0], "gene": ["A", "B", "A"]})
    path = tmp_path / "detected_transcripts.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "b.h5ad"
    assert cli.main(["bin", str(path), "-o", str(out), "--bin-size", "100"]) == 0
    b = ad.read_h5ad(out)
    assert sorted(b.obs_names) == ["0x0", "1x0"] and b.X.sum() == 3


def test_two_columns_one_name_ignoring_case(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("x,y,Gene,GENE\n1,2,A,B\n")
    with pytest.raises(InputError, match=r"'Gene', 'GENE' all match 'gene' ignoring case; choose one with --gene"):
        read_finer(path, "molecules")
    assert read_finer(path, gene="GENE").genes.tolist() == ["B"]


# ---------------------------------------------------------------- the command line: one line, exit 2, nothing left


def _bin_subprocess(args, tmp_path):
    """``stentrans bin`` as a real process; returns (returncode, stderr lines, files left in the output folder)."""
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-m", "stentrans.cli", "bin", *map(str, args)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    return p.returncode, [ln for ln in p.stderr.splitlines() if ln.strip()], sorted(f.name for f in out.iterdir())


@pytest.mark.parametrize("mode", [["--lattice", "hex", "--spacing", "2", "--truth", "out/truth.h5ad"], ["--bin-size", "2"]])
def test_no_layout_names_the_columns_and_the_flags(tmp_path, mode):
    path = tmp_path / "table.csv"
    path.write_text("cell,type,area\nc1,T,1.5\nc2,B,2.0\n")  # no coordinates, no genes: neither a cell nor a molecule table
    rc, err, left = _bin_subprocess([path, "-o", "out/spots.h5ad", *mode], tmp_path)
    assert rc == 2 and len(err) == 1 and not left, (rc, err, left)
    line = err[0]
    assert line.startswith(f"stentrans bin: error: {path}: columns: no layout fits the columns found (cell, type, area)")
    for flag in ("--x", "--y", "--gene", "--format", "--drop"):
        assert flag in line
    for name in ("global_x/global_y/gene", "x_location/y_location/feature_name", "x_global_px/y_global_px/target", "x/y/gene", "x_centroid/y_centroid"):
        assert name in line
    # the flags the line names are the command's (stentrans bin --help)
    helptext = subprocess.run([sys.executable, "-m", "stentrans.cli", "bin", "--help"], cwd=REPO, capture_output=True, text=True).stdout
    for flag in ("--x X", "--y Y", "--gene GENE", "--format {auto,molecules,gem,beads,cells}", "--drop DROP"):
        assert flag in helptext, flag


# ---------------------------------------------------------------- the shared finer sets (slow)

FINER = {
    # file, format, two spacings per lattice (input units): about 300 and 1,000 lattice points over the
    # data's extent (Slide-seq, MERSCOPE, STARmap; STARmap's sparse cells leave many disks empty);
    # the ~150 um Stereo-seq crop at 20 and 10 um (40 and 20 DNB)
    "Slide-seq cerebellum": ("slideseq_cerebellum_beads.tsv.gz", "beads", {"hex": (200.0, 108.0), "square": (186.0, 100.0)}),
    "MERSCOPE mouse brain": ("merscope_mouse_brain_mini_transcripts.csv.gz", "molecules", {"hex": (27.0, 13.6), "square": (25.0, 12.5)}),
    "STARmap visual cortex": ("starmap_visp_1020genes_cells.h5ad", "cells", {"hex": (615.0, 340.0), "square": (570.0, 315.0)}),
    "Stereo-seq crop": ("stereoseq_bin1_crop.gem.gz", "gem", {"hex": (40.0, 20.0), "square": (40.0, 20.0)}),
}


@pytest.mark.slow
@pytest.mark.parametrize("label", list(FINER))
def test_shared_finer_sets(shared_data, label, capsys):
    fname, fmt, spacings = FINER[label]
    path = shared_data / "finer" / fname
    if not path.exists():
        pytest.skip(f"{path} not found (see ../shared/README.md, data/finer)")
    pts = read_finer(path)
    assert pts.kind == fmt
    rows = []
    for lattice, As in spacings.items():
        for A in As:
            spots, truth = pseudospots(pts, lattice, A, truth=True)
            assert spots.n_obs > 50 and truth.obs["is_imputed"].sum() > spots.n_obs
            assert set(truth.var_names) == set(spots.var_names) and truth.obs["is_measured"].sum() == spots.n_obs
            med = float(np.median(np.asarray(spots.X.sum(axis=1)).ravel()))
            # noise ceiling at the new positions, genes seen in >= 10 % of the measured spots
            seen = np.asarray((spots.X > 0).mean(axis=0)).ravel() >= 0.1
            new = truth.X[np.flatnonzero(truth.obs["is_imputed"].to_numpy())][:, np.flatnonzero(seen)]
            ceil = float(np.nanmedian(noise_ceiling(new, np.random.default_rng(0))))
            rows.append((label, lattice, A, spots.uns["binning"]["spot_diameter"], spots.n_obs, truth.n_obs, int(truth.obs["is_imputed"].sum()), med, int(seen.sum()), ceil))
    with capsys.disabled():
        print()
        for r in rows:
            print("%-22s %-6s A=%-6g D=%-7.4g spots=%-5d truth=%-5d new=%-5d median counts/spot=%-6g genes>=10%%=%-5d ceiling=%.3f" % r)


# ---------------------------------------------------------------- real vendor transcript files (issue 30, item 10)

#: file -> (layout, unit, lattice, spacing, molecules, genes, spots, enhanced positions (= truth positions), new positions, genes enhanced)
VENDOR = {
    # CosMx lung 12, fields of view 2-3 (pixels, ~0.18 um): 980 targets incl. 20 negative probes
    "cosmx_lung12_tx_file.csv.gz": ("CosMx", "px", "hex", 100, 25825, 980, 108, 390, 282, 52),
    # CosMx lung 9, field of view 9 (quoted header)
    "cosmx_lung9_fov9_tx_file.csv.gz": ("CosMx", "px", "square", 50, 23844, 969, 113, 405, 292, 70),
    # MERSCOPE ovarian cancer detected_transcripts.csv (um; local fov x/y beside global_x/global_y; 33 Blank probes)
    "merscope_ovarian_detected_transcripts.csv.gz": ("MERSCOPE", "um", "hex", 8, 15160, 486, 55, 180, 125, 130),
}


@pytest.mark.parametrize("name", list(VENDOR))  # a few seconds each: not marked slow
def test_real_vendor_files_read_bin_enhance_without_flags(shared_data, tmp_path, name):
    """Real CosMx and MERSCOPE exports: detected with no column flag, binned into disk spots with their truth, enhanced; numbers pinned."""
    layout, unit, lattice, spacing, n_mol, n_genes, n_spots, n_pos, n_new, n_enh = VENDOR[name]
    path = shared_data / "vendor_layouts" / name
    if not path.exists():
        pytest.skip(f"{path} not found (see ../shared/README.md, data/vendor_layouts)")
    assert detect_format(path) == "molecules"
    pts = read_finer(path)
    assert pts.columns["layout"] == layout and pts.unit == unit
    assert pts.n == n_mol and pts.counts.sum() == n_mol and len(pts.genes) == n_genes  # one molecule per row, every target kept
    if layout == "MERSCOPE":
        assert pts.columns["x"] == "global_x" and pts.xy[:, 0].min() > 10_000  # the global coordinates, not the fov-local x
        assert sum(g.startswith("Blank-") for g in pts.genes) == 33
    else:
        assert sum(g.startswith("NegPrb") for g in pts.genes) == 20
    spots_f, truth_f, enh_f = tmp_path / "spots.h5ad", tmp_path / "truth.h5ad", tmp_path / "enhanced.h5ad"
    # no --x/--y/--gene/--format: the vendor's layout is enough
    assert cli.main(["bin", str(path), "-o", str(spots_f), "--lattice", lattice, "--spacing", str(spacing), "--truth", str(truth_f)]) == 0
    spots, truth = ad.read_h5ad(spots_f), ad.read_h5ad(truth_f)
    assert spots.shape == (n_spots, n_genes) and spots.uns["binning"]["columns"]["layout"] == layout
    assert truth.n_obs == n_pos and int(truth.obs["is_imputed"].sum()) == n_new
    # the QC and lost-spot settings named, so that the shape does not follow the defaults
    assert cli.main(["enhance", str(spots_f), "-o", str(enh_f), "--min-spot-fraction", "0.1", "--fill-lost", "none"]) == 0
    enh = ad.read_h5ad(enh_f)
    assert enh.shape == (n_pos, n_enh) and int(enh.obs["is_imputed"].sum()) == n_new
    assert set(enh.var_names) <= set(spots.var_names)
    X = enh.X.data if sp.issparse(enh.X) else np.asarray(enh.X)
    assert np.isfinite(X).all()
    # enhanced output and truth line up position for position (what the real-truth scores rely on)
    key = lambda a: set(zip(a.obs["array_row"].astype(float), a.obs["array_col"].astype(float)))  # noqa: E731
    assert key(enh) == key(truth)
