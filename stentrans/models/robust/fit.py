"""Fitting the default method, ``robust``: the self-supervised choice of the base, then the optional network.

Everything is derived from the maps passed to :func:`fit_robust`.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from ..._errors import InputError
from ..._utils import configure_threads, pick_device, set_seed
from ...lattice import LATTICES, kept_mask
from ...metrics import pcc
from .augment import _phase_offsets, augment_pairs
from .config import RobustConfig, member_scales
from .context import Context, prepare, signal_genes, spot_context, target_scale
from .net import RobustNet, n_channels, net_channels
from .ops import base_prediction
from .mixture import MixtureResult
from .result import RobustResult, predict_counts

log = logging.getLogger("stentrans.robust")

__all__ = ["select_base", "fit_robust"]


class _Pair:
    """One transform's tensors for a gene subset (training genes or validation genes)."""

    def __init__(self, pair, genes, ctx_in, ctx_t, lattice, cfg, val_ids=None, role="train"):
        pr = prepare(pair["input"][genes], ctx_in, cfg)
        self.z = torch.from_numpy(pr.z)
        self.r = torch.from_numpy(pr.r)
        self.m = torch.from_numpy(pair["input_mask"])
        tm = pair["target_mask"]
        self.t = torch.from_numpy(target_scale(pair["target"][genes], tm, ctx_t.lib, pr.mu, pr.sd, cfg))
        removed = tm & ~kept_mask(tm, lattice)
        is_val = np.isin(pair["ids"], val_ids) & tm if val_ids is not None else np.zeros_like(tm)
        lm = removed if cfg.loss_on == "removed" else tm
        lm = lm & ~is_val
        self.lm = torch.from_numpy(lm.astype(np.float32))
        self.n_loss = int(lm.sum())
        self.removed = removed & is_val if role == "val" else removed
        self.counts = pair["target"][genes]
        self.input_counts = pair["input"][genes]
        self.ctx_in = ctx_in


def _pair_contexts(pr, cfg, store: dict):
    """Contexts of a pair's input and target, computed once per set of spots (``store``)."""
    res = []
    for mk, ik, gk, want_basis in ((pr["input_mask"], pr["input_ids"], pr["input"], True), (pr["target_mask"], pr["ids"], pr["target"], False)):
        p, q = np.nonzero(mk)
        sid = ik[p, q]
        key = (want_basis,) + tuple(np.sort(sid).tolist())
        if key not in store:
            c = spot_context(gk, mk, cfg, basis=want_basis)
            store[key] = (sid, c)
            res.append(c)
            continue
        sid0, c0 = store[key]  # same spots in another arrangement: permute the rows
        pos = np.empty(int(sid0.max()) + 1, dtype=np.int64)
        pos[sid0] = np.arange(sid0.size)
        rows = pos[sid]
        lib = np.zeros(mk.shape)
        p0, q0 = np.nonzero(c0.mask)
        lib[p, q] = c0.lib[p0, q0][rows]
        res.append(Context(mk, lib, None if c0.basis is None else c0.basis[rows]))
    return tuple(res)


def _cut(ctx: Context, rank: int) -> Context:
    """``ctx`` with its first ``rank`` spot factors: :func:`spot_context` with ``rank`` fixed takes the same leading eigenvectors."""
    if rank == 0 or ctx.basis is None:
        return Context(ctx.mask, ctx.lib, None)
    if rank > ctx.rank:
        raise ValueError(f"rank {rank} above the context's {ctx.rank}")
    return Context(ctx.mask, ctx.lib, np.ascontiguousarray(ctx.basis[:, :rank]))


def _batch(pairs: list[_Pair], idx_pair: int, genes: torch.Tensor, shape_in):
    pr = pairs[idx_pair]
    H, W = shape_in

    def pad(a, h, w):
        return F.pad(a, (0, w - a.shape[-1], 0, h - a.shape[-2]))

    z = pad(pr.z[genes], H, W)
    r = pad(pr.r[genes], H, W)
    m = pad(pr.m.float(), H, W)
    t = pad(pr.t[genes], 2 * H, 2 * W)
    lm = pad(pr.lm, 2 * H, 2 * W)
    return z, r, m, t, lm


def _validate(net, val_pairs: list[_Pair], lattice, cfg) -> float:
    """Median over genes of the PCC (raw counts) at the held-out spots, averaged over phases."""
    meds = []
    for pr in val_pairs:
        if pr.removed.sum() < 3:
            continue
        pred = predict_counts(net, pr.input_counts * pr.m.numpy(), pr.ctx_in, lattice, cfg)
        u, v = pr.removed.shape
        p, q = np.nonzero(pr.removed)
        r = pcc(pred[:, :u, :v][:, p, q].T.astype(np.float64), pr.counts[:, p, q].T.astype(np.float64))
        if np.isfinite(r).any():
            meds.append(np.nanmedian(r))
    return float(np.mean(meds)) if meds else float("nan")


def _val_spots(mask: np.ndarray, lattice: str, cfg: RobustConfig, rng) -> np.ndarray:
    """Flat pixel ids of the spots in randomly chosen validation blocks."""
    if cfg.val_fraction <= 0:
        return np.zeros(0, dtype=np.int64)
    b = max(1, int(cfg.val_block))
    p, q = np.nonzero(mask)
    bp, bq = p // b, q // (2 * b if lattice == "hex" else b)
    blocks = np.unique(bp * 100003 + bq)
    if blocks.size < 2:
        return np.zeros(0, dtype=np.int64)
    n_val = int(np.clip(round(cfg.val_fraction * blocks.size), 1, blocks.size - 1))
    chosen = rng.choice(blocks, n_val, replace=False)
    sel = np.isin(bp * 100003 + bq, chosen)
    return np.sort(p[sel] * mask.shape[1] + q[sel])


def _progress_bar(progress: bool):
    """The fit's progress bar: its total grows as the steps become known (contexts, then every candidate of every phase)."""
    from tqdm.auto import tqdm

    return tqdm(total=0, desc="robust fit", unit="step", disable=not progress)


def _grow(bar, n: int) -> None:
    if bar is not None and n:
        bar.total = (bar.total or 0) + n
        bar.refresh()


def _selection_steps(cfg: RobustConfig, lattice: str, n_ranks: int | None = None) -> int:
    """Steps of :func:`select_base`: candidates x phases (``n_ranks``: the ranks tried, 2 for ``"auto"`` until the cut-off is known)."""
    nr = (2 if n_ranks is None else n_ranks) if cfg.rank == "auto" else 1
    ns = len(cfg.sigma_grid) if cfg.sigma == "auto" else 1
    return 0 if nr == 1 and ns == 1 else len(_phase_offsets(lattice, True)) * nr * ns


def _fit_steps(cfg: RobustConfig, lattice: str) -> int:
    """Steps of one working scale's fit on the bar: its spot factors, then the selection."""
    return 1 + _selection_steps(cfg, lattice)


def _phases_scored(mask: np.ndarray, lattice: str) -> int:
    """Phases of ``D`` that :func:`select_base` can score on ``mask``: at least 3 removed positions and some input left."""
    n = 0
    for pair in augment_pairs(mask[None].astype(np.float32), mask, lattice, phases=True, flips=False):
        tm = pair["target_mask"]
        n += int((tm & ~kept_mask(tm, lattice)).sum() >= 3 and pair["input_mask"].any())
    return n


def _check_selectable(mask, lattice: str, cfg: RobustConfig) -> None:
    """Before any work (and any progress bar or log line): a bandwidth chosen by self-supervision needs a phase of ``D`` to score it."""
    if cfg.sigma == "auto" and len(cfg.sigma_grid) > 1 and lattice in LATTICES and not _phases_scored(np.asarray(mask, dtype=bool), lattice):
        raise InputError(None, "mask", "too few spots to choose rank/sigma by self-supervision")


def select_base(maps: np.ndarray, mask: np.ndarray, lattice: str, cfg: RobustConfig, seed: int = 0, context: Context | None = None, bar=None) -> tuple[RobustConfig, list[dict]]:
    """Resolve ``rank``/``sigma`` = ``"auto"`` by self-supervision inside the input.

    Candidates: ranks ``{0, k}`` with ``k`` the Gavish-Donoho rank of the
    maps given (or the fixed rank), times ``sigma_grid`` (or the fixed
    sigma). For every phase offset of ``D`` (no flips: the base is
    symmetric), the base predictor (no network) is applied to ``D(T(G))``
    with the candidate's rank and bandwidth and scored on the positions
    ``D`` removed, against ``T(G)`` on raw counts: the median per-gene PCC
    over ``select_genes`` random genes, averaged over the phases. The best
    candidate wins (ties: the smaller rank, then the smaller sigma). Returns
    the resolved config (integer rank, float sigma) and the score table.
    ``context``: the maps' own :func:`spot_context` with ``cfg`` when the
    caller has it (it is computed otherwise). ``bar``: a progress bar
    (tqdm) advanced by one step per candidate and phase; every phase's
    scores are logged.
    """
    if cfg.rank == "auto":
        k = (context if context is not None else spot_context(maps, mask, cfg)).rank
        ranks = sorted({0, k})
    else:
        ranks = [int(cfg.rank)]
    sigmas = [float(x) for x in cfg.sigma_grid] if cfg.sigma == "auto" else [float(cfg.sigma)]
    _grow(bar, _selection_steps(cfg, lattice, len(ranks)) - _selection_steps(cfg, lattice))  # the bar counted 2 ranks for "auto"
    if len(ranks) == 1 and len(sigmas) == 1:
        return replace(cfg, rank=ranks[0], sigma=sigmas[0]), []
    rng = np.random.default_rng(seed)
    # the genes that score the candidates: random, among the well-detected ones (cfg.signal_fraction)
    pool = signal_genes(maps[:, mask].T, cfg.signal_fraction)
    genes = np.sort(pool[rng.permutation(pool.size)[: cfg.select_genes]])
    meds = {(k, s): [] for k in ranks for s in sigmas}
    n_phases = len(_phase_offsets(lattice, True))
    log.info("self-supervised selection (%s scale): ranks %s x sigmas %s on %d of the %d genes detected in more than %g of the spots (%d in all), %d phases of D", cfg.scale, ranks, [f"{x:g}" for x in sigmas], len(genes), pool.size, cfg.signal_fraction, maps.shape[0], n_phases)
    for i, pair in enumerate(augment_pairs(maps, mask, lattice, phases=True, flips=False, target_genes=genes), 1):
        tm = pair["target_mask"]
        removed = tm & ~kept_mask(tm, lattice)
        if removed.sum() < 3 or not pair["input_mask"].any():
            if bar is not None:
                bar.update(len(ranks) * len(sigmas))
            log.info("self-supervised selection (%s scale), phase %d of %d (%s): too few spots, skipped", cfg.scale, i, n_phases, pair["name"])
            continue
        p, q = np.nonzero(removed)
        truth = pair["target"][:, p, q].T.astype(np.float64)
        ctx = spot_context(pair["input"], pair["input_mask"], replace(cfg, rank=max(ranks)))
        u, v = removed.shape
        scores = []
        for k in ranks:
            ck = Context(ctx.mask, ctx.lib, None if (ctx.basis is None or k == 0) else ctx.basis[:, :k])
            for s in sigmas:
                out = predict_counts(None, pair["input"][genes], ck, lattice, replace(cfg, rank=k, sigma=s, keep_measured=False))
                r = pcc(out[:, :u, :v][:, p, q].T.astype(np.float64), truth)
                if np.isfinite(r).any():
                    meds[(k, s)].append(float(np.nanmedian(r)))
                scores.append(f"rank {k} sigma {s:g}: {meds[(k, s)][-1]:.4f}" if np.isfinite(r).any() else f"rank {k} sigma {s:g}: -")
                if bar is not None:
                    bar.set_postfix_str(f"{cfg.scale}: phase {i}/{n_phases}, rank {k}, sigma {s:g}", refresh=False)
                    bar.update(1)
        log.info("self-supervised selection (%s scale), phase %d of %d (%s, %d positions): %s", cfg.scale, i, n_phases, pair["name"], len(p), "; ".join(scores))
    table = [{"rank": int(k), "sigma": s, "median_pcc": float(np.mean(v)) if v else float("nan")} for (k, s), v in meds.items()]
    if all(not np.isfinite(d["median_pcc"]) for d in table):
        raise InputError(None, "mask", "too few spots to choose rank/sigma by self-supervision")
    best = max(table, key=lambda d: (np.nan_to_num(d["median_pcc"], nan=-np.inf), -d["rank"], -d["sigma"]))
    log.info("self-supervised base (%s scale): rank %d, sigma %g (median PCC %.4f over the phases)", cfg.scale, best["rank"], best["sigma"], best["median_pcc"])
    return replace(cfg, rank=best["rank"], sigma=best["sigma"]), table


def fit_robust(maps: np.ndarray, mask: np.ndarray, lattice: str, config: RobustConfig | None = None, device="auto", progress: bool = True, bar=None) -> RobustResult:
    """Fit the default method, ``robust``, on the maps given (self-supervised, pairs ``(D(T(G)), T(G))``).

    Parameters
    ----------
    maps, mask
        ``(n_genes, u, v)`` raw counts and the ``(u, v)`` in-tissue mask: the
        observed data. Nothing else is used.
    lattice
        ``"square"`` or ``"hex"``.
    config
        :class:`RobustConfig`.
    progress, bar
        One progress bar over the whole fit (every member's context and
        self-supervised selection, then the network's epochs); ``bar``: a
        caller's bar to advance instead.

    Returns
    -------
    :class:`RobustResult` (a :class:`~.mixture.MixtureResult` of one per
    member scale for ``scale="norm+counts"``); ``result.predict(maps, mask)``
    gives ``(n, 2u, 2v)``.
    """
    cfg = config or RobustConfig()
    if len(member_scales(cfg.scale)) > 1:  # one fit per working scale, each with its own self-supervised choices
        t0 = time.perf_counter()
        _check_selectable(mask, lattice, cfg)
        own = _progress_bar(progress) if bar is None else None
        _grow(own, sum(_fit_steps(replace(cfg, scale=s), lattice) for s in member_scales(cfg.scale)))
        try:
            members = [fit_robust(maps, mask, lattice, replace(cfg, scale=s), device=device, progress=progress, bar=own if bar is None else bar) for s in member_scales(cfg.scale)]
        finally:  # an error's line comes after the bar's last one
            if own is not None:
                own.close()
        return MixtureResult(cfg, lattice, members, seconds=time.perf_counter() - t0, device=members[0].device)
    if lattice not in LATTICES:
        raise InputError(None, "lattice", f"must be one of {LATTICES}, got {lattice!r}")
    maps = np.asarray(maps, dtype=np.float32)
    mask = np.asarray(mask, dtype=bool)
    if maps.ndim != 3 or maps.shape[1:] != mask.shape:
        raise InputError(None, "maps", f"expected (n_genes, u, v) matching mask {mask.shape}, got {maps.shape}")
    if maps.shape[0] == 0:
        raise InputError(None, "genes", "no gene maps to train on")
    if not mask.any():
        raise InputError(None, "mask", "no in-tissue spots")
    _check_selectable(mask, lattice, cfg)
    maps = maps * mask
    t0 = time.perf_counter()
    dev = pick_device(device)
    configure_threads(dev)
    set_seed(cfg.seed)
    own = _progress_bar(progress) if bar is None else None
    bar = own if bar is None else bar  # (a tqdm of total 0 is falsy: no `or` here)
    _grow(own, _fit_steps(cfg, lattice))
    # the maps' context with the rank still "auto" (every factor up to the Gavish-Donoho rank):
    # computed once, for the selection and, cut to the chosen rank, as the fitted context
    try:
        bar.set_postfix_str(f"{cfg.scale}: spot factors of {mask.sum()} spots x {maps.shape[0]} genes", refresh=True)
        ctx_auto = spot_context(maps, mask, cfg) if cfg.rank == "auto" else None
        bar.update(1)
        if ctx_auto is not None:
            log.info("spot factors (%s scale): Gavish-Donoho rank %d of %d spots x %d genes", cfg.scale, ctx_auto.rank, int(mask.sum()), maps.shape[0])
        cfg, selection = select_base(maps, mask, lattice, cfg, seed=cfg.seed, context=ctx_auto, bar=bar)
    except BaseException:  # an error's line comes after the bar's last one
        if own is not None:
            own.close()
        raise
    ctx_full = spot_context(maps, mask, cfg) if ctx_auto is None else _cut(ctx_auto, int(cfg.rank))
    res = RobustResult(cfg, lattice, None, ctx_full, tuple(mask.shape), device=str(dev), selection=selection)
    if not cfg.net:
        if own is not None:
            own.close()
        res.seconds = time.perf_counter() - t0
        return res
    rng = np.random.default_rng(cfg.seed)
    n = maps.shape[0]
    # genes: held out for early stopping, and training samples
    train_genes = np.sort(rng.permutation(n)[: cfg.max_genes])
    val_genes = np.sort(rng.permutation(n)[: cfg.val_genes])
    val_ids = _val_spots(mask, lattice, cfg, rng)
    # one transform at a time: only the training / validation genes are kept
    pairs, val_pairs, store = [], [], {}
    for pr in augment_pairs(maps, mask, lattice, cfg.phases, cfg.flips):
        if not pr["input_mask"].any() or not (pr["target_mask"] & ~kept_mask(pr["target_mask"], lattice)).any():
            continue
        ci, ct = _pair_contexts(pr, cfg, store)
        tp = _Pair(pr, train_genes, ci, ct, lattice, cfg, val_ids)
        if tp.n_loss > 0:
            pairs.append(tp)
        if val_ids.size and pr["name"].startswith("id+"):
            vp = _Pair(pr, val_genes, ci, ct, lattice, cfg, val_ids, role="val")
            if vp.removed.any():
                val_pairs.append(vp)
    if not pairs:
        raise InputError(None, "mask", "too few spots: down-sampling the input leaves no training target outside the validation blocks")
    shape_in = (max(p.z.shape[1] for p in pairs), max(p.z.shape[2] for p in pairs))
    res.n_pairs, res.n_train_genes, res.n_val_genes, res.n_val_spots = len(pairs), len(train_genes), len(val_genes), int(val_ids.size)
    net = RobustNet(cfg, n_channels(cfg)).to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(int(cfg.seed))
    best = (_validate(net, val_pairs, lattice, cfg) if val_pairs else -np.inf, 0, copy.deepcopy(net.state_dict()))
    res.history.append({"epoch": 0, "loss": float("nan"), "val": best[0]})
    if own is not None:
        own.close()
    from tqdm.auto import tqdm

    bar = tqdm(range(1, cfg.epochs + 1), desc="robust", unit="epoch", disable=not progress)
    ng = len(train_genes)
    bs = min(cfg.batch_size, ng)
    epoch = 0
    for epoch in bar:
        net.train()
        tot, cnt = 0.0, 0
        for _ in range(cfg.steps_per_epoch):
            ip = int(torch.randint(len(pairs), (1,), generator=gen))
            genes = torch.randperm(ng, generator=gen)[:bs]
            z, r, m, t, lm = (a.to(dev) for a in _batch(pairs, ip, genes, shape_in))
            base = base_prediction(z, r, m, lattice, cfg)
            out = net(net_channels(z, r, m, cfg), base)
            loss = (((out - t) ** 2) * lm).sum() / (lm.sum() * out.shape[0]).clamp_min(1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += float(loss.detach())
            cnt += 1
        val = _validate(net, val_pairs, lattice, cfg) if val_pairs else float("nan")
        res.history.append({"epoch": epoch, "loss": tot / max(cnt, 1), "val": val})
        bar.set_postfix(loss=f"{tot / max(cnt, 1):.4g}", val=f"{val:.4f}")
        if val_pairs:
            if val > best[0]:
                best = (val, epoch, copy.deepcopy(net.state_dict()))
            elif epoch - best[1] >= cfg.patience:
                break
    bar.close()
    if val_pairs:
        net.load_state_dict(best[2])
        res.best_epoch = best[1]
    else:
        res.best_epoch = epoch
    net.eval()
    res.net = net
    res.epochs_run = epoch
    res.seconds = time.perf_counter() - t0
    return res
