"""Evaluation protocols, per-gene PCC, tables, figures and the ``evaluate`` command."""

from __future__ import annotations

import math

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.stats import pearsonr

from stentrans import pl
from stentrans.metrics import pcc
from stentrans.report import ablation_table, to_markdown
from stentrans.tl import summarize
from stentrans.tl._evaluate import PER_GENE_COLUMNS, evaluate
from stentrans.tl._protocols import ProtocolData
from stentrans.lattice import enhanced_mask, kept_mask

TINY = dict(depth=1, heads=4, patch_size=3)


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    # these models are tiny: on a shared 2-core machine one thread is several
    # times faster than two (no OpenMP hand-offs between busy cores)
    monkeypatch.setenv("STENTRANS_THREADS", "1")
FAST_DIST = {"dist": {"epochs": 2, "width": 8}}


def toy(lattice="square", u=12, v=14, n_genes=8, seed=0, holes=True):
    """Smooth count-like maps on a square or hex lattice (a few spots missing)."""
    rng = np.random.default_rng(seed)
    rr, cc = np.mgrid[0:u, 0:v]
    on = np.ones((u, v), bool) if lattice == "square" else (rr + cc) % 2 == 0
    if holes:
        on &= ~((rr < 3) & (cc < 4))
    r, c = rr[on], cc[on]
    X = np.empty((r.size, n_genes), np.float32)
    for g in range(n_genes):
        f = rng.uniform(0.2, 0.6, 2)
        ph = rng.uniform(0, 6, 2)
        X[:, g] = np.round(20 * (1.2 + np.sin(f[0] * r + ph[0]) * np.cos(f[1] * c + ph[1])) + rng.poisson(2, r.size))
    a = ad.AnnData(
        X=sp.csr_matrix(X),
        obs=pd.DataFrame({"array_row": r, "array_col": c}, index=[f"s{i}" for i in range(r.size)]),
        var=pd.DataFrame(index=[f"g{j}" for j in range(n_genes)]),
    )
    a.uns["stentrans"] = {"lattice": lattice}
    return a


# ---------------------------------------------------------------------------
# PCC
# ---------------------------------------------------------------------------
def test_pcc_equals_scipy_pearsonr():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(57, 9))
    y = 0.5 * x + rng.normal(size=(57, 9)) * np.linspace(0.1, 3, 9)
    y[:, 3] *= 1e6  # scale does not matter
    x[:, 4] = np.round(x[:, 4])  # ties
    got = pcc(x, y)
    want = [pearsonr(x[:, j], y[:, j])[0] for j in range(9)]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert float(pcc(x[:, 0], y[:, 0])) == pytest.approx(want[0], abs=1e-12)
    assert pcc(np.float32(x), np.float32(y)).dtype == np.float64


def test_pcc_zero_variance_is_nan_and_counted():
    rng = np.random.default_rng(2)
    truth = rng.poisson(5, size=(30, 5)).astype(float)
    pred = truth + rng.normal(size=truth.shape)
    truth[:, 1] = 0.0  # gene never expressed at the scored spots
    truth[:, 2] = 0.1  # constant, not exactly representable
    pred[:, 3] = 7.0  # constant prediction
    r = pcc(pred, truth)
    assert np.isnan(r[[1, 2, 3]]).all()
    assert np.isfinite(r[[0, 4]]).all()
    assert np.isnan(pcc(pred[:1], truth[:1])).all()  # one spot
    pg = pd.DataFrame({"gene": [f"g{j}" for j in range(5)], "method": "m", "protocol": "nested", "seed": 0, "pcc": r, "n_spots": 30})
    s = summarize(pg)
    assert s.loc[0, "n_genes"] == 2 and s.loc[0, "n_excluded"] == 3
    assert s.loc[0, "median_seed0"] == pytest.approx(np.median(r[[0, 4]]))


def test_summary_mean_sd_over_seeds():
    rows = []
    for seed, vals in enumerate([[0.1, 0.5, 0.9], [0.2, 0.4, np.nan], [0.3, 0.3, 0.3]]):
        for g, v in enumerate(vals):
            rows.append(("g%d" % g, "stentrans", "nested", seed, v, 10))
    pg = pd.DataFrame(rows, columns=PER_GENE_COLUMNS)
    s = summarize(pg)
    meds = [0.5, 0.3, 0.3]
    assert list(s.columns) == ["method", "protocol", "median_seed0", "median_seed1", "median_seed2", "mean", "sd", "n_genes", "n_excluded", "n_spots"]
    np.testing.assert_allclose(s.loc[0, ["median_seed0", "median_seed1", "median_seed2"]].to_numpy(float), meds)
    assert s.loc[0, "mean"] == pytest.approx(np.mean(meds))
    assert s.loc[0, "sd"] == pytest.approx(np.std(meds, ddof=1))
    assert s.loc[0, "n_genes"] == 3 and s.loc[0, "n_excluded"] == 0  # 2.67 -> 3, 0.33 -> 0


def test_ablation_table_and_markdown():
    rows = []
    for m, base in [("stentrans", 0.6), ("stentrans-nopos", 0.5), ("stentrans-nores", 0.4), ("stentrans-noposres", 0.3), ("linear", 0.2)]:
        for seed, d in enumerate([-0.01, 0.0, 0.01]):
            rows += [("g0", m, "nested", seed, base + d, 4), ("g1", m, "nested", seed, base + d, 4)]
    s = summarize(pd.DataFrame(rows, columns=PER_GENE_COLUMNS))
    t = ablation_table(s)
    assert list(t.columns) == ["protocol", "stEnTrans", "w/o Pos", "w/o Res", "w/o Pos & Res", "n_genes"]
    assert t.loc[0, "stEnTrans"] == "0.600 ± 0.010"
    assert t.loc[0, "w/o Pos & Res"] == "0.300 ± 0.010"
    md = to_markdown(t)
    assert md.splitlines()[0].startswith("| protocol | stEnTrans |") and "0.400 ± 0.010" in md


# ---------------------------------------------------------------------------
# protocols
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("lattice", ["square", "hex"])
def test_nested_never_sees_removed_spots(lattice, monkeypatch):
    """Removed spots set to a huge sentinel: no input changes, no prediction changes."""
    # every method is reached through its registry enhancer: spy on what they call
    import stentrans.models.baselines.enhancer as bl
    import stentrans.models.paper.enhancer as tr

    a = toy(lattice, n_genes=6)
    from stentrans.grid import to_grid

    gd = to_grid(a)
    K = kept_mask(gd.mask, lattice)
    removed = ~K[gd.p, gd.q]
    assert removed.sum() > 0 and (~removed).sum() > 0
    b = a.copy()
    X = b.X.toarray()
    X[removed] = 1e7
    b.X = sp.csr_matrix(X)

    seen = []
    real_fit, real_up = tr.fit_network, bl.upsample

    def spy_fit(maps, mask, *args, **kw):
        seen.append(("fit", float(np.max(maps))))
        return real_fit(maps, mask, *args, **kw)

    def spy_up(maps, mask, *args, **kw):
        seen.append(("upsample", float(np.max(maps))))
        return real_up(maps, mask, *args, **kw)

    monkeypatch.setattr(tr, "fit_network", spy_fit)
    monkeypatch.setattr(bl, "upsample", spy_up)
    methods = ("stentrans", "dist", "linear", "cubic", "nn", "nedi")
    kw = dict(protocol="nested", methods=methods, seeds=(0,), settings={"network": {"epochs": 2, **TINY}, **FAST_DIST}, progress=False, keep_genes=list(a.var_names), device="cpu")
    r1 = evaluate(a, **kw)
    n_calls = len(seen)
    r2 = evaluate(b, **kw)
    assert [k for k, _ in seen] == ["fit"] + ["upsample"] * 5 + ["fit"] + ["upsample"] * 5
    assert all(v < 1e6 for _, v in seen), seen  # the sentinel never reached a method
    assert n_calls == 6
    for m in methods:
        np.testing.assert_array_equal(r1["maps"]["nested"][m], r2["maps"]["nested"][m], err_msg=m)
    # only removed spots are scored
    pg = r1["per_gene"]
    assert (pg["n_spots"] == removed.sum()).all()
    assert set(pg["protocol"]) == {"nested"}


def test_per_gene_table_and_spots(monkeypatch):
    import stentrans.models.paper.enhancer as tr

    a = toy("square", n_genes=10)
    a.X = a.X.toarray()
    a.X[:, 7] = 3.0  # constant gene: excluded everywhere
    a.X = sp.csr_matrix(a.X)
    from stentrans.grid import to_grid

    gd = to_grid(a)
    n_in = int(gd.mask.sum())
    n_rem = int((gd.mask & ~kept_mask(gd.mask, "square")).sum())
    trained = []
    real_fit = tr.fit_network
    monkeypatch.setattr(tr, "fit_network", lambda maps, *x, **k: trained.append(maps.shape) or real_fit(maps, *x, **k))
    res = evaluate(a, protocol=["paper", "nested", "heldout-genes"], methods=("stentrans", "linear", "nn"), seeds=(0, 1), settings={"network": {"epochs": 2, **TINY}}, progress=False, device="cpu")
    pg, s = res["per_gene"], res["summary"]
    assert list(pg.columns) == ["gene", "method", "protocol", "seed", "pcc", "n_spots"]
    assert set(pg["protocol"]) == {"paper", "paper-removed", "nested", "heldout-genes", "heldout-genes-removed"}
    spots = pg.groupby("protocol")["n_spots"].unique().to_dict()
    assert list(spots["paper"]) == [n_in] and list(spots["heldout-genes"]) == [n_in]
    assert list(spots["paper-removed"]) == [n_rem] and list(spots["nested"]) == [n_rem] and list(spots["heldout-genes-removed"]) == [n_rem]
    # the same genes and spots for every method, in every protocol and seed
    for (proto, seed), grp in pg.groupby(["protocol", "seed"]):
        per_m = {m: sorted(g["gene"]) for m, g in grp.groupby("method")}
        assert len({tuple(v) for v in per_m.values()}) == 1, (proto, seed)
        assert grp.groupby("method")["n_spots"].nunique().max() == 1
    assert pg.loc[pg["protocol"] == "paper"].groupby(["method", "seed"]).size().eq(10).all()
    ho = pg[pg["protocol"] == "heldout-genes"]
    assert ho.groupby(["method", "seed"]).size().eq(2).all()  # 20 % of 10 genes
    for seed in (0, 1):  # the split is drawn per seed
        test = np.sort(np.random.default_rng(seed).permutation(10)[:2])
        assert sorted(ho[ho.seed == seed]["gene"].unique()) == [f"g{j}" for j in test]
    # heldout models trained on the other 8 genes; paper on all 10, nested on D(G)
    assert (8, *gd.maps.shape[1:]) in trained and (10, *gd.maps.shape[1:]) in trained
    assert any(t[1:] == ((gd.maps.shape[1] + 1) // 2, (gd.maps.shape[2] + 1) // 2) for t in trained)
    assert len(trained) == 2 * 3  # one model per protocol and seed
    # constant gene excluded and counted
    assert pg.loc[pg["gene"] == "g7", "pcc"].isna().all()
    paper = s[(s.protocol == "paper")]
    assert (paper["n_excluded"] == 1).all() and (paper["n_genes"] == 9).all()
    assert {"median_seed0", "median_seed1", "mean", "sd"} <= set(s.columns)


def test_paper_all_spots_at_least_removed_spots():
    from stentrans.datasets import simulate

    a = simulate("square", n_genes=30, seed=3, shape=(16, 16), tissue_fraction=0.9)
    res = evaluate(a, protocol="paper", methods=("stentrans", "linear", "nn"), seeds=(0,), settings={"network": {"epochs": 5, **TINY, "batch_size": 8}}, progress=False, device="cpu")
    s = res["summary"].set_index(["method", "protocol"])["mean"]
    for m in ("stentrans", "linear", "nn"):
        assert s[(m, "paper")] >= s[(m, "paper-removed")], m


def test_truth_positions_and_gene_columns_match():
    """Fine positions are matched by half-step coordinates; filtered genes keep their truth column."""
    from stentrans import pp
    from stentrans.datasets import simulate

    a = simulate("hex", n_genes=12, seed=1, shape=(14, 20))
    t = a.uns["truth"]
    t["mean"] = t["mean"].copy()
    t["mean"][:, :] = (1000 * t["array_row"] + t["array_col"])[:, None] + 1e5 * np.arange(12)[None]
    X = a.X.toarray()
    X[:, 4] = 0  # gene 4 is dropped by QC
    a.X = sp.csr_matrix(X)
    b = pp.qc(a, min_spot_fraction=0.01)
    assert "gene_0004" not in b.var_names
    d = ProtocolData(b, None, None)
    Pf, Qf, mean, counts = d.fine()
    rows, cols = d.grid.up().coords(Pf, Qf)
    gene_no = np.array([int(g[5:]) for g in d.genes])
    np.testing.assert_allclose(mean, (1000 * rows + cols)[:, None] + 1e5 * gene_no[None])
    H = enhanced_mask(d.M, "hex")
    assert H[Pf, Qf].all() and not ((Pf % 2 == 0) & (Qf % 2 == 0) & d.M[Pf // 2, Qf // 2]).any()
    assert ((Pf + Qf) % 2 == 0).all()
    assert counts.shape == mean.shape


@pytest.fixture(scope="module")
def truth_run():
    """The ``truth`` protocol on a small simulated ST section (one seed, modest training)."""
    from stentrans.datasets import simulate

    a = simulate("square", n_genes=TRUTH_GENES, seed=0, shape=(24, 24), tissue_fraction=0.8)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STENTRANS_THREADS", "1")
        res = evaluate(a, protocol="truth", methods=("stentrans", "linear", "cubic", "nn", "nedi"), seeds=(0,), settings={"network": {"epochs": TRUTH_EPOCHS, "depth": 2, "batch_size": 16}}, progress=False, device="cpu")
    return a, res


TRUTH_GENES, TRUTH_EPOCHS = 120, 25


def test_truth_protocol_scores_new_fine_positions(truth_run):
    a, res = truth_run
    pg, s = res["per_gene"], res["summary"].set_index(["method", "protocol"])
    t = a.uns["truth"]
    d = ProtocolData(a, None, None)
    H = enhanced_mask(d.M, "square")
    up = d.grid.up()
    P = np.rint((np.asarray(t["array_row"]) - up.row0) / up.step).astype(int)
    Q = np.rint((np.asarray(t["array_col"]) - up.col0) / up.step).astype(int)
    inside = (P >= 0) & (Q >= 0) & (P < H.shape[0]) & (Q < H.shape[1])
    new = inside & ~np.asarray(t["is_measured"], bool)
    new[new] = H[P[new], Q[new]] & ~((P[new] % 2 == 0) & (Q[new] % 2 == 0))
    assert set(pg["protocol"]) == {"truth", "truth-counts"}
    assert (pg["n_spots"] == new.sum()).all()
    assert (pg.groupby(["method", "protocol"]).size() == TRUTH_GENES).all()
    # smoothing baselines beat the nearest spot against the noiseless truth
    assert s.loc[("linear", "truth"), "mean"] > s.loc[("nn", "truth"), "mean"]
    assert (s.xs("truth", level="protocol")["mean"] > 0.2).all()
    # the counts are a noisy draw around the mean: every method scores lower against them
    assert (s.xs("truth-counts", level="protocol")["mean"] < s.xs("truth", level="protocol")["mean"]).all()


@pytest.mark.xfail(strict=True, reason="not observed: on the simulator stEnTrans (modest CPU training) stays below Linear/Cubic/NEDI against the 2x truth; see the assertion message for the medians")
def test_truth_protocol_stentrans_beats_interpolation(truth_run):
    """On simulated data stEnTrans beats Linear, Cubic, NN and NEDI against the 2x truth."""
    _, res = truth_run
    med = res["summary"].query("protocol == 'truth'").set_index("method")["mean"]
    assert all(med["stentrans"] > med[m] for m in ("linear", "cubic", "nn", "nedi")), med.round(3).to_dict()


# ---------------------------------------------------------------------------
# figures and CLI
# ---------------------------------------------------------------------------
def test_spot_polygons_tile():
    # hex neighbours (0, 2) and (1, 1) share an edge: two common vertices
    polys = pl.spot_tiles(np.array([0, 0, 1]), np.array([0, 2, 1]), "hex")
    for j in (1, 2):
        d = np.linalg.norm(polys[0][:, None] - polys[j][None], axis=-1)
        assert (d < 1e-9).sum() == 2
    sq = pl.spot_tiles(np.array([0, 0]), np.array([0, 1]), "square", step=1.0)
    d = np.linalg.norm(sq[0][:, None] - sq[1][None], axis=-1)
    assert (d < 1e-9).sum() == 2
    half = pl.spot_tiles(np.array([0.0]), np.array([0.0]), "hex", step=0.5)
    assert np.linalg.norm(half[0], axis=1).max() == pytest.approx(1 / math.sqrt(3))


@pytest.mark.parametrize("lattice", ["square", "hex"])
def test_figures_written(lattice, tmp_path):
    a = toy(lattice, n_genes=5)
    res = evaluate(a, protocol=["nested", "paper"], methods=("linear", "nn"), seeds=(0,), progress=False, keep_genes=["g0", "g3"], dataset="toy")
    paths = pl.save_figure(pl.pcc_boxplots(res["per_gene"]), tmp_path / "box", rc=pl.RC)
    assert [p.name for p in paths] == ["box.png", "box.pdf"]
    preds = dict(res["maps"]["nested"])
    from stentrans.grid import to_grid

    gd = to_grid(a, genes=["g0", "g3"])
    preds["fine"] = np.ones((2, 2 * gd.maps.shape[1], 2 * gd.maps.shape[2]), np.float32)
    paths = pl.save_figure(pl.gene_panels(a, ["g0", "g3"], preds, title="toy"), tmp_path / "panels", rc=pl.RC)
    for p in paths:
        assert p.stat().st_size > 1000
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths[1].read_bytes()[:4] == b"%PDF"
    assert not list(tmp_path.glob(".*part*"))  # atomic writes leave no temp files


def test_cli_writes_files(tmp_path, monkeypatch):
    from stentrans import cli
    from stentrans.datasets import simulate

    if "stentrans.cli.evaluate" not in cli.COMMAND_MODULES:
        monkeypatch.setattr(cli, "COMMAND_MODULES", [*cli.COMMAND_MODULES, "stentrans.cli.evaluate"])
    a = simulate("square", n_genes=12, seed=0, shape=(12, 12))
    path = tmp_path / "sim.h5ad"
    a.write_h5ad(path)
    out = tmp_path / "eval"
    rc = cli.main(["evaluate", str(path), "-o", str(out), "--protocol", "all", "--methods", "stentrans,linear,nn", "--seeds", "2", "--epochs", "1", "--depth", "1", "--ablation", "--min-spot-fraction", "0.05", "--no-progress"])
    assert rc == 0
    names = {"per_gene.tsv", "summary.tsv", "summary.md", "table1.tsv", "table1.md", "boxplot.png", "boxplot.pdf", "gene_panels.png", "gene_panels.pdf"}
    assert names <= {p.name for p in out.iterdir()}
    pg = pd.read_csv(out / "per_gene.tsv", sep="\t")
    assert list(pg.columns) == ["dataset", "gene", "method", "protocol", "seed", "pcc", "n_spots"]
    # "all": every protocol that applies to simulated data without a real truth (the `lost` holes included)
    assert set(pg["protocol"]) == {"paper", "paper-removed", "nested", "heldout-genes", "heldout-genes-removed", "truth", "truth-counts", "lost", "lost-truth", "lost-truth-counts"}
    assert set(pg["method"]) == {"stentrans", "linear", "nn", "stentrans-nopos", "stentrans-nores", "stentrans-noposres"}
    assert set(pg["seed"]) == {0, 1}
    t1 = pd.read_csv(out / "table1.tsv", sep="\t")
    assert list(t1.columns)[:3] == ["dataset", "protocol", "stEnTrans"]
    assert "±" in t1.loc[0, "stEnTrans"]
    assert (out / "summary.md").read_text().count("\n|") > 5
    # bad input: one line, exit status 2
    rc = cli.main(["evaluate", str(path), "-o", str(out), "--methods", "stentrans,bogus"])
    assert rc == 2


@pytest.mark.parametrize("lattice", ["square", "hex"])
def test_robust_variant_beats_interpolation_on_unseen_spots_and_truth(lattice):
    """The improved variant (issue 11): better than every interpolation where the model never saw the truth."""
    from stentrans.datasets import simulate

    a = simulate(lattice, n_genes=60, seed=3, size="st")
    res = evaluate(a, protocol=["nested", "truth"], methods=["robust", "linear", "cubic", "nn", "nedi"], seeds=[0], progress=False)
    med = res["summary"].set_index(["protocol", "method"])["mean"]
    for protocol in ("nested", "truth"):
        best = max(med[(protocol, m)] for m in ("linear", "cubic", "nn", "nedi"))
        assert med[(protocol, "robust")] > best + 0.05, med.round(3).to_dict()


# ---------------------------------------------------------------------------
# protocols as data, methods from the registry
# ---------------------------------------------------------------------------
def test_protocols_are_data_and_a_new_one_is_one_entry(monkeypatch):
    from stentrans.tl import _protocols as pr

    expected = {
        "paper": ("paper", "paper-removed"),
        "nested": ("nested",),
        "heldout-genes": ("heldout-genes", "heldout-genes-removed"),
        "truth": ("truth", "truth-counts"),
        "realtruth": ("realtruth", "realtruth-log", "realtruth-denoise"),
    }
    assert {k: pr.SCORE_NAMES[k] for k in expected} == expected
    plain = [n for n, p in pr.PROTOCOLS.items() if p.needs is None]
    assert plain[:3] == ["paper", "nested", "heldout-genes"]
    assert pr.as_protocols("all", has_truth=False) == plain
    assert pr.as_protocols("all", has_truth=True) == [n for n, p in pr.PROTOCOLS.items() if p.needs in (None, "simulation")]
    assert "truth" in pr.as_protocols("all", has_truth=True) and "realtruth" not in pr.as_protocols("all", has_truth=True)
    assert "realtruth" in pr.as_protocols("all", has_truth=False, has_finer=True)
    # one entry: the nested input, scored over every in-tissue spot
    monkeypatch.setitem(pr.PROTOCOLS, "nested-all", pr.Protocol("nested-all", train="DG", given="DG", positions="M", scores=(pr.Score("nested-all"),)))
    a = toy("square", n_genes=4)
    res = evaluate(a, protocol="nested-all,nested", methods=("linear", "nn"), seeds=(0,), progress=False)
    pg = res["per_gene"]
    from stentrans.grid import to_grid

    gd = to_grid(a)
    assert set(pg["protocol"]) == {"nested-all", "nested"}
    assert (pg.loc[pg.protocol == "nested-all", "n_spots"] == gd.mask.sum()).all()
    # same predictions, scored over more spots: the removed spots' values are the nested ones
    assert list(res["summary"]["protocol"].unique()) == ["nested", "nested-all"]


def test_fits_once_per_data_and_seed_and_predicts_deterministic_methods_once(monkeypatch):
    import stentrans.models.baselines.enhancer as be

    fits, predicts = [], []
    real_fit, real_predict = be.DISTEnhancer.fit, be.InterpolationFitted.predict
    monkeypatch.setattr(be.DISTEnhancer, "fit", lambda self, maps, *a, seed=0, **k: fits.append((maps.shape, seed)) or real_fit(self, maps, *a, seed=seed, **k))
    monkeypatch.setattr(be.InterpolationFitted, "predict", lambda self, *a, **k: predicts.append(self.method) or real_predict(self, *a, **k))
    a = toy("hex", n_genes=5)
    evaluate(a, protocol=["paper", "nested", "heldout-genes"], methods=("dist", "linear"), seeds=(0, 1), settings=FAST_DIST, progress=False, device="cpu")
    # DIST learns from the maps it is given, D(G) in all three protocols: one fit per seed
    assert [s for _, s in fits] == [0, 1]
    assert predicts == ["linear"]  # deterministic: one prediction of every gene, reused


def test_methods_and_defaults_come_from_the_registry():
    from stentrans.cli import build_parser
    from stentrans.models import registry
    from stentrans.models.paper.config import TrainConfig

    a = toy("square", n_genes=4)
    res = evaluate(a, methods=("linear",), seeds=1, progress=False)
    assert res["info"]["epochs"] == TrainConfig().epochs  # the one default, TrainConfig's
    assert res["info"]["protocols"] == ["nested"] and res["info"]["seeds"] == [0]
    with pytest.raises(Exception) as err:
        evaluate(a, methods=("linear", "bogus"), progress=False)
    assert all(m in str(err.value) for m in registry.METHODS)
    args = build_parser().parse_args(["evaluate", "x", "-o", "y"])
    assert args.methods == ",".join(registry.DEFAULT_EVAL_METHODS)
    assert args.epochs == TrainConfig().epochs and args.seeds == 3 and args.protocol == "nested"


def test_format_pm():
    from stentrans.report import format_pm

    assert format_pm(0.63612, 0.0181) == "0.636 ± 0.018"
    assert format_pm(0.5, float("nan")) == "0.500"
    assert format_pm(float("nan"), 0.1) == "NA"
    assert format_pm(0.5, 0.25, digits=1) == "0.5 ± 0.2"


def test_realtruth_needs_a_truth_and_other_protocols_are_unchanged_by_one():
    """``realtruth`` without ``truth=`` is a one-line error; a truth given to other protocols changes nothing."""
    from stentrans import InputError

    a = toy("hex", n_genes=4)
    with pytest.raises(InputError, match="realtruth"):
        evaluate(a, protocol="realtruth", methods=("linear",), seeds=(0,), progress=False)
    res = evaluate(a, protocol="nested,paper", methods=("linear", "nn"), seeds=(0,), progress=False)
    assert "fraction_of_ceiling" not in res["summary"].columns
    assert set(res["per_gene"]["method"]) == {"linear", "nn"}


def test_score_genes_fits_on_every_gene_and_scores_the_subset():
    """``score_genes``: the methods are fitted on all genes (the robust context, as enhance fits it), only the subset is scored."""
    from stentrans.datasets import simulate
    from stentrans.tl._realtruth import measured_halves

    a = simulate("square", n_genes=24, seed=5, shape=(14, 16), tissue_fraction=0.9)
    score = list(a.var_names[::3])
    kw = dict(protocol="nested,lost", methods=("robust", "linear"), seeds=(0,), progress=False, device="cpu")
    sub = evaluate(a, score_genes=score, **kw)["per_gene"]
    every = evaluate(a, **kw)["per_gene"]
    alone = evaluate(a[:, score].copy(), **kw)["per_gene"]
    for (proto, method), g in sub.groupby(["protocol", "method"]):
        assert sorted(g["gene"]) == sorted(score), (proto, method)
    key = ["protocol", "method", "gene"]
    both = sub.merge(every, on=key, suffixes=("", "_every")).merge(alone, on=key, suffixes=("", "_alone"))
    assert len(both) == len(sub)
    # the same fits on all genes: the scored genes' scores are those of the full evaluation
    np.testing.assert_array_equal(both["pcc"].to_numpy(), both["pcc_every"].to_numpy())
    lin, rob = both[both.method == "linear"], both[both.method == "robust"]
    # a per-gene interpolator does not see the other genes; the robust variant's context does
    np.testing.assert_array_equal(lin["pcc"].to_numpy(), lin["pcc_alone"].to_numpy())
    assert not np.allclose(rob["pcc"].to_numpy(), rob["pcc_alone"].to_numpy(), equal_nan=True)
    with pytest.raises(Exception, match="score_genes"):
        evaluate(a, score_genes=["nope"], **kw)
    # binomial halves: a scored gene's halves do not depend on the other genes fitted
    values = np.asarray(a.X.toarray() if sp.issparse(a.X) else a.X)
    cols = np.array([1, 4, 9])
    A, B = measured_halves(values, 3, cols)
    A1, B1 = measured_halves(values[:, cols], 3)
    np.testing.assert_array_equal(A[:, cols], A1)
    np.testing.assert_array_equal(B[:, cols], B1)
    np.testing.assert_array_equal(A + B, values)


def test_cli_fits_every_gene_qc_keeps_and_scores_the_genes_seen_in_10_percent(tmp_path, monkeypatch):
    """stentrans evaluate: a gene in 4 % of the spots is kept by QC (>= 3 spots) and fitted, not scored; the log ends with the gene filter."""
    import subprocess
    import sys

    from stentrans.datasets import simulate

    a = simulate("square", n_genes=10, seed=0, shape=(12, 12))
    X = np.asarray(a.X.toarray() if sp.issparse(a.X) else a.X).copy()
    X[:, 3] = 0
    X[: max(3, int(0.04 * a.n_obs)), 3] = 2  # a rare gene: detected in ~4 % of the spots
    a.X = sp.csr_matrix(X)
    path = tmp_path / "sim.h5ad"
    a.write_h5ad(path)
    out = tmp_path / "eval"
    r = subprocess.run([sys.executable, "-m", "stentrans", "evaluate", str(path), "-o", str(out), "--protocol", "nested", "--methods", "linear,robust", "--seeds", "1", "--no-progress"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    pg = pd.read_csv(out / "per_gene.tsv", sep="\t")
    rare = a.var_names[3]
    assert rare not in set(pg["gene"]) and len(set(pg["gene"])) == a.n_vars - 1
    assert f"scoring {a.n_vars - 1} of {a.n_vars} genes" in r.stderr and "every method is fitted on all 10" in r.stderr
    assert "kept (detected in at least 3 spots)" in r.stderr.strip().splitlines()[-1]


def test_protocols_carry_their_own_words():
    """Figure labels, page texts and help come from the protocol table: a new protocol is one entry there."""
    from stentrans.pl._style import protocol_label, protocol_order
    from stentrans.report.page import page_scores
    from stentrans.tl import PROTOCOLS, SCORES, EvaluateConfig

    assert all(s.label for s in SCORES.values()), [n for n, s in SCORES.items() if not s.label]
    assert [protocol_label(n) for n in SCORES] == [s.label for s in SCORES.values()]
    assert protocol_order(["lost", "nested", "unknown", "paper"]) == ["paper", "nested", "lost", "unknown"]
    texts = page_scores()
    assert list(texts)[0] == EvaluateConfig().protocol and set(texts) <= set(SCORES)
    # every protocol's first score has a page section, except the real truth's (a section of its own)
    assert {p.scores[0].name for p in PROTOCOLS.values()} - set(texts) == {"realtruth"}
    from stentrans.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert all(name in sub.choices["evaluate"].format_help() and name in parser.format_help() for name in PROTOCOLS)
