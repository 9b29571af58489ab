"""Visium HD: Space Ranger's binned outputs (``binned_outputs/square_016um/`` ...) read as square lattices and enhanced.

The files are written here in Space Ranger's layout: per bin size a folder
``square_XXXum/`` with ``filtered_feature_bc_matrix.h5`` (10x HDF5 schema),
``spatial/tissue_positions.parquet`` (barcode, in_tissue, array_row,
array_col, pxl_row_in_fullres, pxl_col_in_fullres) and
``spatial/scalefactors_json.json`` (bin_size_um, microns_per_pixel,
spot_diameter_fullres, ...).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import stentrans
from stentrans import InputError
from stentrans.lattice import MAX_GRID_PIXELS, check_extent, fit_grid

REPO = Path(__file__).resolve().parents[1]
MICRONS_PER_PIXEL = 0.2737
# the capture area in 2 um bins (6.7 mm): the largest grid a reader must place
HD_2UM_SIDE = 3350


def _write_h5(path: Path, X, barcodes, genes) -> None:
    """10x feature-barcode HDF5: /matrix CSC of genes x barcodes, /matrix/features."""
    M = sp.csr_matrix(X)  # bins x genes == CSC of genes x bins
    with h5py.File(path, "w") as f:
        f.attrs["filetype"] = "matrix"
        f.attrs["library_ids"] = np.array([b"hd_sample"])
        f.attrs["chemistry_description"] = "Visium HD v1"
        f.attrs["software_version"] = "spaceranger-3.1.1"
        g = f.create_group("matrix")
        g.create_dataset("barcodes", data=np.array([b.encode() for b in barcodes]))
        g.create_dataset("data", data=M.data.astype(np.int32))
        g.create_dataset("indices", data=M.indices.astype(np.int64))
        g.create_dataset("indptr", data=M.indptr.astype(np.int64))
        g.create_dataset("shape", data=np.array([X.shape[1], X.shape[0]], dtype=np.int32))
        fg = g.create_group("features")
        fg.create_dataset("_all_tag_keys", data=np.array([b"genome"]))
        fg.create_dataset("id", data=np.array([f"ENSMUSG{i:08d}".encode() for i in range(len(genes))]))
        fg.create_dataset("name", data=np.array([s.encode() for s in genes]))
        fg.create_dataset("feature_type", data=np.array([b"Gene Expression"] * len(genes)))
        fg.create_dataset("genome", data=np.array([b"GRCm39"] * len(genes)))


def hd_pixels(rows, cols, bin_um, origin=(2100.0, 1700.0), angle_deg=0.6):
    """Full-resolution pixel (row, col) of bin centres: a slightly rotated square grid."""
    side = bin_um / MICRONS_PER_PIXEL
    t = np.deg2rad(angle_deg)
    x = (cols + 0.5) * side
    y = (rows + 0.5) * side
    pxl_col = origin[1] + np.cos(t) * x - np.sin(t) * y
    pxl_row = origin[0] + np.sin(t) * x + np.cos(t) * y
    return pxl_row, pxl_col


def write_bin_folder(binned: Path, bin_um: int, n_rows: int, n_cols: int, n_genes: int = 12, seed: int = 0, in_tissue=None):
    """``binned/square_XXXum/`` in Space Ranger's layout; returns (folder, truth)."""
    folder = binned / f"square_{bin_um:03d}um"
    (folder / "spatial").mkdir(parents=True)
    rows, cols = (a.ravel() for a in np.meshgrid(np.arange(n_rows), np.arange(n_cols), indexing="ij"))
    barcodes = np.array([f"s_{bin_um:03d}um_{r:05d}_{c:05d}-1" for r, c in zip(rows, cols)])
    if in_tissue is None:
        in_tissue = np.ones(len(rows), dtype=np.int32)
    pxl_row, pxl_col = hd_pixels(rows, cols, bin_um)
    pos = pd.DataFrame(
        {
            "barcode": barcodes,
            "in_tissue": np.asarray(in_tissue, dtype=np.int32),
            "array_row": rows.astype(np.int32),
            "array_col": cols.astype(np.int32),
            "pxl_row_in_fullres": pxl_row,
            "pxl_col_in_fullres": pxl_col,
        }
    )
    pos.to_parquet(folder / "spatial" / "tissue_positions.parquet", index=False)
    side_px = bin_um / MICRONS_PER_PIXEL
    sf = {
        "spot_diameter_fullres": side_px,
        "bin_size_um": float(bin_um),
        "microns_per_pixel": MICRONS_PER_PIXEL,
        "regist_target_img_scalef": 0.2,
        "tissue_lowres_scalef": 0.02,
        "fiducial_diameter_fullres": 1100.0,
        "tissue_hires_scalef": 0.2,
    }
    (folder / "spatial" / "scalefactors_json.json").write_text(json.dumps(sf))
    # smooth patterns (so enhancement has something to learn) plus Poisson noise
    rng = np.random.default_rng(seed)
    keep = np.flatnonzero(pos["in_tissue"].to_numpy() == 1)
    lam = np.stack([2 + 6 * (1 + np.sin(rows / (2 + g % 4) + cols / (3 + g % 3) + g)) for g in range(n_genes)], axis=1)
    X = rng.poisson(lam[keep]).astype(np.int64)
    genes = [f"Gene{g}" for g in range(n_genes)]
    _write_h5(folder / "filtered_feature_bc_matrix.h5", X, barcodes[keep], genes)
    return folder, {"pos": pos, "keep": keep, "X": X, "genes": genes}


@pytest.fixture(scope="module")
def hd_run(tmp_path_factory):
    """``sample/outs/binned_outputs/`` with 16 um and 8 um bins of one 96 um x 128 um area."""
    outs = tmp_path_factory.mktemp("hd") / "sample" / "outs"
    binned = outs / "binned_outputs"
    (outs / "spatial").mkdir(parents=True)  # Space Ranger's top-level spatial/ (images only)
    f16, t16 = write_bin_folder(binned, 16, 6, 8)
    f8, t8 = write_bin_folder(binned, 8, 12, 16, seed=1)
    return outs, {16: (f16, t16), 8: (f8, t8)}


def test_read_16um_bin_folder(hd_run):
    outs, bins = hd_run
    folder, truth = bins[16]
    a = stentrans.read(folder)
    assert a.shape == (48, 12)
    st = a.uns["stentrans"]
    assert st["lattice"] == "square" and st["format"] == "visium_hd"
    assert st["bin_size_um"] == 16.0 and st["microns_per_pixel"] == MICRONS_PER_PIXEL and st["bin_folder"] == "square_016um"
    assert st["grid"]["shape"] == [6, 8] or tuple(st["grid"]["shape"]) == (6, 8)
    pos = truth["pos"].set_index("barcode").loc[a.obs_names]
    assert a.obs_names[0].startswith("s_016um_")
    assert np.array_equal(a.obs["array_row"].to_numpy(), pos["array_row"].to_numpy())
    assert np.array_equal(a.obs["array_col"].to_numpy(), pos["array_col"].to_numpy())
    # obsm["spatial"]: the full-resolution pixel positions (x = column, y = row)
    assert np.array_equal(a.obsm["spatial"], np.column_stack([pos["pxl_col_in_fullres"], pos["pxl_row_in_fullres"]]))
    assert "pixels" in st["spatial_units"]
    assert np.array_equal(a.X.toarray(), truth["X"].astype(np.float32))
    lib = next(iter(a.uns["spatial"]))
    assert lib == "sample_square_016um"
    sf = a.uns["spatial"][lib]["scalefactors"]
    assert sf["bin_size_um"] == 16.0 and np.isclose(sf["spot_diameter_fullres"], 16 / MICRONS_PER_PIXEL)


def test_read_outs_with_bin_size(hd_run):
    outs, bins = hd_run
    a16 = stentrans.read(outs, bin_size=16)
    assert a16.uns["stentrans"]["bin_size_um"] == 16.0 and a16.n_obs == 48
    # the sample folder, binned_outputs/ and the .h5 inside a bin folder work too
    assert stentrans.read(outs.parent, bin_size=16).n_obs == 48
    assert stentrans.read(outs / "binned_outputs", bin_size="16").n_obs == 48
    assert stentrans.read(bins[16][0] / "filtered_feature_bc_matrix.h5").uns["stentrans"]["bin_size_um"] == 16.0
    # without a bin size: the 8 um bins (Space Ranger's default analysis bin)
    a8 = stentrans.read(outs)
    assert a8.uns["stentrans"]["bin_size_um"] == 8.0 and a8.shape == (192, 12)
    assert a8.uns["stentrans"]["lattice"] == "square"
    with pytest.raises(InputError, match="bin_size.*no square_002um folder"):
        stentrans.read(outs, bin_size=2)
    with pytest.raises(InputError, match="holds the 16 um bins"):
        stentrans.read(bins[16][0], bin_size=8)
    with pytest.raises(InputError, match="square lattice"):
        stentrans.read(bins[16][0], lattice="hex")


def test_partial_tissue_stays_square(tmp_path):
    # an in-tissue checkerboard of bins is still a square lattice (never Visium's hex)
    rows, cols = np.meshgrid(np.arange(6), np.arange(6), indexing="ij")
    it = ((rows + cols) % 2 == 0).ravel().astype(int)
    folder, _ = write_bin_folder(tmp_path / "binned_outputs", 16, 6, 6, in_tissue=it)
    a = stentrans.read(folder)
    assert a.n_obs == 18 and a.uns["stentrans"]["lattice"] == "square"


def test_2um_capture_area_fits_the_grid_bound():
    # Visium HD 2 um bins over a whole capture area pass the grid bound
    r = np.array([0, HD_2UM_SIDE - 1, 5])
    c = np.array([0, HD_2UM_SIDE - 1, 7])
    check_extent(r, c)
    g = fit_grid(r, c, "square")
    assert g.shape == (HD_2UM_SIDE, HD_2UM_SIDE) and g.shape[0] * g.shape[1] <= MAX_GRID_PIXELS
    with pytest.raises(InputError, match="array_col.*limit of 32768"):
        fit_grid([0, 1], [0, 10**12], "square", source="x.tsv")


def test_enhance_16um_to_8um_positions_cli(hd_run, tmp_path):
    """``stentrans enhance`` (robust default) on the 16 um bins: new bins at half steps, 8 um apart."""
    outs, bins = hd_run
    folder, _ = bins[16]
    out = tmp_path / "enhanced_16um.h5ad"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("STENTRANS_THREADS", "1")
    proc = subprocess.run([sys.executable, "-m", "stentrans.cli", "enhance", str(folder), "-o", str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    e = ad.read_h5ad(out)
    a = stentrans.read(folder)
    st = e.uns["stentrans"]
    assert st["lattice"] == "square"
    assert st["n_measured"] == a.n_obs and st["n_imputed"] > 0
    rows = e.obs["array_row"].to_numpy()
    cols = e.obs["array_col"].to_numpy()
    new = e.obs["is_imputed"].to_numpy().astype(bool)
    # measured bins on the integer lattice, new ones at half steps
    assert np.array_equal(rows[~new] % 1, np.zeros((~new).sum())) and np.array_equal(cols[~new] % 1, np.zeros((~new).sum()))
    assert ((rows[new] % 1 == 0.5) | (cols[new] % 1 == 0.5)).all()
    assert set(np.unique(np.diff(np.unique(rows)))) == {0.5} and set(np.unique(np.diff(np.unique(cols)))) == {0.5}
    # pixel positions: the neighbours of the enhanced lattice are 8 um apart
    xy = e.obsm["spatial"]
    assert np.isfinite(xy).all()
    from scipy.spatial import cKDTree

    d, _ = cKDTree(xy).query(xy, k=2)
    assert np.allclose(d[:, 1] * MICRONS_PER_PIXEL, 8.0, rtol=1e-6)
    meas = e[~new]
    pos = bins[16][1]["pos"].set_index("barcode").loc[meas.obs["barcode"].astype(str)]
    assert np.allclose(meas.obsm["spatial"], np.column_stack([pos["pxl_col_in_fullres"], pos["pxl_row_in_fullres"]]))
    # the spot (bin) diameter is halved: 8 um bins
    sf = next(iter(e.uns["spatial"].values()))["scalefactors"]
    assert np.isclose(sf["spot_diameter_fullres"] * MICRONS_PER_PIXEL, 8.0)
    X = e.X.toarray() if sp.issparse(e.X) else np.asarray(e.X)
    assert np.isfinite(X).all() and (X >= 0).all()


# ---------------------------------------------------------------------------
# --bin-size on the command line; the enhanced AnnData keeps the scale factors
# ---------------------------------------------------------------------------
def _cli(*args):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("STENTRANS_THREADS", "1")
    return subprocess.run([sys.executable, "-m", "stentrans", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_cli_bin_size_reads_that_bin_folder(hd_run, tmp_path):
    """``--bin-size 16`` on the ``outs`` (or ``binned_outputs``) folder reads ``square_016um/``."""
    from stentrans.cli import build_parser
    from stentrans.cli._common import load_input

    outs, _ = hd_run
    proc = _cli("info", str(outs), "--bin-size", "16")
    assert proc.returncode == 0, proc.stderr
    assert "spots: 48" in proc.stdout and "format: visium_hd" in proc.stdout and "grid: 6 x 8" in proc.stdout
    # every command reading an input takes the flag (the shared input arguments)
    parser = build_parser()
    for cmd, rest in (("enhance", ["-o", "e.h5ad"]), ("train", ["-o", "m.pt"]), ("evaluate", ["-o", "ev"]), ("patterns", ["-o", "pt"])):
        args = parser.parse_args([cmd, str(outs / "binned_outputs"), "--bin-size", "16", "--no-filter", *rest])
        a = load_input(args)
        assert a.uns["stentrans"]["bin_size_um"] == 16.0 and a.n_obs == 48, cmd
        args = parser.parse_args([cmd, str(outs), "--no-filter", *rest])
        assert load_input(args).uns["stentrans"]["bin_size_um"] == 8.0, cmd  # default: the 8 um bins
    out = tmp_path / "qc16.h5ad"
    args = parser.parse_args(["qc", str(outs), "--bin-size", "16", "--min-counts", "0", "-o", str(out)])
    assert args.func(args) == 0
    q = ad.read_h5ad(out)
    assert q.n_obs == 48 and q.uns["stentrans"]["bin_folder"] == "square_016um"


@pytest.mark.parametrize("where", ["outs", "bin_folder"])
def test_cli_unknown_bin_size_is_one_line(hd_run, tmp_path, where):
    """An unknown bin size: exit 2, one line naming the folder and the bin sizes present, no output."""
    outs, bins = hd_run
    if where == "outs":
        cmd, path, size = "qc", outs, "2"
        expect = [str(outs / "binned_outputs"), "bin_size", "no square_002um folder", "8 um, 16 um"]
    else:
        cmd, path, size = "enhance", bins[16][0], "8"
        expect = [str(bins[16][0]), "bin_size", "8 um asked for", "16 um bins"]
    out = tmp_path / f"{where}.h5ad"
    proc = _cli(cmd, str(path), "--bin-size", size, "-o", str(out))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"stentrans {cmd}: error: "), proc.stderr
    for s in expect:
        assert s in lines[0], f"{s!r} not in {lines[0]!r}"
    assert not out.exists() and not list(tmp_path.glob(f".{out.name}*"))


def test_enhanced_keeps_the_scale_factors(hd_run, tmp_path):
    """uns["spatial"] keeps every scale factor; the bin side (bin_size_um, spot_diameter_fullres) is halved."""
    from stentrans.grid import to_grid
    from stentrans.lattice import enhanced_mask
    from stentrans.tl import build_enhanced, write_h5ad

    outs, bins = hd_run
    folder, _ = bins[16]
    a = stentrans.read(folder)
    lib = next(iter(a.uns["spatial"]))
    sf_in = dict(json.loads((folder / "spatial" / "scalefactors_json.json").read_text()))
    gd = to_grid(a)
    H = enhanced_mask(gd.mask, "square")
    up = np.repeat(np.repeat(gd.maps, 2, axis=1), 2, axis=2)
    P, Q = np.nonzero(H)
    e = build_enhanced(a, up[:, P, Q].T, H, gd.grid, gd.p, gd.q, a.var_names)
    back = ad.read_h5ad(write_h5ad(e, tmp_path / "e.h5ad"))
    for enh in (e, back):
        sf = enh.uns["spatial"][lib]["scalefactors"]
        assert set(sf_in) <= set(sf)
        assert sf["bin_size_um"] == 8.0 and sf["microns_per_pixel"] == MICRONS_PER_PIXEL
        assert np.isclose(sf["spot_diameter_fullres"], sf_in["spot_diameter_fullres"] / 2)
        for k in set(sf_in) - {"bin_size_um", "spot_diameter_fullres"}:
            assert sf[k] == sf_in[k], k
        # the halved bin side is the enhanced lattice's pitch
        from scipy.spatial import cKDTree

        d, _ = cKDTree(enh.obsm["spatial"]).query(enh.obsm["spatial"], k=2)
        assert np.allclose(d[:, 1] * sf["microns_per_pixel"], sf["bin_size_um"], rtol=1e-6)
        st = enh.uns["stentrans"]
        assert st["bin_size_um"] == 8.0 and st["measured_bin_size_um"] == 16.0 and st["microns_per_pixel"] == MICRONS_PER_PIXEL
    # the measured AnnData is left as it was
    assert a.uns["spatial"][lib]["scalefactors"]["bin_size_um"] == 16.0 and a.uns["stentrans"]["bin_size_um"] == 16.0
