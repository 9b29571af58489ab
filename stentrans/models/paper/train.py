"""Self-supervised pretraining of stEnTrans (docs/method.md section 1).

The training pairs are ``(D(G), G)`` for every gene map ``G`` (genes are the
samples of a batch); the loss is the MSE of ``Phi(D(G)) * M`` against ``G``.
The model never sees anything but the maps it is given: the evaluation
protocols decide what those maps are. On the CPU every batch is computed as
:data:`CPU_SHARDS` parts in parallel threads; batches too large for
:data:`ACTIVATION_BUDGET` run as micro-batches.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..._errors import InputError
from ..._utils import configure_threads, pick_device, release_memory, set_seed
from ...lattice import downsample
from .checkpoint import _set_rng_state, load_checkpoint, save_checkpoint
from .config import ModelConfig, TrainConfig
from .network import StEnTrans
from .tiles import crop_side, crop_starts, patch_tokens

log = logging.getLogger("stentrans.train")

__all__ = ["TrainResult", "fit", "make_pairs", "micro_batch", "ACTIVATION_BUDGET", "CPU_SHARDS"]

#: activation memory one training step may hold; larger batches run as micro-batches
ACTIVATION_BUDGET = 2 * 2**30

#: CPU training computes every batch as this many parts in parallel threads
CPU_SHARDS = 2


@dataclass
class TrainResult:
    """A trained network with its configurations and training record."""

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
