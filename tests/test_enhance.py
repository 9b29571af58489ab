"""Enhancement and the enhanced AnnData contract (docs/method.md section 3)."""

from __future__ import annotations

import subprocess
import sys

import anndata as ad
import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import scanpy as sc

import stentrans as st
from stentrans.tl import build_enhanced, enhance, write_h5ad
from stentrans.grid import to_grid
from stentrans import lost
from stentrans.lattice import enhanced_mask
from stentrans.datasets import simulate

TINY = dict(method="stentrans", epochs=3, depth=1, batch_size=64, seed=0, progress=False)


def _check_contract(enh, measured):
    obs = enh.obs
    assert obs["is_imputed"].dtype == bool
    assert {"array_row", "array_col", "barcode", "in_tissue"} <= set(obs.columns)
    assert enh.X.dtype == np.float32
    meas = obs[~obs["is_imputed"]]
    assert len(meas) == measured.n_obs
    assert set(meas["barcode"]) == set(measured.obs_names)
    assert (obs.loc[obs["is_imputed"], "barcode"] == "").all()
    # measured spots keep their lattice coordinates
    m = measured.obs.loc[meas["barcode"]]
    np.testing.assert_array_equal(meas["array_row"].to_numpy(), m["array_row"].to_numpy())
    np.testing.assert_array_equal(meas["array_col"].to_numpy(), m["array_col"].to_numpy())
    # half steps, no duplicate positions
    r2, c2 = obs["array_row"].to_numpy() * 2, obs["array_col"].to_numpy() * 2
    assert np.allclose(r2, np.rint(r2)) and np.allclose(c2, np.rint(c2))
    assert len(set(zip(r2, c2))) == enh.n_obs
    if enh.uns["stentrans"]["lattice"] == "hex":
        assert ((np.rint(r2) + np.rint(c2)) % 2 == 0).all()  # half-spacing hex lattice = checkerboard
    # pixel coordinates: the affine fit reproduces the measured spots
    np.testing.assert_allclose(enh.obsm["spatial"][~obs["is_imputed"].to_numpy()], measured.obsm["spatial"][measured.obs_names.get_indexer(meas["barcode"])], atol=1e-3 * np.ptp(measured.obsm["spatial"]))
    # spot size halved; an input without uns["spatial"] gets one library without images
    for lib, d in enh.uns.get("spatial", {}).items():
        if "spatial" not in measured.uns:
            assert d["images"] == {} and d["scalefactors"]["spot_diameter_fullres"] > 0
            continue
        d0 = measured.uns["spatial"][lib]["scalefactors"]["spot_diameter_fullres"]
        assert d["scalefactors"]["spot_diameter_fullres"] == pytest.approx(d0 / 2)
    prov = enh.uns["stentrans"]
    for key in ("version", "lattice", "model_config", "train_config", "epochs_run", "final_loss"):
        assert key in prov, key


@pytest.mark.parametrize("lattice", ["square", "hex"])
def test_enhance_simulated(tmp_path, lattice):
    a = simulate(lattice, n_genes=24, seed=1, size="st" if lattice == "square" else "visium")
    res = st.tl.train(a, **TINY)
    enh = enhance(a, model=res, progress=False)
    _check_contract(enh, a)
    gd = to_grid(a)
    H = enhanced_mask(gd.mask | lost.detect(gd.mask, lattice), lattice)  # lost spots are filled by default
    assert enh.n_obs == H.sum() and enh.uns["stentrans"]["n_lost"] > 0
    # new spots: roughly 3x (square) or 3x (hex) the measured ones in a compact tissue
    assert 2.0 < enh.n_obs / a.n_obs < 4.5
    path = write_h5ad(enh, tmp_path / "enh.h5ad")
    back = ad.read_h5ad(path)
    np.testing.assert_array_equal(back.X, enh.X)
    assert back.uns["stentrans"]["n_imputed"] == int(enh.obs["is_imputed"].sum())
    # renders with scanpy over the (simulated) tissue image, not blank
    lib = next(iter(back.uns["spatial"]))
    sc.pl.spatial(back, color=back.var_names[0], library_id=lib, show=False)
    png = tmp_path / "spatial.png"
    plt.savefig(png, dpi=60)
    plt.close("all")
    img = mpimg.imread(png)
    assert img.std() > 0.05


def test_same_seed_same_enhanced_X():
    a = simulate("square", n_genes=16, seed=2)
    e1 = enhance(a, model=st.tl.train(a, **TINY), progress=False)
    e2 = enhance(a, model=st.tl.train(a, **TINY), progress=False)
    np.testing.assert_array_equal(e1.X, e2.X)


def test_build_enhanced_with_any_upsampled_array():
    a = simulate("hex", n_genes=5, seed=3, size="visium")
    gd = to_grid(a)
    H = enhanced_mask(gd.mask, "hex")
    up = np.repeat(np.repeat(gd.maps, 2, axis=1), 2, axis=2)  # nearest-neighbour upsampling
    P, Q = np.nonzero(H)
    enh = build_enhanced(a, up[:, P, Q].T, H, gd.grid, gd.p, gd.q, a.var_names)
    meas = ~enh.obs["is_imputed"].to_numpy()
    # measured values are carried through unchanged
    np.testing.assert_array_equal(enh.X[meas], a[enh.obs["barcode"][meas]].X.toarray())


def test_cli_train_then_enhance(tmp_path):
    a = simulate("square", n_genes=12, seed=4)
    inp = tmp_path / "in.h5ad"
    a.write_h5ad(inp)
    ck = tmp_path / "m.pt"
    common = ["--epochs", "2", "--depth", "1", "--batch-size", "16", "--device", "cpu"]
    r = subprocess.run([sys.executable, "-m", "stentrans.cli", "train", str(inp), "-o", str(ck), *common], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "enh.h5ad"
    r = subprocess.run([sys.executable, "-m", "stentrans.cli", "enhance", str(inp), "-o", str(out), "--model", str(ck), "--device", "cpu"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    enh = ad.read_h5ad(out)
    assert enh.uns["stentrans"]["epochs_run"] == 2
    assert len(enh.uns["stentrans"]["checkpoint_sha256"]) == 64
    # a truncated checkpoint: one line, exit 2, no output
    bad = tmp_path / "bad.pt"
    bad.write_bytes(ck.read_bytes()[:100])
    out2 = tmp_path / "enh2.h5ad"
    r = subprocess.run([sys.executable, "-m", "stentrans.cli", "enhance", str(inp), "-o", str(out2), "--model", str(bad)], capture_output=True, text=True)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "bad.pt" in r.stderr and "Traceback" not in r.stderr
    assert not out2.exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["melanoma_mel1_rep1.tsv.gz", "visium_mouse_cytassist"])
def test_enhance_real_data_plots(shared_data, tmp_path, name):
    a = st.read(shared_data / name)
    a = st.pp.qc(a, min_spot_fraction=0.3)
    a = a[:, :64].copy()
    enh = enhance(a, model=st.tl.train(a, method="stentrans", epochs=1, depth=1, batch_size=64, progress=False), progress=False)
    _check_contract(enh, a)
    path = write_h5ad(enh, tmp_path / "enh.h5ad")
    back = ad.read_h5ad(path)
    # every enhanced output has a library with a spot diameter (an ST table's has no image)
    sc.pl.spatial(back, color=back.var_names[0], show=False, img_key=None)
    png = tmp_path / "p.png"
    plt.savefig(png, dpi=50)
    plt.close("all")
    assert mpimg.imread(png).std() > 0.02


@pytest.mark.parametrize("lattice", ["square", "hex"])
def test_enhance_robust_method(tmp_path, lattice):
    a = simulate(lattice, n_genes=40, seed=5, size="st")
    res = st.tl.train(a, method="robust", seed=0, progress=False)
    enh = enhance(a, model=res, progress=False, chunk=16)  # chunks must not change the result
    assert enh.uns["stentrans"]["method"] == "robust" and "variant" not in enh.uns["stentrans"]
    meas = ~enh.obs["is_imputed"].to_numpy()
    counts = a[enh.obs["barcode"][meas]].X.toarray()
    # one footing: X at the measured spots is the model's estimate; their counts stay, unchanged, in layers["counts"]
    assert enh.uns["stentrans"]["measured"] == "estimate"
    assert np.array_equal(enh.layers["counts"][meas].toarray(), counts)
    assert enh.layers["counts"][~meas].nnz == 0
    assert np.abs(enh.X[meas] - counts).mean() > 0.1
    # the behaviour before: measured="counts"
    old = enhance(a, model=res, progress=False, measured="counts", interval=0)
    assert np.array_equal(old.X[meas], counts) and "lower" not in old.layers
    np.testing.assert_allclose(old.X[~meas], enh.X[~meas], rtol=1e-5, atol=1e-5)
    whole = enhance(a, model=res, progress=False, chunk=512)
    np.testing.assert_allclose(enh.X, whole.X, rtol=1e-5, atol=1e-5)
    # shrink: the held-out estimate moved toward the counts, gene by gene; the new positions as before.
    # The spots shuffled (files list them in barcode order, not on the grid): each spot gets its own held-out value
    b = a[np.random.default_rng(0).permutation(a.n_obs)].copy()
    shr = enhance(b, model=res, progress=False, measured="shrink", interval=0, chunk=16)
    np.testing.assert_allclose(shr.X[~meas], enh.X[~meas], rtol=1e-5, atol=1e-5)
    gd = to_grid(b)
    loo = res.predict(gd.maps, gd.mask, self_weight=0.0)  # the doubled grid: spot (p, q) at pixel (2p, 2q)
    held = loo[:, 2 * gd.p, 2 * gd.q].T  # spots in b's order
    at = pd.Index(b.obs_names).get_indexer(shr.obs["barcode"][meas])
    counts_b = np.asarray(b.X.todense() if hasattr(b.X, "todense") else b.X)
    np.testing.assert_allclose(shr.X[meas], st.tl._enhance.shrink_toward_counts(held, counts_b)[at], rtol=1e-5, atol=1e-4)
    assert shr.uns["stentrans"]["measured"] == "shrink"
    with pytest.raises(st.InputError, match="needs counts"):
        c = a.copy()
        c.X = np.asarray(c.X.todense() if hasattr(c.X, "todense") else c.X) * 0.5
        enhance(c, model=res, progress=False, measured="shrink", interval=0)
    write_h5ad(enh, tmp_path / "e.h5ad")
    # the CLI: without --model, enhance fits the robust method (the users' default);
    # keeping a checkpoint only exists for network methods
    inp = tmp_path / "in.h5ad"
    a.write_h5ad(inp)
    out = tmp_path / "cli.h5ad"
    r = subprocess.run([sys.executable, "-m", "stentrans.cli", "enhance", str(inp), "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    cli = ad.read_h5ad(out)
    assert cli.uns["stentrans"]["method"] == "robust"
    np.testing.assert_allclose(cli.X, whole.X, rtol=1e-5, atol=1e-5)
    ck = tmp_path / "keep.pt"
    r = subprocess.run([sys.executable, "-m", "stentrans.cli", "enhance", str(inp), "-o", str(tmp_path / "x.h5ad"), "--save-model", str(ck)], capture_output=True, text=True)
    assert r.returncode == 2 and "--method stentrans" in r.stderr and str(ck) in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not ck.exists() and not (tmp_path / "x.h5ad").exists()
    r = subprocess.run([sys.executable, "-m", "stentrans.cli", "train", str(inp), "-o", str(tmp_path / "m.pt"), "--method", "robust"], capture_output=True, text=True)
    assert r.returncode == 2 and "--method" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    # --variant, the older name, still works and says so
    r = subprocess.run([sys.executable, "-m", "stentrans.cli", "enhance", str(inp), "-o", str(tmp_path / "v.h5ad"), "--variant", "linear"], capture_output=True, text=True)
    assert r.returncode == 0 and "use --method linear" in r.stderr, r.stderr
    assert ad.read_h5ad(tmp_path / "v.h5ad").uns["stentrans"]["method"] == "linear"


def test_shrink_toward_counts_keeps_signal_and_drops_noise():
    """lambda_g = 1 - mean / mean squared deviation: ~0 where counts are Poisson around the held-out estimate, ~1 where spots differ for real."""
    from stentrans.tl._enhance import shrink_toward_counts

    rng = np.random.default_rng(0)
    mu = np.full((4000, 1), 20.0)
    real = mu * rng.gamma(4.0, 0.25, size=mu.shape)  # spots that differ for real around the neighbours' 20
    counts = np.hstack([rng.poisson(mu), rng.poisson(real)]).astype(float)
    out = shrink_toward_counts(np.hstack([mu, mu]), counts)
    lam = (out - mu) / np.where(counts != mu, counts - mu, np.nan)
    l0, l1 = np.nanmedian(lam[:, 0]), np.nanmedian(lam[:, 1])
    assert l0 < 0.05 and 0.7 < l1 < 0.9, (l0, l1)  # gene 2: var(real) = 100, noise 20 -> 100 / 120
    # the shrunk values are nearer the spots' expected counts than either the counts or the neighbours' estimate
    err = lambda x: ((x - real[:, 0]) ** 2).mean()  # noqa: E731
    assert err(out[:, 1]) < 0.9 * min(err(counts[:, 1]), err(mu[:, 0]))


@pytest.mark.parametrize("method", ["stentrans", "robust"])
def test_streamed_enhancement_equals_in_memory(tmp_path, method):
    """run.enhance_to streams X to the file one gene chunk at a time; same file contents as in memory."""
    a = simulate("hex", n_genes=70, seed=2, size="st")
    kw = {"method": "robust"} if method == "robust" else dict(method="stentrans", epochs=2, depth=1, heads=2, batch_size=32)
    res = st.tl.train(a, progress=False, seed=0, **kw)
    mem = enhance(a, model=res, progress=False, chunk=16)
    path = st.run.enhance_to(a, tmp_path / "s.h5ad", model=res, progress=False, chunk=16)["path"]
    assert path == tmp_path / "s.h5ad" and not list(tmp_path.glob(".*part*"))
    disk = ad.read_h5ad(path)
    np.testing.assert_array_equal(disk.X, mem.X)
    assert (disk.X >= 0).all()
    assert list(disk.obs_names) == list(mem.obs_names) and list(disk.var_names) == list(mem.var_names)
    np.testing.assert_array_equal(disk.obs["is_imputed"], mem.obs["is_imputed"])
    np.testing.assert_allclose(disk.obsm["spatial"], mem.obsm["spatial"])
    assert disk.uns["stentrans"]["streamed"] and disk.uns["stentrans"]["enhance_seconds"] > 0
    assert disk.uns["stentrans"]["n_imputed"] == mem.uns["stentrans"]["n_imputed"]


def test_one_default_method_in_train_and_enhance():
    from stentrans.models import registry

    a = simulate("square", n_genes=30, seed=6, size="st")
    fitted = st.tl.train(a, progress=False)
    assert fitted.method == registry.DEFAULT_METHOD
    e1 = enhance(a, progress=False)  # fitted inside, the same default
    e2 = enhance(a, model=fitted, progress=False)
    assert e1.uns["stentrans"]["method"] == e2.uns["stentrans"]["method"] == registry.DEFAULT_METHOD
    np.testing.assert_array_equal(e1.X, e2.X)
    # one vocabulary: registry names only
    with pytest.raises(st.InputError, match="variant"):
        st.tl.train(a, variant="paper")
    with pytest.raises(st.InputError, match="unknown method"):
        st.tl.train(a, method="bogus")


def test_enhance_with_any_registry_method():
    from stentrans.models import registry

    a = simulate("hex", n_genes=6, seed=7, size="st")
    enh = enhance(a, model="linear", progress=False, chunk=4)
    assert enh.uns["stentrans"]["method"] == "linear"
    gd = to_grid(a)
    H = enhanced_mask(gd.mask | lost.detect(gd.mask, "hex"), "hex")  # lost spots filled by default
    want = registry.make("linear").fit(gd.maps, gd.mask, "hex").predict(gd.maps, gd.mask, H)[:, H].T
    np.testing.assert_array_equal(enh.X, np.maximum(want, 0))
    assert enhance(a, method="linear", progress=False).uns["stentrans"]["method"] == "linear"


def test_cli_arguments_come_from_the_config_dataclasses():
    import dataclasses

    from stentrans.cli import build_parser
    from stentrans.cli.enhance import _settings
    from stentrans.models import registry
    from stentrans.models.paper.config import ModelConfig, TrainConfig
    from stentrans.models.robust.config import RobustConfig

    p = build_parser()
    args = p.parse_args(["enhance", "in.h5ad", "-o", "out.h5ad"])
    assert args.method is None and args.variant is None and args.chunk == 512
    paper = {**dataclasses.asdict(ModelConfig()), **dataclasses.asdict(TrainConfig())}
    paper.pop("seed")
    assert _settings(args, "stentrans") == paper
    robust = dataclasses.asdict(RobustConfig())
    robust.pop("seed")
    assert _settings(args, "robust") == robust
    assert _settings(args, "linear") == {}
    # today's flag names
    args = p.parse_args(["train", "in.h5ad", "-o", "m.pt", "--no-pos", "--no-res", "--betas", "0.4", "0.5", "--method", "stentrans", "--crop", "12", "--seed", "3"])
    s = _settings(args, "stentrans")
    assert (s["use_pos"], s["use_res"], s["betas"], s["crop"], args.seed) == (False, False, (0.4, 0.5), 12, 3)
    # train writes network checkpoints only: the robust method's options are enhance's
    with pytest.raises(SystemExit):
        p.parse_args(["train", "in.h5ad", "-o", "m.pt", "--robust-net"])
    args = p.parse_args(["enhance", "in.h5ad", "-o", "e.h5ad", "--robust-net", "--robust-no-keep-measured", "--seed", "3"])
    assert _settings(args, "robust")["net"] is True and _settings(args, "robust")["keep_measured"] is False and args.seed == 3
    method = next(a for a in p._subparsers._group_actions[0].choices["enhance"]._actions if a.dest == "method")
    assert method.choices == list(registry.METHODS)


def test_lost_columns_by_default_and_fill_lost_streamed(tmp_path):
    """``is_lost`` is always in the contract; lost spots are filled by default, ``none`` leaves them out; streamed as in memory."""
    a = simulate("square", n_genes=10, seed=7)
    fitted = st.tl.train(a, method="linear", progress=False)
    default = enhance(a, model=fitted, progress=False)
    assert default.uns["stentrans"]["fill_lost"] == "auto" and default.uns["stentrans"]["n_lost"] == int(default.obs["is_lost"].sum()) > 0
    plain = enhance(a, model=fitted, progress=False, fill_lost="none")
    assert plain.obs["is_lost"].dtype == bool and not plain.obs["is_lost"].any()
    prov = plain.uns["stentrans"]
    assert prov["fill_lost"] == "none" and prov["n_lost"] == 0 and np.asarray(prov["lost"]).shape == (0, 2)
    back = ad.read_h5ad(write_h5ad(plain, tmp_path / "plain.h5ad"))
    assert back.uns["stentrans"]["fill_lost"] == "none" and not back.obs["is_lost"].any()
    # none leaves the enhanced spots as before lost spots existed
    gd = to_grid(a)
    assert plain.n_obs == enhanced_mask(gd.mask, "square").sum()
    filled = enhance(a, model=fitted, progress=False, fill_lost="auto")
    np.testing.assert_array_equal(filled.X, default.X)
    assert filled.n_obs == enhanced_mask(gd.mask | lost.detect(gd.mask, "square"), "square").sum() > plain.n_obs
    assert filled.uns["stentrans"]["n_lost"] == int(filled.obs["is_lost"].sum()) > 0
    assert filled.uns["stentrans"]["n_imputed"] == int(filled.obs["is_imputed"].sum())
    path = st.run.enhance_to(a, tmp_path / "filled.h5ad", model=fitted, progress=False, fill_lost="auto")["path"]
    streamed = ad.read_h5ad(path)
    np.testing.assert_array_equal(streamed.X, filled.X)
    assert streamed.obs_names.equals(filled.obs_names)
    np.testing.assert_array_equal(streamed.obs["is_lost"].to_numpy(), filled.obs["is_lost"].to_numpy())
    np.testing.assert_array_equal(streamed.uns["stentrans"]["lost"], filled.uns["stentrans"]["lost"])
    assert streamed.uns["stentrans"]["fill_lost"] == "auto"
    with pytest.raises(st.InputError, match="'sometimes'"):
        enhance(a, model=fitted, progress=False, fill_lost="sometimes")


# ---------------------------------------------------------------------------
# issue 30: the default output of a real slide (lost spots filled, genes kept and said)
# ---------------------------------------------------------------------------
@pytest.mark.slow
def test_melanoma_default_output_fills_the_three_holes_and_states_the_gene_filter(shared_data, tmp_path):
    """``stentrans enhance`` with no flags: the three interior holes are lost spots, every gene seen in 3 spots is kept, and the run ends saying so."""
    path = shared_data / "melanoma_mel1_rep1.tsv.gz"
    out = tmp_path / "mel.h5ad"
    r = subprocess.run([sys.executable, "-m", "stentrans", "enhance", str(path), "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    e = ad.read_h5ad(out)
    holes = e.obs[e.obs["is_lost"]]
    assert sorted(lost.st_ids(holes[["array_row", "array_col"]].to_numpy())) == ["10x14", "15x22", "5x10"]  # XxY: array_col = X, array_row = Y
    assert holes["is_imputed"].all() and e.uns["stentrans"]["fill_lost"] == "auto" and e.uns["stentrans"]["n_lost"] == 3
    # genes: detected in at least 3 of the 279 spots (13,024 of 15,666), stated in the provenance and the last log line
    counts = st.read(path).X
    detected = np.asarray((counts > 0).sum(axis=0)).ravel()
    assert e.n_vars == int((detected >= 3).sum()) == 13024
    q = e.uns["stentrans"]["qc"]
    assert (q["n_genes_before"], q["n_genes_after"], q["n_genes_dropped"]) == (15666, 13024, 2642) and q["min_spots"] == 3 and q["min_spot_fraction"] == 0
    assert q["gene_rule"] == "detected in at least 3 spots" and "--min-spots" in q["change_with"]["stentrans"]
    last = r.stderr.strip().splitlines()[-1]
    assert "13,024 of 15,666 kept" in last and "2,642 dropped" in last and "--min-spots N" in last and "--no-filter" in last, last
