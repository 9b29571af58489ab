"""Downstream scores (stentrans.tl._downstream, issue 28): the metrics with numbers, and the default output on a simulated slide.

The counts layer equal to the input at the measured spots is tested in
tests/test_enhance.py (test_enhance_robust_method).
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import stentrans as st
from stentrans.datasets import simulate
from stentrans.metrics import pcc


def _two_tissues(n=400, genes=40, seed=0, split=False):
    """Two tissue types of equal size; measured positions every other one (interleaved) or one tissue each (split)."""
    rng = np.random.default_rng(seed)
    kind = np.repeat([0, 1], n // 2)
    mean = np.where(kind[:, None] == 0, 5.0, 1.0) * np.ones(genes)
    mean[:, : genes // 2] = np.where(kind[:, None] == 0, 1.0, 5.0)
    X = rng.poisson(mean * 20).astype(np.float32)
    meas = kind == 0 if split else (np.arange(n) % 2 == 0)
    return X, meas


def test_mixing_interleaved_vs_split():
    X, meas = _two_tissues()
    shares = st.tl.mixing_shares(X, is_measured=meas)
    # measured and new positions drawn alike within each tissue: the kNN graph does not tell them apart
    assert shares["measured_share"] == 0.5
    assert abs(shares["mixing"]) <= st.tl.MIXING_BOUND
    # measured = one tissue, new = the other: every neighbour of a measured position is measured
    X, meas = _two_tissues(split=True)
    s = st.tl.mixing_shares(X, is_measured=meas)
    assert s["measured_neighbours"] == 1.0 and s["new_neighbours"] == 0.0
    assert st.tl.mixing(X, is_measured=meas) == pytest.approx(0.5)
    with pytest.raises(st.InputError, match="both measured and new"):
        st.tl.mixing(X, is_measured=np.ones(len(X), bool))
    with pytest.raises(st.InputError, match="is_imputed"):
        st.tl.mixing(ad.AnnData(X))


def test_domains_ari_and_ceiling():
    X, _ = _two_tissues(split=True)
    truth = np.repeat([0, 1], 200)
    d = st.tl.domains(X, k=2)
    assert set(d) == {"kmeans", "leiden"}
    assert st.tl.ari(d["kmeans"], truth) == 1.0
    assert st.tl.ari(truth, 1 - truth) == 1.0  # labels are names only
    assert abs(st.tl.ari(truth, np.random.default_rng(0).permutation(truth))) < 0.02
    # two binomial halves of two well-separated tissues agree on them
    assert st.tl.domain_ceiling(X, methods=("kmeans",), k=2) == {"kmeans": 1.0}
    with pytest.raises(st.InputError, match="integer counts"):
        st.tl.domain_ceiling(X + 0.5)


def test_svg_and_term_agreement():
    genes = [f"g{i}" for i in range(200)]
    ref = pd.Series(np.linspace(1, 0, 200), index=genes)
    same = st.tl.svg_agreement(ref, ref)
    assert same["spearman"] == pytest.approx(1.0) and same["top_overlap"] == 1.0 and same["top"] == 50
    rev = st.tl.svg_agreement(-ref, ref)
    assert rev["spearman"] == pytest.approx(-1.0) and rev["top_overlap"] == 0.0
    # genes shared by both only (39): the top half of them (19) compared
    part = st.tl.svg_agreement(ref.iloc[:40], ref.iloc[1:41])
    assert part["n_genes"] == 39 and part["top"] == 19 and part["top_overlap"] == 1.0
    t = st.tl.term_agreement({"a", "b", "c"}, {"b", "c", "d", "e"})
    assert t["precision"] == pytest.approx(2 / 3) and t["recall"] == 0.5 and t["n_shared"] == 2
    assert np.isnan(st.tl.term_agreement(set(), {"a"})["precision"]) and st.tl.term_agreement(set(), {"a"})["recall"] == 0.0


@pytest.mark.parametrize("lattice", ["square", "hex"])
def test_positions_nearest_and_downsample(lattice):
    a = simulate(lattice, n_genes=12, seed=3, size="st")
    tr = a.uns["truth"]
    ref = ad.AnnData(np.asarray(tr["counts"]), obs=pd.DataFrame({"array_row": tr["array_row"], "array_col": tr["array_col"]}), var=pd.DataFrame(index=a.var_names))
    ref.uns["stentrans"] = {"lattice": lattice}
    # measured only: at a measured spot its own counts, elsewhere a measured spot's (the nearest)
    mo = st.tl.nearest_measured(ref, a)
    at = st.tl.match_positions(ref, a)
    meas = at >= 0
    assert np.array_equal(mo.X[meas], a.X.toarray()[at[meas]])
    assert np.array_equal(mo.obs["is_imputed"].to_numpy(), ~meas)
    rows_of_a = {r.tobytes() for r in a.X.toarray()}
    assert all(r.tobytes() in rows_of_a for r in mo.X[~meas][:50])
    # D(G) on its own lattice; upsampled_coords carries it back onto G's spots
    dg = st.tl.downsample_spots(a)
    assert 0.2 < dg.n_obs / a.n_obs < 0.3
    r, c = st.tl.upsampled_coords(dg, dg.obs["array_row"], dg.obs["array_col"])
    back = st.tl.match_positions(pd.DataFrame({"array_row": r, "array_col": c}).pipe(lambda o: ad.AnnData(obs=o)), a)
    assert (back >= 0).all() and np.array_equal(a.X[back].toarray(), dg.X.toarray())
    # enhancing D(G) predicts G's removed spots: Linear, which keeps the measured values, reproduces the kept ones
    enh = st.tl.enhance(dg, method="linear", progress=False, interval=0)
    enh.obs["array_row"], enh.obs["array_col"] = st.tl.upsampled_coords(dg, enh.obs["array_row"], enh.obs["array_col"])
    hit = st.tl.match_positions(a, enh)
    assert (hit >= 0).mean() > 0.8
    common = st.tl.common_positions(a, enh)
    al = st.tl.align_positions(enh, a, rows=common)
    assert al.n_obs == len(common) and np.array_equal(al.obs["array_row"].to_numpy(float), a.obs["array_row"].to_numpy(float)[common])


def test_morans_i_sees_patterns():
    pytest.importorskip("squidpy")
    a = simulate("hex", n_genes=40, seed=2, size="st")
    mi = st.tl.morans_i(a)
    prog = a.var["program"].to_numpy()
    # domain genes (the strongest patterns) well above the noise genes, which sit near 0
    dom = np.char.startswith(prog.astype(str), "domain")
    assert mi[dom].mean() > 0.15 > 0.05 > abs(mi[prog == "noise"].mean())
    assert mi[prog != "noise"].mean() > 3 * abs(mi[prog == "noise"].mean())


@pytest.fixture(scope="module")
def default_hex():
    a = simulate("hex", seed=2, size="st")
    return a, st.tl.enhance(a, progress=False, interval=0)


def test_default_output_is_one_data_set_on_a_simulated_slide(default_hex):
    """Issue 28's must-show on a simulated slide: mixing within the bound; the measured-spot estimate nearer the truth than the counts."""
    a, e = default_hex
    m = ~e.obs["is_imputed"].to_numpy()
    mix = st.tl.mixing(e)
    assert abs(mix) <= st.tl.MIXING_BOUND, mix
    # the behaviour before (counts in X at the measured spots) splits the graph by provenance
    old = np.asarray(e.X).copy()
    old[m] = e.layers["counts"][m].toarray()
    assert st.tl.mixing(old, is_measured=m) > 3 * st.tl.MIXING_BOUND  # 0.22 here
    tr = a.uns["truth"]
    ref = ad.AnnData(obs=pd.DataFrame({"array_row": tr["array_row"], "array_col": tr["array_col"]}))
    at = st.tl.match_positions(e[m], ref)
    mean = np.asarray(tr["mean"])[at]
    est, counts = np.asarray(e.X[m]), e.layers["counts"][m].toarray()
    r_est, r_cnt = np.nanmedian(pcc(est, mean)), np.nanmedian(pcc(counts, mean))
    assert r_est > r_cnt + 0.2, (r_est, r_cnt)
    assert ((est - mean) ** 2).mean() < 0.5 * ((counts - mean) ** 2).mean()


def test_mixing_bound_on_a_simulated_square_slide():
    """Within the bound since lost spots are filled and every gene seen in 3 spots is kept (before: -0.052 .. -0.059, seeds 0-2)."""
    a = simulate("square", seed=2, size="st")
    assert abs(st.tl.mixing(st.tl.enhance(a, progress=False, interval=0))) <= st.tl.MIXING_BOUND


def test_downstream_scores_every_output():
    pytest.importorskip("squidpy")
    a = simulate("square", n_genes=30, seed=4, size="st")
    tr = a.uns["truth"]
    obs = pd.DataFrame({"array_row": tr["array_row"], "array_col": tr["array_col"], "is_imputed": ~np.asarray(tr["is_measured"], bool)})
    ref = ad.AnnData(np.asarray(tr["counts"]), obs=obs, var=pd.DataFrame(index=a.var_names))
    ref.uns["stentrans"] = {"lattice": "square"}
    outs = {"linear": st.tl.enhance(a, method="linear", progress=False, interval=0), "measured-only": st.tl.nearest_measured(ref, a)}
    res = st.tl.downstream(ref, outs)
    rows = {r["output"]: r for r in res["rows"]}
    assert list(rows) == ["truth", "linear", "measured-only"]
    assert rows["truth"]["ari_kmeans"] == 1.0 and rows["truth"]["moran_spearman"] == pytest.approx(1.0)
    assert res["n_positions"] <= ref.n_obs and res["n_genes"] == 30
    for r in list(rows.values())[1:]:
        assert 0.0 < r["ari_kmeans"] < 1.0 and 0.0 < r["moran_spearman"] < 1.0 and -1 < r["mixing"] < 1
    # the truth's halves at half the depth agree with each other less than perfectly, but far above chance
    assert 0.1 < res["ceiling"]["ari_kmeans"] < 1.0


def test_downstream_reference_of_a_simulation_and_of_finer_data(tmp_path):
    a = simulate("hex", n_genes=12, seed=1, size="st")
    ref = st.tl.downstream_reference(a)
    tr = a.uns["truth"]
    assert ref.n_obs == len(tr["array_row"]) and list(ref.var_names) == list(a.var_names)
    assert int((~ref.obs["is_imputed"]).sum()) == int(np.asarray(tr["is_measured"]).sum())
    # at the measured spots the truth is the measurement itself
    at = st.tl.match_positions(a, ref)
    assert (at >= 0).all() and np.array_equal(ref.X[at], np.asarray(a.X.todense() if hasattr(a.X, "todense") else a.X))
    # finer data's truth must say which positions are new; the error names the file and the field
    bad = ad.AnnData(np.ones((3, 2), np.float32), obs=pd.DataFrame({"array_row": [0.0, 0.5, 1.0], "array_col": [0.0, 0.5, 1.0]}, index=list("abc")))
    path = tmp_path / "truth.h5ad"
    bad.write_h5ad(path)
    with pytest.raises(st.InputError, match=r'truth\.h5ad.*obs\["is_imputed"\]'):
        st.tl.downstream_reference(a, truth=path)
    with pytest.raises(st.InputError, match=r'uns\["truth"\]'):
        st.tl.downstream_reference(ad.AnnData(np.ones((2, 2), np.float32)))


def test_downstream_to_writes_the_table_the_page_shows(tmp_path):
    pytest.importorskip("squidpy")
    from stentrans.report.downstream import downstream_section
    from stentrans.run import downstream_to

    a = st.pp.qc(simulate("square", n_genes=20, seed=3, size="st"))
    a = a[7:].copy()  # spots QC would drop: their positions are predicted, so they count as new
    (tmp_path / "taken").write_text("")
    with pytest.raises(st.InputError, match="taken"):  # the output folder is checked before any work
        downstream_to(a, tmp_path / "taken")
    res = downstream_to(a, tmp_path / "ds", outputs=["robust", "linear", "measured-only"], max_genes=15, dataset="sim", device="cpu")
    t = pd.read_csv(res["files"]["downstream"], sep="\t")
    assert list(t["output"]) == ["truth", "robust", "linear", "measured-only", "truth halves"] and set(t["n_genes"]) == {15}
    assert set(t["n_measured"]) == {a.n_obs}
    by = t.set_index("output")
    assert by.loc["truth", "ari_kmeans"] == 1.0 and 0.2 < by.loc["truth halves", "ari_kmeans"] < 1.0
    assert (by.loc[["truth", "robust", "linear", "measured-only"], "mixing"].abs() < 0.1).all()  # -0.065, +0.033 here
    for o in ("robust", "linear", "measured-only"):
        assert 0.05 < by.loc[o, "ari_kmeans"] < by.loc["truth halves", "ari_kmeans"], o
    page = "\n".join(downstream_section(t))
    assert f"| sim | stEnTrans robust | {by.loc['robust', 'mixing']:.3f} |" in page
    worse = by.loc["robust", "ari_kmeans"] < by.loc[["linear", "measured-only"], "ari_kmeans"].max()
    assert ("enhancement does not help k-means domains here" in page) == worse


def test_downstream_verdicts_say_where_enhancement_does_not_help():
    from stentrans.report.downstream import verdicts

    t = pd.DataFrame(
        {
            "dataset": ["A"] * 3 + ["B"] * 3,
            "output": ["robust", "linear", "measured-only"] * 2,
            "mixing": [0.06, -0.2, 0.0, -0.01, -0.1, 0.0],
            "ari_kmeans": [0.2, 0.3, 0.1, 0.5, 0.3, 0.4],
            "moran_spearman": [0.9, 0.5, 0.6, 0.1, 0.5, 0.6],
        }
    )
    a, b = verdicts(t)
    assert a.startswith("**A**: mixing of the default +0.060 (outside ±0.05)")
    assert "k-means domains: default 0.200 vs Linear 0.300, measured only 0.100: enhancement does not help k-means domains here" in a
    assert "spatially variable genes: default 0.900 vs Linear 0.500, measured only 0.600: at or above Linear and measured only" in a
    assert "(within ±0.05)" in b and "k-means domains: default 0.500 vs Linear 0.300, measured only 0.400: at or above" in b
    assert "enhancement does not help spatially variable genes here" in b
    # without squidpy and leidenalg the page says what was left out and how to get it
    from stentrans.report.downstream import downstream_section

    page = "\n".join(downstream_section(t.drop(columns=["moran_spearman"])))
    assert "Left out (not installed): Leiden domains (the `leiden` extra); spatially variable genes (Moran's I: the `squidpy` extra)." in page
    assert "spatially variable genes:" not in page and "k-means domains: default 0.200" in page


def test_the_noise_free_truth_itself_can_miss_the_mixing_bound():
    """Why the bound is missed narrowly on two real slides: a smooth field on the 2x lattice has negative mixing by geometry.

    The simulator's noise-free expression at every position (the best any
    estimate can do) mixes at -0.070 on this slide, outside the bound; the
    default is as consistent as it (-0.047), and within the bound.
    """
    a = simulate("hex", seed=1, size="st", n_genes=200)
    ref = st.tl.downstream_reference(a)
    ideal = st.tl.mixing(np.asarray(a.uns["truth"]["mean"], np.float32), is_measured=~ref.obs["is_imputed"].to_numpy())
    default = st.tl.mixing(st.tl.enhance(st.pp.qc(a), progress=False, interval=0))
    assert ideal < -st.tl.MIXING_BOUND, ideal
    assert abs(default) <= st.tl.MIXING_BOUND and abs(default - ideal) < 0.03, (default, ideal)
