"""Self-supervised pretraining of stEnTrans and prediction with a trained model.

The training pairs are ``(D(G), G)`` for every gene map ``G`` (genes are the
samples of a batch); the loss is the MSE of ``Phi(D(G)) * M`` against ``G``
(design.md section 1). The model never sees anything but the maps it is given:
the evaluation protocols decide what those maps are.
"""

from __future__ import annotations

import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ._errors import InputError
from ._utils import atomic_path, configure_threads, pick_device, release_memory, set_seed, sha256_file
from .lattice import downsample
from .model import ModelConfig, StEnTrans

log = logging.getLogger("stentrans.train")

CHECKPOINT_FORMAT = "stentrans-checkpoint-v1"


@dataclass
class TrainConfig:
    """Optimisation settings (defaults: the authors' code)."""

    epochs: int = 500
    batch_size: int = 512
    lr: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.6)
    eps: float = 1e-6
    seed: int = 0
    checkpoint_every: int = 10
    #: side (pixels of the D(G) input) of the random training windows; None: whole
    #: maps up to MAX_TRAIN_TOKENS patch tokens, windows of CROP_TOKENS beyond
    #: (Visium HD); 0: always whole maps
    crop: int | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d


@dataclass
class TrainResult:
    model: StEnTrans
    model_config: ModelConfig
    train_config: TrainConfig
    lattice: str
    losses: list[float] = field(default_factory=list)
    epochs_run: int = 0
    seconds: float = 0.0
    device: str = "cpu"

    @property
    def final_loss(self) -> float:
        return float(self.losses[-1]) if self.losses else float("nan")


def make_pairs(maps: np.ndarray, mask: np.ndarray, lattice: str):
    """Training pairs: inputs ``D(G)`` and targets ``G * M`` as float32 tensors."""
    m = np.asarray(mask, dtype=bool)
    target = np.asarray(maps, dtype=np.float32) * m
    lr, _ = downsample(target, m, lattice)
    return torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float32)), torch.from_numpy(np.ascontiguousarray(target))


def _rng_state(gen: torch.Generator) -> dict:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "shuffle": gen.get_state(),
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "python": list(random.getstate()[1]),
        "python_version": int(random.getstate()[0]),
    }


def _set_rng_state(st: dict, gen: torch.Generator) -> None:
    torch.set_rng_state(st["torch"])
    gen.set_state(st["shuffle"])
    np.random.set_state(("MT19937", st["numpy_keys"].numpy().astype(np.uint32), st["numpy_pos"], 0, 0.0))
    random.setstate((st["python_version"], tuple(st["python"]), None))


def save_checkpoint(path, model, optimizer, epoch, losses, model_config, train_config, lattice, gen, extra=None) -> None:
    """Write weights, optimiser, epoch, RNG states and config atomically."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else {},
        "epoch": int(epoch),
        "losses": [float(x) for x in losses],
        "model_config": model_config.to_dict(),
        "train_config": train_config.to_dict(),
        "lattice": lattice,
        "rng": _rng_state(gen) if gen is not None else {},
        "extra": extra or {},
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path) -> dict:
    """Load a checkpoint safely (``weights_only=True``); one-line errors for bad files."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint", "file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, pickle with code, not a torch file
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(path, "checkpoint", f"not a readable stentrans checkpoint ({type(err).__name__}: {msg[:160]})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        fmt = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise InputError(path, "format", f"expected {CHECKPOINT_FORMAT!r}, found {fmt!r}")
    return state


def model_from_checkpoint(path, device="auto") -> tuple[StEnTrans, dict]:
    state = load_checkpoint(path)
    cfg = ModelConfig(**state["model_config"])
    model = StEnTrans(cfg)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise InputError(path, "model", f"weights do not fit the stored configuration ({str(err).splitlines()[0][:160]})") from None
    dev = pick_device(device)
    model.to(dev).eval()
    return model, state


def fit(
    maps: np.ndarray,
    mask: np.ndarray,
    lattice: str,
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    device="auto",
    checkpoint: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
) -> TrainResult:
    """Train Phi on the pairs ``(D(G), G)`` of the given maps.

    Parameters
    ----------
    maps, mask
        ``(n_genes, u, v)`` maps and the ``(u, v)`` in-tissue mask.
    lattice
        ``"square"`` or ``"hex"`` (decides D).
    checkpoint
        Path written every ``checkpoint_every`` epochs and at the end.
    resume
        Continue from ``checkpoint`` when it exists; the final weights equal an
        uninterrupted run's (CPU).
    stop_after
        Stop after this many epochs in this call (simulates an interruption).
    """
    mc = model_config or ModelConfig()
    tc = train_config or TrainConfig()
    dev = pick_device(device)
    configure_threads(dev)
    set_seed(tc.seed)
    model = StEnTrans(mc).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr, betas=tuple(tc.betas), eps=tc.eps)
    gen = torch.Generator().manual_seed(int(tc.seed))
    x_all, y_all = make_pairs(maps, mask, lattice)
    m = torch.from_numpy(np.asarray(mask, dtype=np.float32))
    n = x_all.shape[0]
    if n == 0:
        raise InputError(None, "genes", "no gene maps to train on")
    start, losses = 0, []
    if resume and checkpoint is not None and Path(checkpoint).is_file():
        st = load_checkpoint(checkpoint)
        if st["model_config"] != mc.to_dict():
            raise InputError(checkpoint, "model_config", f"checkpoint was trained with {st['model_config']}, not {mc.to_dict()}")
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        start, losses = int(st["epoch"]), list(st["losses"])
        _set_rng_state(st["rng"], gen)
        log.info("resumed from %s at epoch %d", checkpoint, start)
    x_all, y_all, m = x_all.to(dev), y_all.to(dev), m.to(dev)
    amp = dev.type == "cuda"
    t0 = time.perf_counter()
    from tqdm.auto import tqdm

    cpu = dev.type == "cpu"
    params = [p for p in model.parameters() if p.requires_grad]
    # On the CPU every batch is split into CPU_SHARDS equal parts whose gradients
    # are computed in parallel threads (one intra-op thread each) and summed in
    # a fixed order: small matrix products scale badly over intra-op threads, and
    # the split does not depend on the thread count, so the numbers do not either.
    shards = CPU_SHARDS if cpu else 1
    P = mc.patch_size
    side = crop_side(tc.crop, x_all.shape[1:], P)
    in_shape = tuple(x_all.shape[1:])
    if side is not None:
        corners = crop_starts(mask, in_shape, side, P)
        width = -(-in_shape[1] // P)
        log.info("training on random %dx%d windows of the %dx%d input maps (%d with tissue; crop=%s)", side, side, *in_shape, len(corners), tc.crop)
        in_shape = (min(side, in_shape[0]), min(side, in_shape[1]))
    micro = micro_batch(mc, in_shape, tc.batch_size, ACTIVATION_BUDGET // shards)
    if micro < -(-tc.batch_size // shards):
        log.info("batches of %d genes run as micro-batches of %d (activation memory)", tc.batch_size, micro)
    threads = torch.get_num_threads()
    workers = min(threads, shards) if cpu else 1
    pool = ThreadPoolExecutor(workers, thread_name_prefix="stentrans-train") if workers > 1 else None
    end = tc.epochs if stop_after is None else min(tc.epochs, start + stop_after)
    bar = tqdm(range(start, end), desc="pretrain", unit="epoch", disable=not progress, initial=start, total=tc.epochs)
    model.train()

    def forward_sq(view, sub):
        xv, yv, mv, off = view
        xb, yb = xv[sub], yv[sub]
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            out = model(xb, offset=off)[:, : yb.shape[1], : yb.shape[2]]
        return (out.float() * mv - yb) ** 2

    def part_grads(view, sub, denom):
        loss = torch.sum(forward_sq(view, sub)) / denom
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        return grads, float(loss.detach())

    try:
        if pool is not None:
            torch.set_num_threads(max(1, threads // workers))
        for epoch in bar:
            perm = torch.randperm(n, generator=gen).to(dev)
            tot = 0.0
            for s in range(0, n, tc.batch_size):
                idx = perm[s : s + tc.batch_size]
                view = (x_all, y_all, m, None)
                if side is not None:  # one random window per batch, the whole map's positions
                    r0, c0 = (int(c) for c in corners[int(torch.randint(len(corners), (1,), generator=gen))])
                    hr = (slice(2 * r0, 2 * (r0 + side)), slice(2 * c0, 2 * (c0 + side)))
                    view = (x_all[:, r0 : r0 + side, c0 : c0 + side], y_all[(slice(None), *hr)], m[hr], (r0 // P, c0 // P, width))
                opt.zero_grad(set_to_none=True)
                k = min(len(idx), max(shards, -(-len(idx) // micro)))
                if k == 1:  # one pass (CUDA, or a batch of one gene): the plain mean
                    loss = torch.mean(forward_sq(view, idx))
                    loss.backward()
                    batch_loss = float(loss.detach())
                else:  # parts sum to the one-pass gradient up to rounding
                    parts = [idx[j * len(idx) // k : (j + 1) * len(idx) // k] for j in range(k)]
                    denom = float(len(idx) * view[1].shape[1] * view[1].shape[2])
                    results = pool.map(lambda sub: part_grads(view, sub, denom), parts) if pool is not None else (part_grads(view, sub, denom) for sub in parts)
                    acc: list = [None] * len(params)
                    batch_loss = 0.0
                    for grads, part_loss in results:  # in part order, each part's gradients freed at once
                        for i, g in enumerate(grads):
                            if g is not None:
                                acc[i] = g if acc[i] is None else acc[i].add_(g)
                        batch_loss += part_loss
                    for p, g in zip(params, acc):
                        p.grad = g
                opt.step()
                tot += batch_loss * len(idx)
            losses.append(tot / n)
            bar.set_postfix(loss=f"{losses[-1]:.4g}")
            done = epoch + 1
            if checkpoint is not None and (done % max(1, tc.checkpoint_every) == 0 or done == end):
                save_checkpoint(checkpoint, model, opt, done, losses, mc, tc, lattice, gen)
    finally:
        if pool is not None:
            pool.shutdown()
            torch.set_num_threads(threads)
            release_memory()  # the worker threads' malloc arenas keep what they freed
    bar.close()
    model.eval()
    return TrainResult(model, mc, tc, lattice, losses, end, time.perf_counter() - t0, str(dev))


def patch_tokens(shape, patch_size: int) -> int:
    """Patch tokens of a ``shape`` map once padded to whole patches."""
    u, v = (int(d) for d in shape)
    return -(-u // patch_size) * -(-v // patch_size)


def grid_unit(patch_size: int) -> int:
    """``lcm(patch_size, 2)``: windows and tiles starting on multiples of it keep the
    patch grid and hex parity (``p + q`` even) of the whole map."""
    return patch_size * 2 // int(np.gcd(patch_size, 2))


#: training maps with more patch tokens than this are trained on random windows (crop=None)
MAX_TRAIN_TOKENS = 2048
#: about this many tokens per automatic training window
CROP_TOKENS = 1024


def crop_side(crop: int | None, shape, patch_size: int) -> int | None:
    """Side of the training windows (pixels of D(G)), or None for whole maps.

    Sides are multiples of ``lcm(patch_size, 2)`` so windows keep the patch
    grid and hex parity of the whole map.
    """
    u, v = (int(d) for d in shape)
    P = patch_size
    unit = grid_unit(P)
    if crop is None:
        if patch_tokens((u, v), P) <= MAX_TRAIN_TOKENS:
            return None
        crop = int(np.sqrt(CROP_TOKENS)) * P
    crop = int(crop)
    if crop < 0:
        raise InputError(None, "crop", f"{crop}: must be >= 0 (0 = whole maps)")
    if crop == 0 or (crop >= u and crop >= v):
        return None
    return max(unit, crop // unit * unit)


def crop_starts(mask_hr: np.ndarray, shape, side: int, patch_size: int) -> np.ndarray:
    """Top-left corners ``(r0, c0)`` (pixels of D(G)) of the windows that hold tissue.

    Corners are multiples of ``lcm(patch_size, 2)``; where the far edge does not
    fall on that grid, one more corner past ``n - side`` gives a shorter last
    window, so every pixel lies in some window.
    """
    u, v = (int(d) for d in shape)
    unit = grid_unit(patch_size)

    def starts(n):
        last = max(0, n - side)
        return list(range(0, last + 1, unit)) + ([last - last % unit + unit] if last % unit else [])

    m = np.asarray(mask_hr, dtype=bool)
    out = [(r, c) for r in starts(u) for c in starts(v) if m[2 * r : 2 * (r + side), 2 * c : 2 * (c + side)].any()]
    if not out:
        raise InputError(None, "mask", "no training window holds an in-tissue spot")
    return np.asarray(out, dtype=np.int64)


#: activation memory one training step may hold; larger batches run as micro-batches
ACTIVATION_BUDGET = 2 * 2**30

#: CPU training computes every batch as this many parts in parallel threads
CPU_SHARDS = 2


def micro_batch(mc: ModelConfig, input_shape, batch_size: int, budget: int | None = None) -> int:
    """Genes per forward/backward pass so that saved activations stay within ``budget`` bytes.

    Estimate per gene and block: attention scores and their softmax/gradient
    (3 x heads x T^2 floats) plus about a dozen token-sized tensors (T x D).
    The melanoma maps (20 tokens) need ~1 MB per gene, so batches of 512 run
    in one pass; Visium maps (~290 tokens) ~50 MB, so they are split.
    """
    P = mc.patch_size
    T = patch_tokens(input_shape, P)
    per_gene = mc.depth * 4 * (3 * mc.heads * T * T + 12 * T * mc.dim)
    budget = ACTIVATION_BUDGET if budget is None else budget
    return int(max(1, min(batch_size, budget // max(1, per_gene))))


#: maps with more patch tokens than this are enhanced in overlapping tiles
MAX_TOKENS = 2048


def _tile_starts(n: int, tile: int, step: int) -> list[int]:
    if n <= tile:
        return [0]
    starts = list(range(0, n - tile, step)) + [n - tile]
    return sorted(set(starts))


def _ramp(n: int, ov: int, lead: bool, trail: bool) -> np.ndarray:
    """Blending weights along one axis of a tile: linear ramps over the overlaps."""
    w = np.ones(n, dtype=np.float32)
    if ov > 0:
        up = (np.arange(ov, dtype=np.float32) + 0.5) / ov
        if lead:
            w[:ov] = np.minimum(w[:ov], up)
        if trail:
            w[n - ov :] = np.minimum(w[n - ov :], up[::-1])
    return w


def tiles(shape, patch_size: int, max_tokens: int = MAX_TOKENS, overlap: int | None = None):
    """Overlapping tiles ``(r0, c0, h, w)`` covering a ``shape`` map, or one tile if it fits.

    Tile sides and starts are multiples of ``lcm(patch_size, 2)``, so patches
    line up with the untiled patch grid and hex parity (``p + q`` even) is
    kept inside every tile. ``overlap`` (pixels) defaults to a quarter tile.
    """
    u, v = shape
    P = patch_size
    unit = grid_unit(P)
    if patch_tokens((u, v), P) <= max_tokens:
        return [(0, 0, u, v)], 0
    side = max(unit * 2, (int(np.sqrt(max_tokens)) * P) // unit * unit)
    ov = overlap if overlap is not None else max(unit, side // 4 // unit * unit)
    ov = min(ov, side - unit)
    step = side - ov
    th, tw = min(side, u), min(side, v)

    def spans(n, t):
        # the last start may break the unit alignment: snap it down and let that tile run to the end
        starts = sorted({int(r - r % unit) for r in _tile_starts(n, t, step)})
        return [(r, (n - r) if i == len(starts) - 1 else min(t, n - r)) for i, r in enumerate(starts)]

    return [(r, c, h, w) for r, h in spans(u, th) for c, w in spans(v, tw)], int(ov)


def predict(model: StEnTrans, maps: np.ndarray, batch_size: int = 512, device=None, max_tokens: int = MAX_TOKENS, overlap: int | None = None, progress: bool = False) -> np.ndarray:
    """Phi(maps): ``(n_genes, u, v) -> (n_genes, 2u, 2v)`` float32, in gene chunks.

    Maps with more than ``max_tokens`` patch tokens are predicted in
    overlapping tiles (sides and starts aligned to the patch grid, each tile
    with the whole map's position encoding) and blended with linear ramps over
    the overlaps, so memory stays bounded on any grid size.
    """
    dev = next(model.parameters()).device if device is None else pick_device(device)
    model.to(dev).eval()
    maps = np.asarray(maps, dtype=np.float32)
    n, u, v = maps.shape
    c = model.config
    P = c.patch_size
    tile_list, ov = tiles((u, v), P, max_tokens, overlap)
    out = np.zeros((n, 2 * u, 2 * v), dtype=np.float32)
    weight = np.zeros((2 * u, 2 * v), dtype=np.float32)
    from tqdm.auto import tqdm

    for r0, c0, h, w in tqdm(tile_list, desc="tiles", unit="tile", disable=not progress or len(tile_list) == 1):
        bs = batch_size
        if len(tile_list) == 1:
            wt = np.ones((2 * h, 2 * w), dtype=np.float32)
        else:
            wt = np.outer(_ramp(2 * h, 2 * ov, r0 > 0, r0 + h < u), _ramp(2 * w, 2 * ov, c0 > 0, c0 + w < v))
        for s in range(0, n, bs):
            xb = torch.from_numpy(np.ascontiguousarray(maps[s : s + bs, r0 : r0 + h, c0 : c0 + w])).to(dev)
            with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                yb = model(xb, offset=(r0 // P, c0 // P, -(-v // P)))  # one tile: the default positions
            yb = yb.float().cpu().numpy()[:, : 2 * h, : 2 * w]
            out[s : s + bs, 2 * r0 : 2 * (r0 + h), 2 * c0 : 2 * (c0 + w)] += yb * wt
        weight[2 * r0 : 2 * (r0 + h), 2 * c0 : 2 * (c0 + w)] += wt
    if len(tile_list) > 1:
        out /= weight
    return out


def checkpoint_sha256(path) -> str:
    return sha256_file(path)


def train(
    adata,
    genes=None,
    layer: str | None = None,
    epochs: int = 500,
    batch_size: int = 512,
    lr: float = 1e-3,
    betas=(0.5, 0.6),
    eps: float = 1e-6,
    patch_size: int = 3,
    depth: int = 12,
    heads: int = 4,
    mlp_ratio: float = 2.0,
    use_pos: bool = True,
    use_res: bool = True,
    seed: int = 0,
    device="auto",
    checkpoint=None,
    checkpoint_every: int = 10,
    resume: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
    variant: str = "paper",
    robust_kwargs: dict | None = None,
    crop: int | None = None,
):
    """Self-supervised pretraining on an AnnData's genes (``tl.train``).

    ``variant="paper"`` (default) is the paper-faithful network; ``"robust"``
    fits :func:`stentrans.robust.fit_robust` instead (better on spots never
    seen, see the README) and returns its result, which
    :func:`stentrans.tl.enhance` accepts the same way.

    Pairs ``(D(G), G)`` of all (selected) genes; see :func:`fit`. Defaults are
    the authors' code: patch size 3, 12 blocks, 4 heads, batches of 512 genes,
    Adam(lr 1e-3, betas (0.5, 0.6), eps 1e-6), 500 epochs.

    ``crop``: side (pixels of the half-resolution input D(G)) of random training
    windows, one per batch, each with the whole map's position encoding. The
    default (None) trains on whole maps, as the paper does, unless they exceed
    ``MAX_TRAIN_TOKENS`` patch tokens (Visium HD), then on windows of about
    ``CROP_TOKENS`` tokens; 0 always trains on whole maps.
    """
    from .grid import to_grid

    if variant not in ("paper", "robust"):
        raise InputError(None, "variant", f"{variant!r}: must be 'paper' or 'robust'")
    gd = to_grid(adata, genes=genes, layer=layer)
    if variant == "robust":
        from .robust import RobustConfig, fit_robust

        return fit_robust(gd.maps, gd.mask, gd.grid.lattice, RobustConfig(seed=seed, **(robust_kwargs or {})), device=device, progress=progress)
    mc = ModelConfig(patch_size=patch_size, depth=depth, heads=heads, mlp_ratio=mlp_ratio, use_pos=use_pos, use_res=use_res)
    tc = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, betas=tuple(betas), eps=eps, seed=seed, checkpoint_every=checkpoint_every, crop=crop)
    return fit(gd.maps, gd.mask, gd.grid.lattice, mc, tc, device=device, checkpoint=checkpoint, resume=resume, progress=progress, stop_after=stop_after)
