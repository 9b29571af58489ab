"""Lost spots: detection on both lattices, filling by enhancement, the ``lost`` protocol, CLI flags."""

from __future__ import annotations

import subprocess
import sys

import anndata as ad
import numpy as np
import pytest

import stentrans as st
from stentrans import lost
from stentrans._errors import InputError
from stentrans.grid import to_grid
from stentrans.lattice import NEIGHBOUR_OFFSETS, Grid, enhanced_mask
from stentrans.datasets import simulate
from stentrans.tl import enhance
from stentrans.tl._lost_protocol import draw_holes, interior


def _hex_block(u=9, v=18):
    p, q = np.indices((u, v))
    return (p + q) % 2 == 0


# ---------------------------------------------------------------------------
# detection
# ---------------------------------------------------------------------------
def test_detect_square_hole_found_edge_not():
    m = np.zeros((9, 9), dtype=bool)
    m[2:7, 2:7] = True
    m[4, 4] = False  # interior hole: 4 of 4 neighbours measured
    m[2, 4] = False  # a one-spot notch in the outline: 3 of 4, but open to the outside
    found = lost.detect(m, "square")
    assert found[4, 4] and not found[2, 4]
    # outside a straight edge (1 of 4) and outside a corner (0 of 4, or 2 of 4 at a concave corner) never
    assert not found[1, 3] and not found[1, 1] and not found[7, 4]
    assert found.sum() == 1
    assert lost.outside(m, "square")[2, 4] and not lost.outside(m, "square")[4, 4]
    # two neighbouring holes: 3 of 4 each, enclosed
    m[4, 5] = False
    assert lost.detect(m, "square")[4, 4:6].all()
    m[4, 5] = True
    # a corner cut: the missing corner spot has 2 of 4 measured neighbours, it is edge
    m2 = np.zeros((6, 6), dtype=bool)
    m2[1:5, 1:5] = True
    m2[1, 1] = False
    assert not lost.detect(m2, "square").any()
    # an enclosed 3 x 3 tissue-free area (a lumen) is not lost: too few measured neighbours
    m3 = np.zeros((9, 9), dtype=bool)
    m3[1:8, 1:8] = True
    m3[3:6, 3:6] = False
    assert not lost.detect(m3, "square").any()


def test_detect_hex_hole_found_edge_not():
    lat = _hex_block()
    m = lat.copy()
    m[0, :] = m[-1, :] = False
    m[:, :2] = m[:, -2:] = False
    m[4, 8] = False  # interior hole (6 of 6)
    found = lost.detect(m, "hex")
    assert found[4, 8]
    assert found.sum() == 1
    # every found position is a lattice point; an edge position (row 0) is not lost
    assert (found <= lat).all() and not found[0].any()
    # two neighbouring holes: each keeps 5 of 6 measured neighbours
    m[4, 10] = False
    assert lost.detect(m, "hex")[[4, 4], [8, 10]].all()
    # a notch in the top row of the tissue (4 of 6 measured, open to the outside) is edge
    m[1, 9] = False
    assert lost.neighbour_counts(m, "hex")[1, 9] == 4 and not lost.detect(m, "hex")[1, 9]
    assert lost.neighbour_counts(lat, "hex")[4, 8] == 6


def test_parse_positions_st_ids_and_pairs(tmp_path):
    # ST id XxY: array_col = X, array_row = Y
    assert lost.parse_positions("5x10,10x14, 15x22") == [(10, 5), (14, 10), (22, 15)]
    assert lost.parse_positions([(3, 4), "7x2", [3, 4]]) == [(3, 4), (2, 7)]
    f = tmp_path / "lost.txt"
    f.write_text("# lost spots\n10,5\n14 10\n15x22\n\n")
    assert lost.read_positions_file(f) == [(10, 5), (14, 10), (22, 15)]
    f.write_text("10,5\nfoo\n")
    with pytest.raises(InputError, match="line 2.*'foo'"):
        lost.read_positions_file(f)
    with pytest.raises(InputError, match="'5y10'"):
        lost.parse_positions("5x10,5y10")
    assert lost.st_ids([(10, 5), (14, 10)]) == ["5x10", "10x14"]


def test_resolve_checks_given_positions():
    g = Grid("hex", 0.0, 0.0, (6, 10))
    m = _hex_block(6, 10)
    m[2, 4] = False
    mode, mask = lost.resolve([(2, 4)], g, m)
    assert mode == "given" and mask.sum() == 1 and mask[2, 4]
    with pytest.raises(InputError, match=r"\(2, 3\).*hex lattice"):
        lost.resolve([(2, 3)], g, m)
    with pytest.raises(InputError, match=r"\(2, 6\).*measured"):
        lost.resolve([(2, 6)], g, m)
    with pytest.raises(InputError, match=r"\(20, 4\).*outside"):
        lost.resolve([(20, 4)], g, m)
    assert lost.resolve("none", g, m)[1].sum() == 0
    assert lost.resolve("auto", g, m)[1][2, 4]


# ---------------------------------------------------------------------------
# filling by enhancement
# ---------------------------------------------------------------------------
def _punch(a, n=3, seed=0):
    """``a`` without ``n`` interior spots; returns (AnnData, removed (row, col) list)."""
    gd = to_grid(a)
    holes = draw_holes(gd.mask, gd.grid.lattice, seed, fraction=0.5)
    hp, hq = np.nonzero(holes)
    pick = np.random.default_rng(seed).choice(hp.size, size=n, replace=False)
    rows, cols = gd.grid.coords(hp[pick], hq[pick])
    rc = list(zip(np.rint(rows).astype(int).tolist(), np.rint(cols).astype(int).tolist()))
    drop = set(rc)
    keep = [(int(r), int(c)) not in drop for r, c in zip(a.obs["array_row"], a.obs["array_col"])]
    return a[np.asarray(keep)].copy(), rc


@pytest.mark.parametrize("lattice", ["square", "hex"])
def test_filled_positions_on_lattice_and_H_of_completed_mask(lattice):
    a = simulate(lattice, n_genes=12, seed=3, lost_fraction=0.0)
    b, rc = _punch(a)
    gd = to_grid(b)
    fitted = st.tl.train(b, method="linear", progress=False)
    enh = enhance(b, model=fitted, fill_lost=rc, progress=False)
    obs = enh.obs
    is_lost = obs["is_lost"].to_numpy()
    assert obs["is_lost"].dtype == bool and is_lost.sum() == len(rc)
    assert obs.loc[is_lost, "is_imputed"].all() and (obs.loc[is_lost, "barcode"] == "").all()
    # lost positions are integer lattice points of the measured grid
    lr, lc = obs.loc[is_lost, "array_row"].to_numpy(), obs.loc[is_lost, "array_col"].to_numpy()
    assert np.array_equal(lr, np.rint(lr)) and np.array_equal(lc, np.rint(lc))
    assert set(zip(lr.astype(int).tolist(), lc.astype(int).tolist())) == set(rc)
    p, q = gd.grid.pixels(lr, lc)  # raises when off the grid or (hex) off the checkerboard
    # the enhanced positions are exactly H(M) of the completed mask
    full = gd.mask.copy()
    full[p, q] = True
    H = enhanced_mask(full, lattice)
    up = gd.grid.up()
    Pe, Qe = up.pixels(obs["array_row"].to_numpy(), obs["array_col"].to_numpy())
    got = np.zeros_like(H)
    got[Pe, Qe] = True
    assert np.array_equal(got, H)
    assert enh.n_obs > enhance(b, model=fitted, progress=False, fill_lost="none").n_obs
    # the midpoints between a lost spot and its neighbours are there
    dr, dc = NEIGHBOUR_OFFSETS[lattice][0]
    assert H[2 * p[0] + dr, 2 * q[0] + dc]
    st_uns = enh.uns["stentrans"]
    assert st_uns["fill_lost"] == "given" and st_uns["n_lost"] == len(rc)
    assert sorted(map(tuple, np.asarray(st_uns["lost"]).tolist())) == sorted(rc)
    # interpolation at a lost spot lies within its neighbours' range
    assert np.isfinite(enh.X).all() and enh.X[is_lost].sum() > 0


def test_every_method_fills_lost_spots():
    a = simulate("square", n_genes=10, seed=4, lost_fraction=0.0)
    b, rc = _punch(a, n=2)
    for method in ("linear", "cubic", "nn", "nedi", "robust", "dist", "stentrans"):
        kw = {"epochs": 2, "batch_size": 16} if method in ("dist", "stentrans") else {}
        if method == "stentrans":
            kw["depth"] = 1
        fitted = st.tl.train(b, method=method, progress=False, seed=0, **kw)
        base = enhance(b, model=fitted, progress=False)
        enh = enhance(b, model=fitted, fill_lost=rc, progress=False)
        is_lost = enh.obs["is_lost"].to_numpy()
        assert is_lost.sum() == 2, method
        assert np.isfinite(enh.X).all(), method
        # the other positions are predicted as without lost spots (the input mask stays M)
        np.testing.assert_array_equal(enh[base.obs_names].X, base.X, err_msg=method)
        if method not in ("dist", "stentrans"):  # two epochs of a network predict little
            assert (enh.X[is_lost].sum(1) > 0).all(), method


def test_simulator_lost_spots_predicted_and_scored_against_truth():
    from stentrans.metrics import pcc

    a = simulate("square", n_genes=40, seed=1, lost_fraction=0.05)
    truth = a.uns["truth"]
    enh = enhance(a, model=st.tl.train(a, method="linear", progress=False), fill_lost="auto", progress=False)
    filled = enh.obs[enh.obs["is_lost"]]
    key = {(r, c): i for i, (r, c) in enumerate(zip(truth["array_row"], truth["array_col"]))}
    rows = np.array([key[(r, c)] for r, c in zip(filled["array_row"], filled["array_col"])])
    # every filled position is one of the simulator's lost spots
    assert np.asarray(truth["is_lost"])[rows].all() and rows.size >= 5
    r = pcc(enh[filled.index].X.astype(np.float64), np.asarray(truth["mean"])[rows].astype(np.float64))
    assert np.nanmedian(r) > 0.3
    # the lost protocol scores them too
    res = st.tl.evaluate(a, protocol="lost", methods=["linear", "nn"], seeds=2, progress=False)
    s = res["summary"].set_index(["method", "protocol"])
    assert {"lost", "lost-truth", "lost-truth-counts"} <= set(res["per_gene"]["protocol"])
    assert s.loc[("linear", "lost-truth"), "n_spots"] == rows.size
    assert s.loc[("linear", "lost-truth"), "mean"] > 0.3
    assert s.loc[("linear", "lost"), "mean"] > 0.1


# ---------------------------------------------------------------------------
# the lost protocol
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("lattice", ["square", "hex"])
def test_holes_are_interior_and_apart(lattice):
    a = simulate(lattice, n_genes=4, seed=2)
    gd = to_grid(a)
    h0 = draw_holes(gd.mask, lattice, 0)
    h1 = draw_holes(gd.mask, lattice, 1)
    assert np.array_equal(h0, draw_holes(gd.mask, lattice, 0)) and not np.array_equal(h0, h1)
    assert (h0 <= interior(gd.mask, lattice)).all()
    assert h0.sum() == round(0.075 * gd.mask.sum())
    # no hole touches another: every neighbour of a hole is measured and kept
    kept = gd.mask & ~h0
    assert np.array_equal(lost.detect(kept, lattice, min_neighbours=len(NEIGHBOUR_OFFSETS[lattice])) & gd.mask, h0)


def test_lost_protocol_on_real_spots_without_truth():
    a = simulate("hex", n_genes=16, seed=5, size="st")
    del a.uns["truth"]
    res = st.tl.evaluate(a, protocol="lost", methods=["linear"], seeds=[0, 1], progress=False)
    assert set(res["per_gene"]["protocol"]) == {"lost"}
    n = res["per_gene"]["n_spots"].unique()
    assert n.size == 1 and n[0] == round(0.075 * a.n_obs)


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------
def _cli(*args):
    return subprocess.run([sys.executable, "-m", "stentrans.cli", *map(str, args)], capture_output=True, text=True)


def test_cli_fill_lost_flags(tmp_path):
    a = simulate("square", n_genes=8, seed=6, lost_fraction=0.0)
    b, rc = _punch(a, n=2)
    inp = tmp_path / "in.h5ad"
    b.write_h5ad(inp)
    common = ["--method", "linear", "--no-filter", "--interval", "0"]
    ids = ",".join(lost.st_ids(rc))
    out = tmp_path / "ids.h5ad"
    r = _cli("enhance", inp, "-o", out, "--lost", ids, *common)
    assert r.returncode == 0, r.stderr
    e = ad.read_h5ad(out)
    assert e.uns["stentrans"]["fill_lost"] == "given" and int(e.obs["is_lost"].sum()) == 2
    f = tmp_path / "lost.txt"
    f.write_text("".join(f"{r_},{c_}\n" for r_, c_ in rc))
    out2 = tmp_path / "file.h5ad"
    assert _cli("enhance", inp, "-o", out2, "--lost-file", f, *common).returncode == 0
    np.testing.assert_array_equal(ad.read_h5ad(out2).X, e.X)
    out3 = tmp_path / "auto.h5ad"
    assert _cli("enhance", inp, "-o", out3, "--fill-lost", "auto", *common).returncode == 0
    e3 = ad.read_h5ad(out3)
    assert e3.uns["stentrans"]["fill_lost"] == "auto" and set(lost.st_ids(rc)) <= set(lost.st_ids(e3.uns["stentrans"]["lost"]))
    # bad values: one line naming the value, exit 2, nothing written
    for bad, word in (("5y10", "5y10"), ("1000x1000", "(1000, 1000)"), (lost.st_ids([(int(b.obs['array_row'].iloc[0]), int(b.obs['array_col'].iloc[0]))])[0], "measured")):
        o = tmp_path / "bad.h5ad"
        r = _cli("enhance", inp, "-o", o, "--lost", bad, *common)
        assert r.returncode == 2, (bad, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and word in lines[0] and "--lost" in lines[0] and "Traceback" not in r.stderr, r.stderr
        assert not o.exists()
    r = _cli("enhance", inp, "-o", tmp_path / "x.h5ad", "--fill-lost", "sometimes", *common)
    assert r.returncode == 2 and "sometimes" in r.stderr


def test_tissue_mode_reads_space_ranger_in_tissue_positions(shared_data):
    """The reader records the in-tissue positions of the positions file; ``"tissue"`` finds those without a spot, reading no file."""
    path = shared_data / "visium_prostate_normal_crop"
    if not path.exists():
        pytest.skip(f"{path} not found")
    a = st.read(path)
    assert a.uns["stentrans"]["n_positions_without_counts"] == 0 and len(a.uns["stentrans"]["in_tissue_positions"]) == a.n_obs
    b = a[20:].copy()  # as if QC had removed the first 20 spots
    b.uns["stentrans"]["positions_file"] = str(path / "no_such_file.csv")  # nothing is read again
    gd = to_grid(b[:, :0])
    mode, found = lost.resolve("tissue", gd.grid, gd.mask, adata=b)
    got = set(map(tuple, lost.positions_of(found, gd.grid).tolist()))
    dropped = set(zip(a.obs["array_row"][:20].astype(int).tolist(), a.obs["array_col"][:20].astype(int).tolist()))
    assert mode == "tissue" and got <= dropped and len(got) >= 15  # those inside the remaining spots' extent
    with pytest.raises(InputError, match="positions file"):
        lost.resolve("tissue", gd.grid, gd.mask, adata=simulate("hex", n_genes=2, seed=0))
