"""Simulated data with a 2x-resolution truth (stentrans.datasets.simulate)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

from stentrans import InputError
from stentrans.lattice import NEIGHBOUR_OFFSETS, enhanced_mask, fit_grid
from stentrans.datasets import SIZES, simulate

REPO = Path(__file__).resolve().parents[1]
_CACHE: dict = {}


def sim(**kw):
    """simulate() with caching (results are treated as read-only)."""
    key = tuple(sorted(kw.items()))
    if key not in _CACHE:
        _CACHE[key] = simulate(**kw)
    return _CACHE[key]


def _pcc_cols(a, b):
    a = a - a.mean(0)
    b = b - b.mean(0)
    return (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))


def _morans_i(adata) -> np.ndarray:
    """Moran's I per gene on log-normalised counts, lattice neighbours, binary weights."""
    X = adata.X.toarray()
    tot = X.sum(1, keepdims=True)
    Y = np.log1p(X / np.maximum(tot, 1) * np.median(tot))
    lat = adata.uns["stentrans"]["lattice"]
    pos = {(r, c): i for i, (r, c) in enumerate(zip(adata.obs["array_row"], adata.obs["array_col"]))}
    pairs = [(i, pos[(r + dr, c + dc)]) for (r, c), i in pos.items() for dr, dc in NEIGHBOUR_OFFSETS[lat] if (r + dr, c + dc) in pos]
    i, j = np.array(pairs).T
    Z = Y - Y.mean(0)
    return len(Y) / len(i) * (Z[i] * Z[j]).sum(0) / (Z * Z).sum(0)


# ---------------------------------------------------------------------------
# shape and geometry
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "lattice, size, lo, hi",
    [("square", "st", 300, 600), ("hex", "st", 300, 600), ("hex", "visium", 2000, 4000), ("square", "visium", 2000, 4000)],
)
def test_sizes_and_layout(lattice, size, lo, hi):
    a = sim(lattice=lattice, size=size, n_genes=50, seed=1)
    rows, cols = SIZES[(size, lattice)]
    assert lo <= a.n_obs <= hi
    assert a.n_vars == 50
    assert sp.issparse(a.X) and a.X.format == "csr" and a.X.dtype == np.float32
    r, c = a.obs["array_row"].to_numpy(), a.obs["array_col"].to_numpy()
    assert r.dtype.kind == "i" and c.dtype.kind == "i"
    assert r.min() >= 0 and r.max() < rows and c.min() >= 0 and c.max() < cols
    assert (a.obs["in_tissue"] == 1).all()
    assert list(a.obs_names[:3]) == [f"r{x}_c{y}" for x, y in zip(r[:3], c[:3])]
    assert a.obs_names.is_unique
    sim_info = a.uns["stentrans"]["simulation"]
    assert sim_info["n_measured"] == a.n_obs
    assert 1 <= sim_info["n_lost"] <= 0.05 * sim_info["n_in_tissue"]
    t = a.uns["truth"]
    n_fine = len(t["array_row"])
    assert 3 * a.n_obs < n_fine < 5 * (a.n_obs + sim_info["n_lost"])
    for k in ("array_col", "counts", "mean", "is_measured", "is_lost", "domain", "spatial"):
        assert len(t[k]) == n_fine, k
    assert t["counts"].shape == t["mean"].shape == (n_fine, 50)
    assert t["counts"].dtype == t["mean"].dtype == np.float32
    assert (t["mean"] > 0).all()
    # half-step lattice coordinates
    P, Q = 2 * t["array_row"], 2 * t["array_col"]
    np.testing.assert_array_equal(P, np.rint(P))
    np.testing.assert_array_equal(Q, np.rint(Q))
    # the grid stored in uns fits the measured spots
    g = fit_grid(r, c, lattice).to_dict()
    st = a.uns["stentrans"]
    assert st["lattice"] == lattice and st["format"] == "simulated" and st["source"].startswith("simulate(")
    assert {k: v for k, v in st["grid"].items() if k != "shape"} == {k: v for k, v in g.items() if k != "shape"}
    assert list(st["grid"]["shape"]) == list(g["shape"])


def test_hex_parity():
    a = sim(lattice="hex", size="st", n_genes=50, seed=1)
    r, c = a.obs["array_row"].to_numpy(), a.obs["array_col"].to_numpy()
    assert ((r + c) % 2 == 0).all()
    t = a.uns["truth"]
    P = np.rint(2 * t["array_row"]).astype(int)
    Q = np.rint(2 * t["array_col"]).astype(int)
    assert ((P + Q) % 2 == 0).all()
    # every midpoint kind is present: (r+1/2, c+1/2), (r, c+1) and (r+1, c) with r + c even
    assert ((P % 2 == 1) & (Q % 2 == 1)).any()
    even = (P % 2 == 0) & (Q % 2 == 0)
    assert (even & ((P // 2 + Q // 2) % 2 == 1)).any()
    # measured spots are exactly the fine positions on the measured lattice, minus lost ones
    on_lat = even & ((P // 2 + Q // 2) % 2 == 0)
    np.testing.assert_array_equal(t["is_measured"] | t["is_lost"], on_lat)


@pytest.mark.parametrize("lattice", ["square", "hex"])
def test_truth_is_enhanced_mask(lattice):
    """Truth positions are H(M) of all in-tissue spots (measured and lost)."""
    a = sim(lattice=lattice, size="st", n_genes=50, seed=1)
    t = a.uns["truth"]
    P = np.rint(2 * t["array_row"]).astype(int)
    Q = np.rint(2 * t["array_col"]).astype(int)
    rows, cols = SIZES[("st", lattice)]
    M = np.zeros((rows, cols), dtype=bool)
    on = t["is_measured"] | t["is_lost"]
    M[P[on] // 2, Q[on] // 2] = True
    H = np.zeros((2 * rows, 2 * cols), dtype=bool)
    H[P, Q] = True
    np.testing.assert_array_equal(H, enhanced_mask(M, lattice))
    # row-major order, no duplicates
    flat = P * 2 * cols + Q
    assert (np.diff(flat) > 0).all()


def test_measured_equals_truth():
    a = sim(lattice="square", size="st", n_genes=50, seed=1)
    t = a.uns["truth"]
    assert not (t["is_measured"] & t["is_lost"]).any()
    m = np.flatnonzero(t["is_measured"])
    assert len(m) == a.n_obs
    np.testing.assert_array_equal(t["array_row"][m], a.obs["array_row"].to_numpy())
    np.testing.assert_array_equal(t["array_col"][m], a.obs["array_col"].to_numpy())
    np.testing.assert_array_equal(t["counts"][m], a.X.toarray())
    np.testing.assert_array_equal(t["spatial"][m], a.obsm["spatial"])
    lost = {(r, c) for r, c in zip(t["array_row"][t["is_lost"]], t["array_col"][t["is_lost"]])}
    assert lost and not lost & set(zip(a.obs["array_row"], a.obs["array_col"]))
    # counts are integers; noise-free mean is close to the counts on average
    np.testing.assert_array_equal(t["counts"], np.rint(t["counts"]))
    ratio = t["counts"].sum() / t["mean"].sum()
    assert 0.8 < ratio < 1.0  # dropout 0.1 lowers the counts


def test_pixel_coordinates_and_image():
    for lattice, a_um, d in (("square", 200.0, 100.0), ("hex", 100.0, 55.0)):
        a = sim(lattice=lattice, size="st", n_genes=50, seed=1)
        r = a.obs["array_row"].to_numpy().astype(float)
        c = a.obs["array_col"].to_numpy().astype(float)
        xy = a.obsm["spatial"]
        sx, sy = (a_um, a_um) if lattice == "square" else (a_um / 2, a_um * np.sqrt(3) / 2)
        np.testing.assert_allclose(xy[:, 0] - c * sx, (xy[:, 0] - c * sx)[0])
        np.testing.assert_allclose(xy[:, 1] - r * sy, (xy[:, 1] - r * sy)[0])
        lib = a.uns["spatial"]["simulated"]
        sf = lib["scalefactors"]
        assert sf["spot_diameter_fullres"] == d
        img = lib["images"]["hires"]
        assert img.dtype == np.float32 and img.ndim == 3 and img.shape[2] == 3
        assert 0 <= img.min() and img.max() <= 1
        h, w = img.shape[:2]
        assert xy[:, 0].max() * sf["tissue_hires_scalef"] < w and xy[:, 1].max() * sf["tissue_hires_scalef"] < h
        assert max(h, w) <= 1000
        # spots sit on tissue-coloured pixels (darker than the background)
        px = np.floor(xy * sf["tissue_hires_scalef"]).astype(int)
        assert img[px[:, 1], px[:, 0]].mean() < img[:5, :5].mean() - 0.1


def test_var_programs():
    a = sim(lattice="square", size="st", n_genes=200, seed=1)
    prog = a.var["program"].astype(str)
    expected = {f"domain_{k}" for k in range(4)} | {"gradient", "periodic", "noise"}
    assert set(prog) == expected
    frac_noise = (prog == "noise").mean()
    assert 0.2 <= frac_noise <= 0.3
    assert (a.var["strength"][prog == "noise"] == 0).all()
    assert (a.var["strength"][prog != "noise"] > 0.5).all()
    assert (a.var["baseline"] > 0).all()
    assert a.var["baseline"].max() / a.var["baseline"].min() > 10  # varied expression levels
    b = simulate(lattice="square", n_genes=30, n_domains=2, seed=1)
    assert {p for p in b.var["program"].astype(str) if p.startswith("domain")} == {"domain_0", "domain_1"}
    assert set(b.obs["domain"].astype(str)) == {"domain_0", "domain_1"}


# ---------------------------------------------------------------------------
# reproducibility and files
# ---------------------------------------------------------------------------
def _assert_same(a, b):
    np.testing.assert_array_equal(a.X.toarray(), b.X.toarray())
    assert list(a.obs_names) == list(b.obs_names)
    np.testing.assert_array_equal(a.obsm["spatial"], b.obsm["spatial"])
    for k in a.uns["truth"]:
        np.testing.assert_array_equal(a.uns["truth"][k], b.uns["truth"][k])
    np.testing.assert_array_equal(a.uns["spatial"]["simulated"]["images"]["hires"], b.uns["spatial"]["simulated"]["images"]["hires"])
    assert list(a.var["program"]) == list(b.var["program"])
    assert a.uns["stentrans"]["source"] == b.uns["stentrans"]["source"]


def test_same_seed_same_data_different_seed_different():
    a = sim(lattice="hex", size="st", n_genes=50, seed=1)
    b = simulate(lattice="hex", size="st", n_genes=50, seed=1)
    _assert_same(a, b)
    c = simulate(lattice="hex", size="st", n_genes=50, seed=2)
    assert a.n_obs != c.n_obs or not np.array_equal(a.X.toarray(), c.X.toarray())
    ta, tc = a.uns["truth"], c.uns["truth"]
    assert ta["mean"].shape != tc["mean"].shape or not np.array_equal(ta["mean"], tc["mean"])
    # the tissue and domains do not depend on the number of genes
    d = simulate(lattice="hex", size="st", n_genes=20, seed=1)
    assert list(d.obs_names) == list(a.obs_names)
    np.testing.assert_array_equal(d.uns["truth"]["domain"], a.uns["truth"]["domain"])


def test_h5ad_roundtrip_and_identical_files(tmp_path):
    a = sim(lattice="hex", size="st", n_genes=50, seed=1)
    f1, f2 = tmp_path / "a.h5ad", tmp_path / "b.h5ad"
    a.write_h5ad(f1)
    simulate(lattice="hex", size="st", n_genes=50, seed=1).write_h5ad(f2)
    assert f1.read_bytes() == f2.read_bytes()
    b = ad.read_h5ad(f1)
    _assert_same(a, b)
    assert b.uns["stentrans"]["simulation"]["seed"] == 1
    assert b.uns["truth"]["is_measured"].dtype == bool
    assert list(b.var["program"]) == list(a.var["program"])
    np.testing.assert_array_equal(b.obs["array_row"].to_numpy(), a.obs["array_row"].to_numpy())


def test_invalid_arguments():
    with pytest.raises(InputError, match="lattice"):
        simulate(lattice="triangle")
    with pytest.raises(InputError, match="size"):
        simulate(size="huge")
    with pytest.raises(InputError, match="n_domains"):
        simulate(n_domains=0)
    with pytest.raises(InputError, match="lost_fraction"):
        simulate(lost_fraction=1.5)


def test_explicit_shape():
    a = simulate(lattice="hex", shape=(20, 30), n_genes=10, seed=3)
    assert a.obs["array_row"].max() < 20 and a.obs["array_col"].max() < 30
    assert list(a.uns["stentrans"]["simulation"]["shape"]) == [20, 30]
    assert a.uns["stentrans"]["simulation"]["size"] == "custom"


# ---------------------------------------------------------------------------
# planted structure
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("lattice", ["square", "hex"])
def test_programs_are_spatially_structured(lattice):
    a = sim(lattice=lattice, size="st", n_genes=200, seed=1)
    prog = a.var["program"].astype(str).str.replace(r"_\d+$", "", regex=True).to_numpy()
    # neighbour autocorrelation (seeds 1-7 give domain 0.25-0.31, gradient
    # 0.12-0.21, periodic 0.04-0.07, noise 0.00-0.03; periodic genes with a
    # period of 2.5-4.5 spots correlate weakly with their direct neighbours)
    mi = _morans_i(a)
    med = {p: float(np.median(mi[prog == p])) for p in ("domain", "gradient", "periodic", "noise")}
    assert abs(med["noise"]) < 0.05
    assert med["domain"] > 0.18 and med["domain"] > med["noise"] + 0.15
    assert med["gradient"] > 0.08 and med["gradient"] > med["noise"] + 0.06
    assert med["periodic"] > med["noise"] + 0.015
    # measured expression follows the planted mean (seeds 1-7: domain 0.51-0.60,
    # gradient 0.33-0.47, periodic 0.36-0.44, noise -0.02-0.08)
    X = a.X.toarray()
    tot = X.sum(1, keepdims=True)
    Y = np.log1p(X / tot * np.median(tot))
    t = a.uns["truth"]
    pc = _pcc_cols(Y, np.log(t["mean"][t["is_measured"]]))
    med = {p: float(np.median(pc[prog == p])) for p in ("domain", "gradient", "periodic", "noise")}
    assert med["domain"] > 0.4 and med["gradient"] > 0.25 and med["periodic"] > 0.25
    assert med["noise"] < 0.15


def test_linear_interpolation_beats_nearest_but_is_not_perfect():
    """The fine truth has structure between spots: linear > NN, yet well below 1."""
    from scipy.interpolate import LinearNDInterpolator, NearestNDInterpolator

    a = sim(lattice="square", size="st", n_genes=200, seed=1)
    t = a.uns["truth"]
    new = ~t["is_measured"] & ~t["is_lost"]
    X = a.X.toarray()
    xy = t["spatial"][new]
    lin = LinearNDInterpolator(a.obsm["spatial"], X)(xy)
    nn = NearestNDInterpolator(a.obsm["spatial"], X)(xy)
    ok = ~np.isnan(lin).any(1)
    pattern = (a.var["program"].astype(str) != "noise").to_numpy()
    truth = t["mean"][new][ok][:, pattern]
    p_lin = np.median(_pcc_cols(lin[ok][:, pattern], truth))
    p_nn = np.median(_pcc_cols(nn[ok][:, pattern], truth))
    assert 0.45 < p_lin < 0.85
    assert p_lin > p_nn + 0.05


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------
def test_cli_roundtrip(tmp_path, capsys):
    out = tmp_path / "demo.h5ad"
    cmd = [sys.executable, "-m", "stentrans.cli", "simulate", "--lattice", "hex", "--n-genes", "40", "--seed", "5", "--n-domains", "3", "-o", str(out)]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert out.exists()
    assert not list(tmp_path.glob(".*part*"))  # atomic write left no temp file
    b = ad.read_h5ad(out)
    a = simulate(lattice="hex", n_genes=40, seed=5, n_domains=3)
    _assert_same(a, b)
    assert b.uns["stentrans"]["simulation"]["n_domains"] == 3
    # bad input: one line on stderr, exit status 2 (in-process: a second
    # interpreter start costs seconds)
    from stentrans.cli import main

    rc = main(["simulate", "--n-domains", "0", "-o", str(tmp_path / "x.h5ad")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "n_domains" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.h5ad").exists()
