"""Protocol ``realtruth``: pseudo-spots of finer data scored against the truth at the enhanced positions (docs/method.md section 6)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import stentrans
from stentrans import InputError, cli
from stentrans.metrics import log_normalize, pcc, spearman_brown
from stentrans.io.binning import pseudospots
from stentrans.io.formats import read_finer
from stentrans.report.tables import realtruth_table
from stentrans.tl import add_ceiling_fraction, summarize
from stentrans.tl._evaluate import PER_GENE_COLUMNS, evaluate
from stentrans.tl._protocols import PROTOCOLS, ProtocolData, as_protocols

N_GENES = 12
METHODS = ("linear", "nn", "robust")
SPACING = 8.0


def smooth_molecules(seed=0, width=120.0, height=100.0, pitch=0.5) -> pd.DataFrame:
    """Molecules drawn from smooth rate fields: Poisson counts per ``pitch`` cell, placed uniformly in it."""
    rng = np.random.default_rng(seed)
    X, Y = np.meshgrid(np.arange(0, width, pitch), np.arange(0, height, pitch))
    parts = []
    for g in range(N_GENES):
        f = rng.uniform(0.03, 0.08, 2)
        ph = rng.uniform(0, 6, 2)
        rate = 0.25 * (1.1 + np.sin(f[0] * X + ph[0]) * np.cos(f[1] * Y + ph[1]))  # molecules per unit area
        k = rng.poisson(rate * pitch * pitch)
        idx = np.repeat(np.arange(k.size), k.ravel())
        parts.append(pd.DataFrame({"x": X.ravel()[idx] + rng.uniform(0, pitch, idx.size), "y": Y.ravel()[idx] + rng.uniform(0, pitch, idx.size), "gene": f"g{g:02d}"}))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def binned(tmp_path_factory):
    """SPOTS and TRUTH (hex and square) binned by ``stentrans bin`` from a molecule table made here."""
    d = tmp_path_factory.mktemp("realtruth")
    mol = d / "molecules.csv"
    smooth_molecules().to_csv(mol, index=False)
    out = {}
    for lat in ("hex", "square"):
        spots, truth = d / f"spots_{lat}.h5ad", d / f"truth_{lat}.h5ad"
        assert cli.main(["bin", str(mol), "-o", str(spots), "--lattice", lat, "--spacing", str(SPACING), "--truth", str(truth)]) == 0
        out[lat] = (spots, truth)
    out["molecules"] = mol
    return out


@pytest.fixture(scope="module", params=["hex", "square"])
def run(request, binned):
    spots, truth = binned[request.param]
    a = stentrans.read(spots)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STENTRANS_THREADS", "1")
        res = evaluate(a, protocol="realtruth", methods=METHODS, seeds=(0,), truth=truth, progress=False, device="cpu")
    return request.param, a, ad.read_h5ad(truth), res


def test_per_gene_table_protocols_and_rows(run):
    _, a, _, res = run
    pg = res["per_gene"]
    assert list(pg.columns) == PER_GENE_COLUMNS
    assert set(pg["protocol"]) == {"realtruth", "realtruth-log", "realtruth-denoise"}
    by = pg.groupby("protocol")["method"].agg(set)
    assert by["realtruth"] == by["realtruth-log"] == set(METHODS) | {"ceiling"}
    assert by["realtruth-denoise"] == set(METHODS) | {"raw-half"}  # denoise rows, beside raw half A
    assert (pg.groupby(["protocol", "method"]).size() == N_GENES).all()
    s = res["summary"]
    assert "fraction_of_ceiling" in s.columns
    rt = s[s["protocol"] == "realtruth"].set_index("method")
    np.testing.assert_allclose(rt["fraction_of_ceiling"], rt["mean"] / rt.loc["ceiling", "mean"])
    assert s[s["protocol"] == "realtruth-denoise"]["fraction_of_ceiling"].isna().all()


def test_ceiling_above_every_method_and_linear_beats_nn_on_a_smooth_field(run):
    lat, _, _, res = run
    med = res["summary"].set_index(["protocol", "method"])["mean"]
    for protocol in ("realtruth", "realtruth-log"):
        for m in METHODS:
            assert med[(protocol, "ceiling")] > med[(protocol, m)], (lat, protocol, m, med.round(3).to_dict())
        assert med[(protocol, "linear")] > med[(protocol, "nn")] + 0.03, med.round(3).to_dict()
    assert med[("realtruth", "linear")] > 0.4


def test_scored_positions_are_the_truths_new_positions_and_scores_match_enhance(run):
    """Scores equal PCCs of ``stentrans enhance`` output joined to the truth by (array_row, array_col)."""
    lat, a, truth, res = run
    pg = res["per_gene"]
    new = truth[truth.obs["is_imputed"].to_numpy()]
    assert (pg.loc[pg.protocol.isin(["realtruth", "realtruth-log"]), "n_spots"] == new.n_obs).all()
    assert (pg.loc[pg.protocol == "realtruth-denoise", "n_spots"] == a.n_obs).all()
    d = ProtocolData(a, truth=truth)
    P, Q, _ = d.positions("new")
    r, c = d.grid.up().coords(P, Q)
    assert set(zip(r, c)) == set(zip(new.obs["array_row"], new.obs["array_col"]))
    # the same numbers from the enhanced AnnData users get (unclipped), matched by coordinates
    enh = stentrans.tl.enhance(a, method="linear", progress=False, clip_negative=False)
    e = pd.DataFrame(enh.X, index=pd.MultiIndex.from_arrays([enh.obs["array_row"], enh.obs["array_col"]]), columns=enh.var_names)
    pred = e.loc[list(zip(new.obs["array_row"], new.obs["array_col"]))].to_numpy()
    tru = new.X.toarray()
    got = pg[(pg.method == "linear") & (pg.protocol == "realtruth")]["pcc"].to_numpy()
    np.testing.assert_allclose(got, pcc(pred, tru), rtol=1e-6, atol=1e-7)
    # log-normalised: log1p(x / l * median truth library), prediction clipped at 0, truth alike
    target = np.median(tru.sum(1))
    want = pcc(log_normalize(np.maximum(pred, 0), target), log_normalize(tru, target))
    got = pg[(pg.method == "linear") & (pg.protocol == "realtruth-log")]["pcc"].to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert res["info"]["truth"]["n_scored"] == new.n_obs


def test_denoise_halves_and_raw_half(run):
    _, a, _, res = run
    d = ProtocolData(a)
    maps, A, B = d.halves(0)
    assert np.array_equal(A + B, d.truth_values)  # every molecule in one half
    assert np.array_equal(maps[:, d.P, d.Q].T, A)
    assert 0.4 < A.sum() / d.truth_values.sum() < 0.6
    pg = res["per_gene"].set_index(["protocol", "method", "gene"])["pcc"].sort_index()
    raw = pg.xs(("realtruth-denoise", "raw-half"))
    np.testing.assert_allclose(raw, pcc(A, B))
    # interpolation keeps the measured values: its denoising score is raw half A's
    np.testing.assert_allclose(pg.xs(("realtruth-denoise", "linear")), raw, rtol=1e-6)
    # the robust variant returns its own estimate at the measured spots (keep_measured=False): it denoises
    rob = pg.xs(("realtruth-denoise", "robust"))
    assert not np.allclose(rob, raw) and np.nanmedian(rob) > np.nanmedian(raw) + 0.02, (np.nanmedian(rob), np.nanmedian(raw))


def test_genes_detected_in_ten_percent_of_measured_spots(binned):
    spots, truth = binned["hex"]
    a = stentrans.read(spots)
    X = a.X.toarray()
    X[: int(0.05 * a.n_obs), 3] = 1  # seen in 5 % of the spots only
    X[int(0.05 * a.n_obs) :, 3] = 0
    X[:, 5] = 0  # never seen
    a.X = X
    res = evaluate(a, protocol="realtruth", methods=("linear",), seeds=(0,), truth=truth, progress=False)
    assert set(res["per_gene"]["gene"]) == set(a.var_names) - {a.var_names[3], a.var_names[5]}


def test_errors_name_the_truth_file(binned, tmp_path):
    spots, truth = binned["hex"]
    a = stentrans.read(spots)
    with pytest.raises(InputError, match="truth=TRUTH.h5ad"):
        evaluate(a, protocol="realtruth", methods=("linear",), seeds=(0,), progress=False)
    # a truth binned at another spacing: its positions are not the enhanced ones
    other, other_truth = tmp_path / "s.h5ad", tmp_path / "t.h5ad"
    assert cli.main(["bin", str(binned["molecules"]), "-o", str(other), "--lattice", "hex", "--spacing", "10", "--truth", str(other_truth)]) == 0
    with pytest.raises(InputError) as err:
        evaluate(a, protocol="realtruth", methods=("linear",), seeds=(0,), truth=other_truth, progress=False)
    assert str(other_truth) in str(err.value) and "spacing" in str(err.value)
    # spots the truth was not binned with (half of them dropped): most new positions are not enhanced positions
    half = a[a.obs["array_row"].to_numpy() < np.median(a.obs["array_row"])].copy()
    with pytest.raises(InputError) as err:
        evaluate(half, protocol="realtruth", methods=("linear",), seeds=(0,), truth=truth, progress=False)
    assert str(truth) in str(err.value) and "new positions" in str(err.value) and "90%" in str(err.value)
    with pytest.raises(InputError, match="file not found"):
        evaluate(a, protocol="realtruth", methods=("linear",), seeds=(0,), truth=tmp_path / "missing.h5ad", progress=False)


def test_protocol_is_one_entry_and_all_includes_it_with_a_truth():
    p = PROTOCOLS["realtruth"]
    assert p.needs == "finer" and p.genes == "detected"
    assert [s.name for s in p.scores] == ["realtruth", "realtruth-log", "realtruth-denoise"]
    assert "realtruth" not in as_protocols("all", has_truth=False)
    assert "realtruth" in as_protocols("all", has_truth=False, has_finer=True)


def test_seeded_methods_and_seeds(binned):
    """Seeds: deterministic methods score the same at the new positions; the halves and the ceiling are drawn per seed."""
    spots, truth = binned["square"]
    a = stentrans.read(spots)
    res = evaluate(a, protocol="realtruth", methods=("linear",), seeds=(0, 1), truth=truth, progress=False)
    s = res["summary"].set_index(["protocol", "method"])
    assert s.loc[("realtruth", "linear"), "sd"] == 0.0
    assert s.loc[("realtruth", "ceiling"), "sd"] > 0
    assert s.loc[("realtruth-denoise", "raw-half"), "median_seed0"] != s.loc[("realtruth-denoise", "raw-half"), "median_seed1"]


def test_cli_evaluate_with_truth_writes_the_realtruth_table(binned, tmp_path):
    spots, truth = binned["hex"]
    out = tmp_path / "ev"
    assert cli.main(["evaluate", str(spots), "--truth", str(truth), "--protocol", "realtruth", "--methods", "linear,nn", "--seeds", "1", "-o", str(out), "--no-progress"]) == 0
    t = pd.read_csv(out / "realtruth.tsv", sep="\t")
    assert list(t["method"]) == ["linear", "nn"]
    assert (t["fraction"] < 1).all() and (t["ceiling"] > t["realtruth"]).all()
    assert "| fraction |" in (out / "realtruth.md").read_text()


def test_realtruth_table_and_ceiling_fraction():
    rows = []
    for ds, base in (("a", 0.5), ("b", 0.2)):
        for protocol, methods in (("realtruth", {"linear": base, "nn": base - 0.1, "ceiling": 2 * base}), ("realtruth-log", {"linear": base, "ceiling": base + 0.1}), ("realtruth-denoise", {"linear": 0.3, "raw-half": 0.3})):
            for m, v in methods.items():
                for g in range(3):
                    rows.append({"dataset": ds, "gene": f"g{g}", "method": m, "protocol": protocol, "seed": 0, "pcc": v + 0.01 * (g - 1), "n_spots": 40})
    s = summarize(pd.DataFrame(rows), protocol_order=("realtruth", "realtruth-log", "realtruth-denoise"))
    assert len(s) == 2 * 7  # only the pairs scored
    f = add_ceiling_fraction(s).set_index(["dataset", "protocol", "method"])["fraction_of_ceiling"]
    assert f[("a", "realtruth", "linear")] == pytest.approx(0.5) and f[("b", "realtruth", "nn")] == pytest.approx(0.25)
    assert np.isnan(f[("a", "realtruth-denoise", "linear")])
    t = realtruth_table(s)
    assert list(t["method"]) == ["linear", "nn", "linear", "nn"]
    a = t[t.dataset == "a"].set_index("method")
    assert a.loc["linear", "fraction"] == pytest.approx(0.5) and a.loc["linear", "ceiling-log"] == pytest.approx(0.6)
    assert np.isnan(a.loc["nn", "realtruth-log"]) and a.loc["linear", "raw-half"] == pytest.approx(0.3)


def test_log_normalize_and_spearman_brown():
    x = np.array([[1.0, 3.0], [0.0, 0.0], [2.0, 2.0]])
    np.testing.assert_allclose(log_normalize(x, 8.0), np.log1p([[2.0, 6.0], [0.0, 0.0], [4.0, 4.0]]))
    np.testing.assert_allclose(spearman_brown([0.5, -0.2, np.nan, 1.0]), [np.sqrt(2 / 3), 0.0, np.nan, 1.0])


@pytest.mark.slow
def test_merscope_hex_about_300_spots(shared_data, capsys):
    """MERSCOPE transcripts, hex spots at about 300 per section: every baseline below the ceiling; medians printed."""
    path = shared_data / "finer" / "merscope_mouse_brain_mini_transcripts.csv.gz"
    if not path.exists():
        pytest.skip(f"{path} not found")
    spots, truth = pseudospots(read_finer(path), "hex", 27.5, truth=True)
    a = stentrans.pp.qc(spots)
    res = evaluate(a, protocol="realtruth", methods=("robust", "linear", "cubic", "nn", "nedi"), seeds=(0,), truth=truth, progress=False, device="cpu")
    t = realtruth_table(res["summary"])
    with capsys.disabled():
        print(f"\nMERSCOPE hex, {a.n_obs} spots, {int(t['n_genes'].max())} genes\n" + t.round(3).to_string())
    assert 200 < a.n_obs < 450
    assert (t["realtruth"] < t["ceiling"]).all()
    assert t.set_index("method").loc["linear", "realtruth"] > t.set_index("method").loc["nn", "realtruth"]
