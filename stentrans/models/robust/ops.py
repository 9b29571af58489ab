"""Geometry of the default method, ``robust``: Gaussian kernels, normalised convolution and the base predictors.

Distances are in lattice spacings of the input, isotropic in physical distance
on both lattices; the doubled grid's pixel ``(P, Q)`` sits at input pixel
``(P / 2, Q / 2)``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from .config import RobustConfig

__all__ = ["nc_upsample", "base_prediction"]


def _kernel(sigma: float, lattice: str) -> torch.Tensor:
    """Gaussian weights over offsets of the doubled grid; distance in lattice spacings.

    Square: fine offset ``(dP, dQ)`` is ``sqrt(dP^2 + dQ^2) / 2`` spacings.
    Hex (checkerboard, neighbours at ``(0, +-2)``, ``(+-1, +-1)``): physical
    offset ``(dP sqrt(3) / 2, dQ / 2)`` column units, spacing 2 column units,
    so ``sqrt(3 dP^2 + dQ^2) / 4`` spacings.
    """
    per = 2 if lattice == "square" else 4
    R = max(1, int(math.ceil(3.0 * sigma * per)))
    P, Q = np.mgrid[-R : R + 1, -R : R + 1]
    d = np.sqrt(P**2 + Q**2) / 2.0 if lattice == "square" else np.sqrt(3.0 * P**2 + Q**2) / 4.0
    return torch.tensor(np.exp(-0.5 * (d / sigma) ** 2), dtype=torch.float32)


def _kernel_1d(sigma: float, lattice: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column factors of :func:`_kernel`: ``outer(kr, kc) == _kernel`` exactly.

    Both lattices' distances are quadratic forms without a cross term
    (square ``(dP^2 + dQ^2) / 4``, hex ``(3 dP^2 + dQ^2) / 16``), so the
    Gaussian over the square window separates into two 1-D Gaussians.
    """
    per = 2 if lattice == "square" else 4
    R = max(1, int(math.ceil(3.0 * sigma * per)))
    t = np.arange(-R, R + 1, dtype=np.float64)
    if lattice == "square":
        kr = np.exp(-0.5 * t**2 / (4.0 * sigma**2))
        kc = kr
    else:
        kr = np.exp(-0.5 * 3.0 * t**2 / (16.0 * sigma**2))
        kc = np.exp(-0.5 * t**2 / (16.0 * sigma**2))
    return torch.tensor(kr, dtype=torch.float32), torch.tensor(kc, dtype=torch.float32)


def nc_upsample(x: torch.Tensor, m: torch.Tensor, lattice: str, sigma: float, eps: float = 1e-6, self_weight: float = 1.0) -> torch.Tensor:
    """Normalised convolution of ``x`` (``(n, u, v)``, valid where ``m``) on the doubled grid.

    Returns ``(n, 2u, 2v)``: ``sum_s w(d) x_s / sum_s w(d)`` over the spots
    ``s`` of ``m``, Gaussian ``w`` of bandwidth ``sigma`` lattice spacings. A
    position with no spot within 3 sigma gets 0.

    ``self_weight``: the weight a spot gives its own value at its own
    position (the even pixel ``(2p, 2q)``), instead of the kernel's 1 at
    distance 0: 0 predicts every spot from the others alone (leave one out),
    values in between lower the spot's own share of its estimate. Positions
    without a spot are unaffected.
    """
    n, u, v = x.shape
    m = m.to(x.dtype)
    # the separable Gaussian as two banded matrices; the spots sit on the even
    # pixels of the doubled grid, so only those columns are needed:
    # out = B_r[:, ::2] @ values @ B_c[:, ::2].T (a GEMM, ~100x faster than a K x K conv)
    Br, BcT = _bands(float(sigma), lattice, u, v, x.dtype, x.device)
    # rows as one GEMM over all genes at once ((2u, u) @ (u, n v)), not n small
    # batched GEMMs: the same sums (bit for bit), and on several threads one
    # parallel region instead of one per gene (which, with other jobs on the
    # cores, spent several times the CPU waiting)
    rows = (Br @ (x * m).transpose(0, 1).reshape(u, n * v)).reshape(2 * u, n, v).transpose(0, 1).contiguous()
    num = rows @ BcT
    den = Br @ m @ BcT
    if self_weight != 1.0:  # the kernel's weight at distance 0 is 1 (kr[R] * kc[R])
        num[..., ::2, ::2] -= (1.0 - self_weight) * (x * m)
        den[..., ::2, ::2] -= (1.0 - self_weight) * m
        eps = max(eps, 1e-4)  # a lone spot left out has den ~ 0: no estimate there
    # num / den where den > eps, else 0, in place (the same numbers as torch.where, without two temporaries of the output's size)
    return num.div_(den.clamp_min(eps)).mul_(den > eps)


@functools.lru_cache(maxsize=64)
def _bands(sigma: float, lattice: str, u: int, v: int, dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B_r[:, ::2], B_c[:, ::2].T)`` of :func:`nc_upsample` for a ``(u, v)`` input (built once per bandwidth and grid)."""
    kr, kc = (k.to(device, dtype) for k in _kernel_1d(sigma, lattice))
    return _band(kr, 2 * u)[:, ::2], _band(kc, 2 * v)[:, ::2].T


def _band(k: torch.Tensor, n: int) -> torch.Tensor:
    """``(n, n)`` matrix of the 1-D cross-correlation with ``k`` (zero padding): ``B[i, j] = k[j - i + R]``."""
    R = k.shape[0] // 2
    i = torch.arange(n, device=k.device)
    d = i[None, :] - i[:, None] + R
    inside = (d >= 0) & (d <= 2 * R)
    return torch.where(inside, k[d.clamp(0, 2 * R)], torch.zeros((), dtype=k.dtype, device=k.device))


def _nn_base(x: torch.Tensor) -> torch.Tensor:
    """The paper's Res: every 2x2 block copies its input pixel."""
    return x.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)


def base_prediction(z: torch.Tensor, r: torch.Tensor, m: torch.Tensor, lattice: str, cfg: RobustConfig, self_weight: float = 1.0) -> torch.Tensor:
    """The base on the doubled grid (``cfg.base``) of ``z``, or of its denoised ``r`` when ``cfg.rank > 0``.

    ``self_weight``: a spot's weight on its own value at its own position (:func:`nc_upsample`).
    """
    src = z if cfg.rank == 0 else r
    if cfg.base == "nc":
        return nc_upsample(src, m, lattice, cfg.sigma, self_weight=self_weight)
    if cfg.base == "nn":
        return _nn_base(src)
    return src.new_zeros(src.shape[0], 2 * src.shape[1], 2 * src.shape[2])
