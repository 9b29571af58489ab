"""The network, training loop, checkpoints and determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stentrans import InputError
from stentrans.models.paper.checkpoint import load_checkpoint, model_from_checkpoint
from stentrans.models.paper.config import ModelConfig, TrainConfig
from stentrans.models.paper.network import StEnTrans, count_parameters, merge_2x2, sinusoidal_encoding
from stentrans.models.paper.tiles import predict
from stentrans.models.paper.train import fit

TINY = dict(patch_size=3, depth=2, heads=4)


def _waves(n=96, u=14, v=15, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:u, 0:v]
    maps = np.empty((n, u, v), np.float32)
    for g in range(n):
        f = rng.uniform(0.15, 0.5, 2)
        ph = rng.uniform(0, 6, 2)
        maps[g] = 4 * (1 + np.sin(f[0] * yy + ph[0]) * np.cos(f[1] * xx + ph[1]))
    mask = np.ones((u, v), bool)
    mask[:2, :3] = False
    return maps * mask, mask


def test_merge_order_on_hand_made_tensor():
    ch = torch.tensor([[[[1.0, 5.0]], [[2.0, 6.0]], [[3.0, 7.0]], [[4.0, 8.0]]]])  # (1, 4, 1, 2)
    out = merge_2x2(ch)
    assert out.shape == (1, 2, 4)
    assert out[0].tolist() == [[1.0, 2.0, 5.0, 6.0], [3.0, 4.0, 7.0, 8.0]]


@pytest.mark.parametrize("shape", [(9, 9), (10, 13), (31, 34), (1, 1)])
def test_shapes_any_input_size(shape):
    m = StEnTrans(**TINY)
    x = torch.randn(3, *shape)
    assert m(x).shape == (3, 2 * shape[0], 2 * shape[1])
    assert m(x[:, None]).shape == (3, 2 * shape[0], 2 * shape[1])


def test_token_dimension_and_parameter_count():
    cfg = ModelConfig()
    assert cfg.dim == 36
    m = StEnTrans(cfg)
    D = 36
    embed = 4 * (9 * 9 + 9)
    block = 2 * 2 * D + (D * 3 * D + 3 * D) + (D * D + D) + (D * 2 * D + 2 * D) + (2 * D * D + D)
    assert count_parameters(m) == embed + 12 * block


def test_pos_and_res_flags_change_forward_path():
    torch.manual_seed(0)
    base = StEnTrans(**TINY)
    x = torch.rand(2, 9, 9)
    variants = {}
    for pos in (True, False):
        for res in (True, False):
            m = StEnTrans(**TINY, use_pos=pos, use_res=res)
            m.load_state_dict(base.state_dict())  # sinusoidal Pos has no parameters
            variants[(pos, res)] = m(x).detach()
    # Res adds the input to every channel: the difference is the nearest-neighbour upsampling of x
    nn_up = x.repeat_interleave(2, 1).repeat_interleave(2, 2)
    torch.testing.assert_close(variants[(True, True)] - variants[(True, False)], nn_up)
    torch.testing.assert_close(variants[(False, True)] - variants[(False, False)], nn_up)
    assert (variants[(True, True)] - variants[(False, True)]).abs().max() > 1e-3
    assert count_parameters(StEnTrans(**TINY, use_pos=False)) == count_parameters(base)


def test_sinusoidal_table():
    t = sinusoidal_encoding(5, 8)
    assert t.shape == (5, 8)
    assert torch.allclose(t[0, 0::2], torch.zeros(4)) and torch.allclose(t[0, 1::2], torch.ones(4))
    assert abs(float(t[1, 0]) - np.sin(1.0)) < 1e-6
    assert abs(float(t[3, 2]) - np.sin(3 / 10000 ** (2 / 8))) < 1e-6


def test_training_loss_falls_and_same_seed_same_result():
    maps, mask = _waves()
    tc = TrainConfig(epochs=12, batch_size=32, seed=3)
    r1 = fit(maps, mask, "square", ModelConfig(**TINY), tc, device="cpu", progress=False)
    assert r1.losses[-1] < 0.3 * r1.losses[0]
    r2 = fit(maps, mask, "square", ModelConfig(**TINY), tc, device="cpu", progress=False)
    assert r1.losses == r2.losses
    p1, p2 = predict(r1.model, maps), predict(r2.model, maps)
    np.testing.assert_array_equal(p1, p2)
    r3 = fit(maps, mask, "square", ModelConfig(**TINY), TrainConfig(epochs=2, batch_size=32, seed=4), device="cpu", progress=False)
    assert r3.losses[0] != r1.losses[0]


def test_resume_gives_identical_weights(tmp_path):
    maps, mask = _waves(n=64)
    tc = TrainConfig(epochs=6, batch_size=16, seed=1, checkpoint_every=2)
    full = fit(maps, mask, "hex", ModelConfig(**TINY), tc, device="cpu", checkpoint=tmp_path / "full.pt", progress=False)
    ck = tmp_path / "part.pt"
    part = fit(maps, mask, "hex", ModelConfig(**TINY), tc, device="cpu", checkpoint=ck, progress=False, stop_after=3)
    assert part.epochs_run == 3 and load_checkpoint(ck)["epoch"] == 3
    done = fit(maps, mask, "hex", ModelConfig(**TINY), tc, device="cpu", checkpoint=ck, resume=True, progress=False)
    assert done.epochs_run == 6
    assert done.losses == full.losses
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, done.model.state_dict()[k]), k
    m, state = model_from_checkpoint(ck, device="cpu")
    assert state["epoch"] == 6 and state["lattice"] == "hex"
    np.testing.assert_array_equal(predict(m, maps[:4]), predict(full.model, maps[:4]))


def test_bad_checkpoints_give_one_line_errors(tmp_path):
    maps, mask = _waves(n=8)
    ck = tmp_path / "m.pt"
    fit(maps, mask, "square", ModelConfig(**TINY), TrainConfig(epochs=1, batch_size=8), device="cpu", checkpoint=ck, progress=False)
    data = ck.read_bytes()
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as e:
        load_checkpoint(trunc)
    assert "trunc.pt" in str(e.value) and "\n" not in str(e.value)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    with pytest.raises(InputError, match="expected 'stentrans-checkpoint-v1'"):
        load_checkpoint(foreign)

    class Evil:  # pickled code must not load
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.pt"
    torch.save({"format": "stentrans-checkpoint-v1", "x": Evil()}, evil)
    with pytest.raises(InputError, match="evil.pt"):
        load_checkpoint(evil)
    with pytest.raises(InputError, match="file not found"):
        load_checkpoint(tmp_path / "nope.pt")


# ---------------------------------------------------------------- tiles (large grids)


@pytest.mark.parametrize("shape", [(33, 35), (100, 100), (316, 316), (97, 200), (61, 400)])
def test_tiles_cover_the_map_aligned_to_patches_and_hex_parity(shape):
    from stentrans.models.paper.tiles import tiles

    tl, ov = tiles(shape, 3, max_tokens=256)
    cover = np.zeros(shape, dtype=int)
    for r, c, h, w in tl:
        assert r % 6 == 0 and c % 6 == 0  # patch grid (3) and checkerboard parity (2)
        cover[r : r + h, c : c + w] += 1
    assert cover.min() >= 1
    if -(-shape[0] // 3) * -(-shape[1] // 3) <= 256:
        assert tl == [(0, 0, shape[0], shape[1])] and ov == 0
    else:
        assert len(tl) > 1 and ov > 0 and cover.max() > 1  # tiles overlap


def test_tile_offset_reproduces_the_whole_map_position_encoding():
    import torch

    from stentrans.models.paper.config import ModelConfig
    from stentrans.models.paper.network import StEnTrans

    torch.manual_seed(0)
    m = StEnTrans(ModelConfig(patch_size=3, depth=1, heads=2)).eval()
    x = torch.rand(2, 12, 18)
    with torch.no_grad():
        assert torch.equal(m(x), m(x, offset=(0, 0, 6)))
        assert not torch.allclose(m(x), m(x, offset=(1, 0, 6)))  # a shifted tile gets other positions


def test_tiled_prediction_matches_untiled_on_a_mid_size_grid():
    """Overlapping tiles blended with ramps: per-gene PCC to the untiled output > 0.995, every gene."""
    import stentrans as st
    from stentrans.metrics import pcc
    from stentrans.grid import to_grid
    from stentrans.lattice import enhanced_mask
    from stentrans.datasets import simulate
    from stentrans.models.paper.tiles import predict, tiles

    a = simulate("hex", n_genes=64, seed=3, size="visium")
    res = st.tl.train(a, method="stentrans", epochs=30, depth=2, heads=2, batch_size=64, progress=False, seed=0)
    assert res.losses[-1] < res.losses[0]
    gd = to_grid(a)
    whole = predict(res.model, gd.maps)
    tiled = predict(res.model, gd.maps, max_tokens=256)
    assert len(tiles(gd.maps.shape[1:], 3, 256)[0]) >= 4
    H = enhanced_mask(gd.mask, gd.grid.lattice)
    r = pcc(whole[:, H].T, tiled[:, H].T)
    assert np.nanmin(r) > 0.995, np.sort(r)[:5]
    assert not np.array_equal(whole, tiled)  # it really was tiled


def test_micro_batches_give_the_one_pass_gradient(monkeypatch):
    """Batches split into micro-batches (activation memory) train to the same weights."""
    import stentrans.models.paper.train as tr
    from stentrans.datasets import simulate
    from stentrans.grid import to_grid

    gd = to_grid(simulate("hex", n_genes=24, seed=1, size="st"))
    mc = ModelConfig(patch_size=3, depth=2, heads=2)
    tc = TrainConfig(epochs=3, batch_size=16, seed=0)
    one = fit(gd.maps, gd.mask, "hex", mc, tc, progress=False)
    per_gene = tr.micro_batch(mc, (gd.maps.shape[1] // 2 + 1, gd.maps.shape[2] // 2 + 1), 10**9, budget=10**12)
    assert per_gene >= 16  # one pass by default
    monkeypatch.setattr(tr, "ACTIVATION_BUDGET", 1)  # forces micro-batches of one gene
    assert tr.micro_batch(mc, (20, 20), 16) == 1
    split = fit(gd.maps, gd.mask, "hex", mc, tc, progress=False)
    for a, b in zip(one.model.state_dict().values(), split.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)  # Adam amplifies rounding of tiny gradients
    np.testing.assert_allclose(one.losses, split.losses, rtol=1e-5)


def test_cpu_shards_run_in_parallel_threads_and_do_not_change_the_numbers(monkeypatch):
    """CPU batches are computed as CPU_SHARDS parts in threads: the weights do not
    depend on the thread count, and equal one-pass training up to rounding."""
    import stentrans.models.paper.train as tr
    from stentrans.grid import to_grid
    from stentrans.datasets import simulate

    gd = to_grid(simulate("square", n_genes=40, seed=2, size="st"))
    mc = ModelConfig(patch_size=3, depth=2, heads=2)
    tc = TrainConfig(epochs=3, batch_size=32, seed=0)
    assert tr.CPU_SHARDS == 2
    threads = torch.get_num_threads()
    seen = set()
    orig = tr.ThreadPoolExecutor

    class Spy(orig):
        def map(self, fn, *its):
            return super().map(lambda *a: (seen.add(__import__("threading").current_thread().name), fn(*a))[1], *its)

    monkeypatch.setattr(tr, "ThreadPoolExecutor", Spy)
    try:
        monkeypatch.setenv("STENTRANS_THREADS", "2")
        two = fit(gd.maps, gd.mask, "square", mc, tc, progress=False)
        assert torch.get_num_threads() == 2  # restored after training
        assert len({s for s in seen if s.startswith("stentrans-train")}) == 2  # both parts ran in pool threads
        seen.clear()
        monkeypatch.setenv("STENTRANS_THREADS", "1")
        one_thread = fit(gd.maps, gd.mask, "square", mc, tc, progress=False)
        assert not seen  # one thread: the parts ran one after the other
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(two.model.state_dict().values(), one_thread.model.state_dict().values()):
        assert torch.equal(a, b)
    assert two.losses == one_thread.losses
    monkeypatch.setattr(tr, "CPU_SHARDS", 1)  # the plain one-pass mean
    single = fit(gd.maps, gd.mask, "square", mc, tc, progress=False)
    for a, b in zip(two.model.state_dict().values(), single.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(two.losses, single.losses, rtol=1e-5)
    assert any(not torch.equal(a, b) for a, b in zip(two.model.state_dict().values(), single.model.state_dict().values()))  # a different summation really ran


@pytest.mark.parametrize("shape,lattice", [((61, 47), "square"), ((52, 70), "hex")])
def test_crop_windows_keep_the_patch_grid_and_reach_the_far_edge(shape, lattice):
    from stentrans.models.paper.config import MAX_TRAIN_TOKENS
    from stentrans.models.paper.tiles import crop_side, crop_starts

    assert crop_side(None, (13, 11), 3) is None  # melanoma-size maps: whole maps, as in the paper
    assert crop_side(0, (400, 400), 3) is None  # 0: never crop
    side_auto = crop_side(None, (158, 158), 3)  # Visium HD size: 2,809 tokens > MAX_TRAIN_TOKENS
    assert 53 * 53 > MAX_TRAIN_TOKENS and side_auto == 96 and (side_auto // 3) ** 2 == 1024
    side = crop_side(20, shape, 3)
    assert side == 18  # snapped to lcm(3, 2)
    mask = np.zeros((2 * shape[0], 2 * shape[1]), bool)
    mask[10:-12, 30:] = True
    c = crop_starts(mask, shape, side, 3)
    assert (c % 6 == 0).all()  # patch grid and hex parity kept
    assert c[:, 0].max() + side >= shape[0] and c[:, 1].max() + side >= shape[1]  # far edges covered
    assert c[:, 0].max() < shape[0] and c[:, 1].max() < shape[1]
    for r0, c0 in c:  # every window holds tissue, and none with tissue is missing
        assert mask[2 * r0 : 2 * (r0 + side), 2 * c0 : 2 * (c0 + side)].any()
    assert (c[:, 1] + side > 15).all()  # windows left of the tissue are dropped
    with pytest.raises(InputError, match="crop.*-3"):
        crop_side(-3, shape, 3)


def test_training_on_random_windows_learns_is_deterministic_and_resumes(tmp_path, monkeypatch):
    """crop: one random window per batch, with the whole map's positions; same seed, same
    weights; an interrupted run resumes to the same weights."""
    import stentrans.models.paper.train as tr

    maps, mask = _waves(n=48, u=40, v=44, seed=5)
    mc = ModelConfig(**TINY)
    tc = TrainConfig(epochs=8, batch_size=16, seed=2, crop=12, checkpoint_every=2)
    seen = []
    orig = StEnTrans.forward

    def spy(self, x, offset=None):
        seen.append((tuple(x.shape[1:]), offset))
        return orig(self, x, offset)

    monkeypatch.setattr(StEnTrans, "forward", spy)
    full = fit(maps, mask, "square", mc, tc, checkpoint=tmp_path / "full.pt", progress=False)
    monkeypatch.setattr(StEnTrans, "forward", orig)
    shapes = [s for s, _ in seen]
    assert set(shapes) == {(12, 12), (12, 10), (8, 12), (8, 10)}  # 20 x 22 input: the last windows run to the edge
    offsets = {o for _, o in seen}
    assert len(offsets) > 5 and all(o[2] == 8 and o[0] % 2 == 0 and o[1] % 2 == 0 for o in offsets)  # width: ceil(22 / 3) tokens
    assert full.losses[-1] < 0.5 * full.losses[0]
    ck = tmp_path / "part.pt"
    fit(maps, mask, "square", mc, tc, checkpoint=ck, progress=False, stop_after=3)
    done = fit(maps, mask, "square", mc, tc, checkpoint=ck, resume=True, progress=False)
    assert done.losses == full.losses
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, done.model.state_dict()[k]), k
    assert load_checkpoint(ck)["train_config"]["crop"] == 12
    # the trained windows generalise to the whole map
    lr, _ = tr.make_pairs(maps, mask, "square")
    pred = predict(full.model, lr.numpy())[:, : maps.shape[1], : maps.shape[2]]
    untrained = predict(StEnTrans(mc), lr.numpy())[:, : maps.shape[1], : maps.shape[2]]
    err = lambda p: float(np.mean(((p - maps) * mask) ** 2))  # noqa: E731
    assert err(pred) < 0.5 * err(untrained)


def test_cli_train_crop(tmp_path, capsys):
    """`stentrans train --crop N` records the windows in the checkpoint; a negative
    side is refused with one line naming the field and value, and no checkpoint."""
    from stentrans import cli
    from stentrans.datasets import simulate

    src = tmp_path / "in.h5ad"
    simulate("square", n_genes=24, seed=0, size="st").write_h5ad(src)
    out = tmp_path / "model.pt"
    base = ["train", str(src), "--epochs", "2", "--depth", "1", "--heads", "2", "--batch-size", "16", "--no-filter"]
    capsys.readouterr()
    assert cli.main([*base, "--crop", "-3", "-o", str(out)]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "crop" in err[0] and "-3" in err[0], err
    assert not out.exists() and not list(tmp_path.glob(".model.pt*"))
    assert cli.main([*base, "--crop", "6", "-o", str(out)]) == 0
    assert load_checkpoint(out)["train_config"]["crop"] == 6

