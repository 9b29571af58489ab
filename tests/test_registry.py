"""The method registry and the one Enhancer interface: every entry fits and predicts,
and the Enhancers give exactly the numbers of the functions they wrap."""

from __future__ import annotations

import numpy as np
import pytest

from stentrans.grid import to_grid
from stentrans.models import registry
from stentrans.models.base import Enhancer, Fitted
from stentrans.datasets import simulate

#: tiny settings per kind, so every entry fits in about a second
FAST = {
    "network": dict(epochs=2, depth=1, heads=2, batch_size=16),
    "robust": dict(epochs=2, steps_per_epoch=2, batch_size=8, max_genes=16, val_genes=16, select_genes=16),
}
FAST_DIST = dict(epochs=2, batch_size=16)


def _fast(name: str) -> dict:
    if name == "dist":
        return FAST_DIST
    return FAST.get(registry.get(name).kind, {})


@pytest.fixture(scope="module", params=["square", "hex"])
def data(request):
    gd = to_grid(simulate(request.param, n_genes=24, seed=1, size="st"))
    return gd.maps, gd.mask, gd.grid.lattice


def test_every_entry_resolves_to_an_enhancer():
    for name in registry.names():
        cls = registry.enhancer_class(name)
        assert issubclass(cls, Enhancer), name


@pytest.mark.parametrize("name", registry.names())
def test_every_entry_fits_and_predicts(name, data):
    maps, mask, lattice = data
    enh = registry.make(name, **_fast(name))
    assert enh.name == name
    fitted = enh.fit(maps, mask, lattice, seed=0, device="cpu")
    assert isinstance(fitted, Fitted) and fitted.method == name and fitted.lattice == lattice
    out = fitted.predict(maps, mask)
    n, u, v = maps.shape
    assert out.shape == (n, 2 * u, 2 * v) and out.dtype == np.float32
    assert np.isfinite(out).all()
    sub = fitted.predict(maps, mask, genes=[2, 5], chunk=1)
    assert sub.shape == (2, 2 * u, 2 * v) and np.isfinite(sub).all()
    prov = fitted.provenance()
    assert prov["method"] == name


def test_paper_enhancer_is_train_fit_and_predict(data, tmp_path):
    from stentrans.models.paper.enhancer import PaperFitted
    from stentrans.models.paper.config import ModelConfig, TrainConfig
    from stentrans.models.paper.tiles import predict
    from stentrans.models.paper.train import fit

    maps, mask, lattice = data
    kw = FAST["network"]
    ck = tmp_path / "m.pt"
    fitted = registry.make("stentrans", checkpoint=ck, **kw).fit(maps, mask, lattice, seed=3, device="cpu")
    old = fit(maps, mask, lattice, ModelConfig(depth=1, heads=2), TrainConfig(epochs=2, batch_size=16, seed=3), device="cpu", progress=False)
    assert fitted.losses == old.losses and fitted.final_loss == old.final_loss and fitted.epochs_run == 2
    want = predict(old.model, maps * mask, batch_size=512)
    assert np.array_equal(fitted.predict(maps, mask), want)
    prov = fitted.provenance()
    assert prov["method"] == "stentrans" and prov["model_config"] == old.model_config.to_dict() and "checkpoint_sha256" in prov
    loaded = PaperFitted.load(ck, device="cpu")
    assert np.array_equal(loaded.predict(maps, mask), want)
    assert loaded.provenance()["checkpoint_sha256"] == prov["checkpoint_sha256"] and loaded.lattice == lattice
    assert loaded.train_config == fitted.train_config == old.train_config and loaded.model_config == old.model_config
    assert loaded.epochs_run == 2 and loaded.final_loss == old.final_loss
    # ablations stay ablations whatever the caller passes
    assert registry.make("stentrans-nopos", use_pos=True, **kw).configs()[0].use_pos is False


def test_robust_enhancer_is_fit_robust_and_predict(data):
    from stentrans.models.robust.config import RobustConfig
    from stentrans.models.robust.fit import fit_robust

    maps, mask, lattice = data
    fitted = registry.make("robust").fit(maps, mask, lattice, seed=2, device="cpu")
    res = fit_robust(maps, mask, lattice, RobustConfig(seed=2), device="cpu", progress=False)
    ctx = res.context_for(maps * mask, mask)
    want = np.concatenate([res.predict(maps[s : s + 5] * mask, mask, context=ctx, chunk=5) for s in range(0, len(maps), 5)])
    assert np.array_equal(fitted.predict(maps, mask, chunk=5), want)
    prov = fitted.provenance()
    old = res.provenance()
    assert set(prov) == {"method", *old} and prov["method"] == "robust"
    same = lambda a, b: a == b or (a != a and b != b)  # noqa: E731  (NaN final loss without a network)
    assert all(same(prov[k], old[k]) for k in old if k not in ("train_seconds", "members"))
    # the default's two members (working scales norm and counts), timings aside
    drop = lambda d: {k: v for k, v in d.items() if k not in ("train_seconds", "final_loss")}  # noqa: E731
    assert [drop(m) for m in prov["members"]] == [drop(m) for m in old["members"]]
    assert [m["robust_config"]["scale"] for m in prov["members"]] == ["norm", "counts"]


@pytest.mark.parametrize("name", ["linear", "dist"])
def test_baseline_enhancers_are_upsample(name, data):
    from stentrans.models.baselines.dispatch import upsample
    from stentrans.lattice import enhanced_mask

    maps, mask, lattice = data
    out_mask = enhanced_mask(mask, lattice)
    out_mask[::3] = False
    kw = _fast(name)
    fitted = registry.make(name, **kw).fit(maps, mask, lattice, seed=4, device="cpu")
    extra = dict(seed=4, device="cpu", **kw) if name == "dist" else {}
    want = upsample(maps, mask, lattice, name, out_mask=out_mask, **extra)
    got = fitted.predict(maps, mask, out_mask)
    assert np.array_equal(got, want)
    gi = np.array([0, 3, 4, 17])
    assert np.array_equal(fitted.predict(maps, mask, out_mask, genes=gi), want[gi])  # gene subsets: the same numbers


def test_unknown_settings_are_refused():
    from stentrans import InputError

    with pytest.raises(InputError, match="nonsense"):
        registry.make("stentrans", nonsense=1)
    with pytest.raises(InputError, match="nonsense"):
        registry.make("robust", nonsense=1)
