"""Predictive intervals (stentrans.tl._intervals) and the model's own estimate at measured spots."""

from __future__ import annotations

import numpy as np
import pytest

import stentrans as st
from stentrans.grid import to_grid
from stentrans.lattice import coset_labels, enhanced_mask, kept_mask
from stentrans.models import registry
from stentrans.tl._intervals import calibrate, dispersion, trivial_width


def _sim(lattice, seed, n_genes=100):
    a = st.datasets.simulate(lattice=lattice, seed=seed, n_genes=n_genes)
    keep = np.asarray((a.X > 0).sum(0)).ravel() > 0.1 * a.n_obs
    truth = a.uns["truth"]
    return a[:, keep].copy(), truth, keep


def _truth_at(truth, gd, P, Q, keep):
    """The simulator's counts at the doubled-grid pixels (P, Q) and whether each has a truth."""
    rows, cols = gd.grid.up().coords(P, Q)
    key = {(float(r), float(c)): i for i, (r, c) in enumerate(zip(truth["array_row"], truth["array_col"]))}
    idx = np.array([key.get((float(r), float(c)), -1) for r, c in zip(rows, cols)])
    return np.asarray(truth["counts"])[np.maximum(idx, 0)][:, keep].astype(np.float64), idx >= 0


@pytest.mark.parametrize("lattice", ["square", "hex"])
def test_cosets_partition_the_lattice_and_separate_neighbours(lattice):
    shape = (10, 12)
    mask = np.ones(shape, dtype=bool)
    if lattice == "hex":
        mask &= np.indices(shape).sum(0) % 2 == 0
    lab = coset_labels(shape, lattice)
    assert np.array_equal(kept_mask(mask, lattice), mask & (lab == 0))
    assert sorted(np.unique(lab[mask]).tolist()) == [0, 1, 2, 3]
    steps = [(0, 1), (1, 0), (1, 1), (1, -1)] if lattice == "square" else [(0, 2), (1, 1), (1, -1)]
    p, q = np.nonzero(mask)
    for dp, dq in steps:
        p2, q2 = p + dp, q + dq
        ok = (p2 < shape[0]) & (q2 >= 0) & (q2 < shape[1])
        assert (lab[p[ok], q[ok]] != lab[p2[ok], q2[ok]]).all()


@pytest.mark.parametrize("lattice", ["square", "hex"])
def test_coverage_against_the_simulators_counts_at_two_levels(lattice):
    """Known counting noise: the simulator's counts at the new positions fall inside at the nominal rate."""
    a, truth, keep = _sim(lattice, 0)
    gd = to_grid(a)
    fitted = registry.make("robust").fit(gd.maps, gd.mask, lattice)
    H = enhanced_mask(gd.mask, lattice)
    P, Q = np.nonzero(H)
    est = np.maximum(fitted.estimate(gd.maps, gd.mask, H)[:, P, Q].T, 0)
    T, ok = _truth_at(truth, gd, P, Q, keep)
    new = ok & ~((P % 2 == 0) & (Q % 2 == 0))
    assert new.sum() > 500
    for level in (0.8, 0.9):
        cal = calibrate(fitted, gd.maps, gd.mask, lattice, level=level)
        assert abs(cal.held_out_coverage - level) < 0.01
        lo, hi = cal.bounds(est[new], P[new], Q[new])
        cov = float(np.mean((T[new] >= lo) & (T[new] <= hi)))
        assert abs(cov - level) <= 0.03, (level, cov)


def test_intervals_contain_the_estimate_and_are_never_negative(shared_data):
    a = st.read(shared_data / "visium_prostate_normal_crop")
    st.pp.filter_genes(a, min_spot_fraction=0.1)  # well-detected genes: most of their intervals span more than one count
    a = a[:, :300].copy()  # 300 of them: the checks are per value, and the whole slide took minutes
    gd = to_grid(a)
    lattice = a.uns["stentrans"]["lattice"]
    H = enhanced_mask(gd.mask, lattice)
    P, Q = np.nonzero(H)
    for method in ("robust", "linear"):
        fitted = registry.make(method).fit(gd.maps, gd.mask, lattice)
        est = np.maximum(fitted.estimate(gd.maps, gd.mask, H)[:, P, Q].T, 0)
        cal = calibrate(fitted, gd.maps, gd.mask, lattice, level=0.9)
        lo, hi = cal.bounds(est, P, Q)
        assert lo.shape == est.shape and hi.shape == est.shape
        assert (lo >= 0).all() and (lo <= est).all() and (est <= hi).all(), method
        assert (hi > lo).mean() > 0.5  # most intervals are not a single count


def test_robust_leave_one_out_is_the_estimate_from_the_neighbours():
    """self_weight 0 predicts a measured spot without its counts: changing them does not move its held-out value."""
    a, _, _ = _sim("hex", 1, n_genes=60)
    gd = to_grid(a)
    fitted = registry.make("robust").fit(gd.maps, gd.mask, "hex")
    p, q = np.nonzero(gd.mask)
    held = fitted.predict_held_out(gd.maps, gd.mask)
    assert held.shape == (a.n_vars, len(p))
    # the fitted context (library sizes, factors) stays: change one spot's counts and predict it again
    maps2 = gd.maps.copy()
    maps2[:, p[10], q[10]] *= 5
    res = fitted.result
    ctx = res.context_for(gd.maps, gd.mask)
    out1 = res.predict(gd.maps, gd.mask, context=ctx, self_weight=0.0)
    out2 = res.predict(maps2, gd.mask, context=ctx, self_weight=0.0)
    assert np.allclose(out1[:, 2 * p[10], 2 * q[10]], out2[:, 2 * p[10], 2 * q[10]], rtol=0.05, atol=1e-3)
    own = res.predict(maps2, gd.mask, context=ctx, self_weight=1.0)
    assert not np.allclose(own[:, 2 * p[10], 2 * q[10]], out1[:, 2 * p[10], 2 * q[10]], rtol=0.05)


def test_dispersion_and_trivial_width():
    rng = np.random.default_rng(0)
    mu = rng.uniform(1, 20, size=(4000, 3))
    phi_true = np.array([0.0, 0.2, 1.0])
    n = 1 / np.maximum(phi_true, 1e-9)
    y = rng.negative_binomial(n, n / (n + mu))
    phi = dispersion(y, mu)
    assert np.allclose(phi, phi_true, atol=0.05), phi
    w = trivial_width(np.arange(101, dtype=float)[:, None])
    assert w.tolist() == [90.0]
    with pytest.raises(st.InputError, match="between 0 and 1"):
        calibrate(None, np.zeros((1, 2, 2)), np.ones((2, 2), bool), "square", level=1.5)


def test_nested_coverage_protocol_scores_the_removed_spots():
    """Protocol nested-coverage: calibrated on D(G) alone, the removed spots' counts fall inside at about the level; robust narrower than the trivial interval."""
    a, _, _ = _sim("hex", 1, n_genes=60)
    res = st.tl.evaluate(a, protocol="nested-coverage", methods=["robust", "linear"], seeds=[0], progress=False, dataset="sim")
    assert res["per_gene"].empty and set(res["coverage"]["protocol"]) == {"nested-coverage"}
    cs = res["coverage_summary"].set_index("method")
    n_removed = int(res["info"]["n_removed"])
    assert (cs["n_spots"] == n_removed).all() and (cs["n_genes"] == a.n_vars).all()
    for m in ("robust", "linear"):
        assert 0.86 <= cs.loc[m, "coverage"] <= 0.94, cs
        assert cs.loc[m, "coverage_p5"] <= cs.loc[m, "coverage"] <= cs.loc[m, "coverage_p95"]
    # the smooth model's intervals are narrower than linear's (its held-out residuals are smaller);
    # on this low-count simulation counting noise alone spans about the trivial range
    assert cs.loc["robust", "width"] < 0.8 * cs.loc["linear", "width"]
    # the share of all values is the mean of the per-gene shares (same positions for every gene)
    cov = res["coverage"]
    assert cov.loc[cov["method"] == "robust", "coverage"].mean() == pytest.approx(cs.loc["robust", "coverage"])
    assert (cov["dataset"] == "sim").all()


def test_interval_map_draws_every_position_and_outlines_the_low_confidence_ones(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    a, _, _ = _sim("hex", 2, n_genes=30)
    e = st.tl.enhance(a, progress=False)
    low = e.obs["low_confidence"].to_numpy()
    fig = st.pl.interval_map(e, gene=e.var_names[0], save=tmp_path / "imap")
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"][:3]
    # every position one tile in each panel; the right panel adds one outline per low-confidence position
    assert [len(ax.collections[0].get_array()) for ax in axes] == [e.n_obs] * 3
    j = 0
    rel = (np.asarray(e.layers["upper"][:, j]) - np.asarray(e.layers["lower"][:, j])).ravel() / float(e.var["trivial_width"].iloc[j])
    assert np.allclose(np.asarray(axes[1].collections[0].get_array()), rel)
    assert low.any() and len(axes[2].collections[1].get_paths()) == int(low.sum())
    assert (tmp_path / "imap.png").stat().st_size > 0
    import matplotlib.pyplot as plt

    plt.close(fig)
    with pytest.raises(st.InputError, match="lower"):
        st.pl.interval_map(st.tl.enhance(a, interval=0, progress=False))


def test_calibration_is_the_same_in_gene_chunks():
    """The held-out predictions are made a gene chunk at a time (bounded memory): the same calibration whatever the chunk."""
    a, _, _ = _sim("square", 3, n_genes=40)
    gd = to_grid(a)
    fitted = registry.make("robust").fit(gd.maps, gd.mask, "square")
    one, small = (calibrate(fitted, gd.maps, gd.mask, "square", chunk=c) for c in (512, 7))
    np.testing.assert_allclose(small.phi, one.phi, rtol=1e-5)
    np.testing.assert_allclose(small.scale, one.scale, rtol=1e-5)
    assert small.q == pytest.approx(one.q)
