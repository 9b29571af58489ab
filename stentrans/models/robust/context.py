"""Spot-level context of an input and the per-gene working scale of the default method, ``robust``.

Library sizes and spot factors (leading singular vectors, as many as the
Gavish-Donoho threshold keeps) come from *all* genes of an input; genes are
then normalised, standardised and projected onto the factors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .config import RobustConfig
from .ops import nc_upsample

__all__ = ["Context", "spot_context", "gavish_donoho_rank", "Prepared", "prepare", "target_scale", "library_fine"]


@dataclass
class Context:
    """Spot-level quantities of one input (computed from all its genes).

    ``lib`` : ``(u, v)`` library size (total counts over the genes), 0 off mask.
    ``basis`` : ``(n_spots, rank)`` orthonormal spot factors (spots in
    ``np.nonzero(mask)`` order), or None.
    """

    mask: np.ndarray
    lib: np.ndarray
    basis: np.ndarray | None

    @property
    def rank(self) -> int:
        return 0 if self.basis is None else int(self.basis.shape[1])


def _lognorm(vals: np.ndarray, lib: np.ndarray, cfg: RobustConfig) -> np.ndarray:
    """(spots, genes) counts -> the working scale."""
    if cfg.scale == "counts":
        return vals.astype(np.float64)
    scale = cfg.target_sum / np.maximum(lib, 1e-12)
    normed = np.maximum(vals, 0) * scale[:, None]
    return normed if cfg.scale == "norm" else np.log1p(normed)


def _gene_stats(L: np.ndarray, cfg: RobustConfig):
    mu = L.mean(0)
    if cfg.standardize:
        sd = L.std(0)
        sd = np.where(sd > 1e-8, sd, 1.0)
    else:
        sd = np.ones_like(mu)
    return mu, sd


def spot_context(maps: np.ndarray, mask: np.ndarray, cfg: RobustConfig, basis: bool = True) -> Context:
    """Library sizes and spot factors of an input, from all its genes."""
    mask = np.asarray(mask, dtype=bool)
    p, q = np.nonzero(mask)
    vals = np.asarray(maps)[:, p, q].astype(np.float64).T  # (spots, genes)
    libv = vals.sum(1)
    lib = np.zeros(mask.shape, dtype=np.float64)
    lib[p, q] = libv
    k = (cfg.rank_max if cfg.rank == "auto" else int(cfg.rank)) if basis else 0
    basis = None
    if k > 0 and len(p) > 1 and vals.shape[1] > 1:
        # factors from log1p-normalised data (counts when the working scale is counts)
        L = _lognorm(vals, libv, cfg if cfg.scale == "counts" else RobustConfig(scale="lognorm", target_sum=cfg.target_sum))
        signal = signal_genes(vals, cfg.signal_fraction)
        if signal.size > 1 and signal.size < L.shape[1]:  # the well-detected genes define the factors
            L = L[:, signal]
        if L.shape[1] > cfg.rank_genes:  # the most variable genes (deterministic)
            var = L.var(0)
            top = np.sort(np.argsort(-var, kind="stable")[: cfg.rank_genes])
            L = L[:, top]
        mu, sd = _gene_stats(L, RobustConfig(standardize=True))
        Z = (L - mu) / sd
        k = min(k, min(Z.shape) - 1)
        if k > 0:
            small = Z.shape[0] <= Z.shape[1]
            G = Z @ Z.T if small else Z.T @ Z
            # LAPACK's tridiagonal reduction is thousands of small BLAS-2 steps: on
            # two threads it gained little alone and, with other jobs on the cores,
            # took 5x the CPU of one thread (Visium mouse slide, 2,898 spots)
            with one_blas_thread():
                w, V = np.linalg.eigh(G)
            w, V = w[::-1], V[:, ::-1]
            if cfg.rank == "auto":
                k = min(k, gavish_donoho_rank(np.sqrt(np.clip(w, 0, None)), Z.shape))
        if k > 0:
            if small:
                U = V[:, :k]
            else:
                U = Z @ V[:, :k]
                U /= np.linalg.norm(U, axis=0, keepdims=True).clip(1e-12)
            # deterministic sign: largest-magnitude entry positive
            s = np.sign(U[np.abs(U).argmax(0), np.arange(U.shape[1])])
            basis = U * np.where(s == 0, 1.0, s)
    return Context(mask, lib, basis)


def signal_genes(vals: np.ndarray, fraction: float) -> np.ndarray:
    """Columns of ``vals`` (spots x genes) detected in more than ``fraction`` of the spots (all columns when none is, or ``fraction`` 0)."""
    if fraction <= 0:
        return np.arange(vals.shape[1])
    keep = np.flatnonzero((vals > 0).sum(axis=0) > fraction * vals.shape[0])
    return keep if keep.size else np.arange(vals.shape[1])


def gavish_donoho_rank(sv: np.ndarray, shape) -> int:
    """Number of singular values above the Gavish-Donoho threshold (unknown noise level).

    Gavish & Donoho (2014), IEEE Trans. Inf. Theory 60(8): tau =
    omega(beta) * median(sv), beta = min/max aspect ratio, omega(beta) ~
    0.56 beta^3 - 0.95 beta^2 + 1.82 beta + 1.43.
    """
    sv = np.sort(np.asarray(sv, dtype=np.float64))[::-1][: min(shape)]
    if sv.size == 0 or not np.isfinite(sv).all():
        return 0
    beta = min(shape) / max(shape)
    omega = 0.56 * beta**3 - 0.95 * beta**2 + 1.82 * beta + 1.43
    return int((sv > omega * np.median(sv)).sum())


@dataclass
class Prepared:
    """Per-gene working-scale inputs of one grid (numpy, float32)."""

    z: np.ndarray  # (n, u, v) standardised working scale, 0 off mask
    r: np.ndarray  # (n, u, v) denoised (projected) z, 0 off mask (== z when rank 0)
    mu: np.ndarray  # (n,)
    sd: np.ndarray  # (n,)
    mask: np.ndarray  # (u, v)
    lib: np.ndarray  # (u, v)


def one_blas_thread():
    """Context: numpy's BLAS on one thread (the process's limit is restored after), a no-op without threadpoolctl."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover
        import contextlib

        return contextlib.nullcontext()
    global _CONTROLLER
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


_CONTROLLER = None


def prepare(maps: np.ndarray, ctx: Context, cfg: RobustConfig) -> Prepared:
    """Working-scale inputs of ``maps`` on the spots of ``ctx``."""
    mask = ctx.mask
    p, q = np.nonzero(mask)
    vals = np.asarray(maps)[:, p, q].astype(np.float64).T
    L = _lognorm(vals, ctx.lib[p, q], cfg)
    mu, sd = _gene_stats(L, cfg)
    Z = (L - mu) / sd
    if ctx.basis is not None:
        with one_blas_thread():  # small products between torch's parallel regions: no second pool of threads waiting
            R = ctx.basis @ (ctx.basis.T @ Z)
    else:
        R = Z
    n = vals.shape[1]
    z = np.zeros((n,) + mask.shape, dtype=np.float32)
    r = np.zeros_like(z)
    z[:, p, q] = Z.T
    r[:, p, q] = R.T
    return Prepared(z, r, mu.astype(np.float32), sd.astype(np.float32), mask, ctx.lib)


def target_scale(maps: np.ndarray, mask: np.ndarray, lib: np.ndarray, mu, sd, cfg: RobustConfig) -> np.ndarray:
    """Targets on the working scale (their own library), standardised with the input's stats."""
    p, q = np.nonzero(mask)
    vals = np.asarray(maps)[:, p, q].astype(np.float64).T
    L = _lognorm(vals, lib[p, q], cfg)
    Z = (L - np.asarray(mu, dtype=np.float64)) / np.asarray(sd, dtype=np.float64)
    out = np.zeros((vals.shape[1],) + mask.shape, dtype=np.float32)
    out[:, p, q] = Z.T
    return out


def library_fine(ctx: Context, lattice: str, cfg: RobustConfig, self_weight: float = 1.0) -> np.ndarray:
    """Library size at every position of the doubled grid (log library, normalised convolution).

    ``self_weight``: a spot's weight on its own library at its own position (:func:`~.ops.nc_upsample`).
    """
    m = torch.from_numpy(ctx.mask)
    ll = torch.from_numpy(np.log(np.maximum(ctx.lib, 1e-12)).astype(np.float32))[None]
    return torch.exp(nc_upsample(ll, m, lattice, cfg.sigma, self_weight=self_weight))[0].numpy()
