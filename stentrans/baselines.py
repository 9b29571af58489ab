"""Baselines for 2x resolution enhancement: Linear, Cubic, NN, NEDI and DIST.

Every method has the same inputs and predicts the same positions as stEnTrans
(design.md sections 1, 2 and 5), through one function::

    upsample(maps, mask, lattice, method, out_mask=None, **kw)
        -> float32 array (n_genes, 2u, 2v)

Geometry
--------
* ``maps`` is ``(n_genes, u, v)`` on the measured grid; ``mask`` ``(u, v)``
  marks the measured in-tissue spots. Values outside ``mask`` are ignored
  (treated as missing, never as zeros).
* Output pixel ``(P, Q)`` of the doubled grid lies at input-pixel coordinate
  ``(P / 2, Q / 2)``; measured spot ``(p, q)`` is output pixel ``(2p, 2q)``.
* Distances and interpolation use physical positions: ``(row, col)`` on the
  square lattice, ``(row * sqrt(3), col)`` on the hex lattice (in column
  units, so the Visium neighbours ``(0, +-2)`` and ``(+-1, +-1)`` are all at
  distance 2).
* ``out_mask`` ``(2u, 2v)`` (default :func:`stentrans.lattice.enhanced_mask`,
  i.e. H(M)) says which outputs are wanted; all others are 0.

Methods
-------
``linear``, ``cubic``
    :class:`scipy.interpolate.LinearNDInterpolator` /
    :class:`~scipy.interpolate.CloughTocher2DInterpolator` on one Delaunay
    triangulation of the measured spots' physical positions, all genes at
    once (values matrix ``(n_spots, n_genes)``). Positions outside the convex
    hull take the nearest spot's value (``nn``). On square lattices the
    triangulation of a square cell is degenerate; qhull picks one diagonal.
``nn``
    Value of the nearest measured spot by physical distance; ties go to the
    spot that comes first in row-major order of the grid (smallest ``p``,
    then smallest ``q``). Distances are compared exactly (integer arithmetic
    in half-pixel units), so the tie-break is deterministic.
``nedi``
    New Edge-Directed Interpolation (Li & Orchard 2001), see :func:`nedi`.
``dist``
    DIST (Zhao, Wang & Hu 2023), see :class:`DISTNet` and :func:`train_dist`.

Linear, Cubic, NN and NEDI return the input exactly at the measured spots
``(2p, 2q)``. DIST re-predicts the measured spots as well (as the original
does, it "enhances" them): after training they are close to the input because
of its residual skip, but not equal.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import torch

from ._errors import InputError
from ._utils import configure_threads, pick_device, set_seed
from .lattice import LATTICES, downsample, enhanced_mask

log = logging.getLogger("stentrans.baselines")

METHODS = ("linear", "cubic", "nn", "nedi", "dist")

__all__ = ["METHODS", "upsample", "nedi", "train_dist", "predict_dist", "DISTNet"]

_SQRT3 = math.sqrt(3.0)


# ---------------------------------------------------------------------------
# input checks and geometry
# ---------------------------------------------------------------------------
def _check(maps, mask, lattice, out_mask):
    if lattice not in LATTICES:
        raise InputError(None, "lattice", f"must be one of {LATTICES}, got {lattice!r}")
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise InputError(None, "maps", f"expected (n_genes, u, v), got shape {maps.shape}")
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != maps.shape[1:]:
        raise InputError(None, "mask", f"shape {mask.shape} does not match maps {maps.shape[1:]}")
    if lattice == "hex":
        p, q = np.nonzero(mask)
        odd = (p + q) % 2 == 1
        if odd.any():
            raise InputError(None, "mask", f"{int(odd.sum())} measured pixel(s) with odd p + q on a hex lattice, e.g. {(int(p[odd][0]), int(q[odd][0]))}")
    if not mask.any():
        raise InputError(None, "mask", "no measured spots")
    u, v = mask.shape
    if out_mask is None:
        out_mask = enhanced_mask(mask, lattice)
    out_mask = np.asarray(out_mask, dtype=bool)
    if out_mask.shape != (2 * u, 2 * v):
        raise InputError(None, "out_mask", f"shape {out_mask.shape}, expected {(2 * u, 2 * v)}")
    # values outside the mask are ignored: zero them (float64 for the numerics)
    maps = np.where(mask[None], np.nan_to_num(np.asarray(maps, dtype=np.float64)), 0.0)
    return maps, mask, out_mask


def _phys(rows, cols, lattice):
    """Physical (row, col) positions of input-pixel coordinates (may be halves)."""
    r = np.asarray(rows, dtype=np.float64) * (_SQRT3 if lattice == "hex" else 1.0)
    return np.column_stack([r, np.asarray(cols, dtype=np.float64)])


def _nearest_spot(sp, sq, P, Q, lattice, k: int = 8) -> np.ndarray:
    """Index into spots (sp, sq) nearest to doubled-grid pixels (P, Q).

    Squared distances are compared exactly as integers in half-pixel units
    (``3 dP^2 + dQ^2`` on hex, ``dP^2 + dQ^2`` on square); ties go to the
    smallest spot index. Spots must be in row-major order.
    """
    from scipy.spatial import cKDTree

    sp = np.asarray(sp, dtype=np.int64)
    sq = np.asarray(sq, dtype=np.int64)
    P = np.asarray(P, dtype=np.int64)
    Q = np.asarray(Q, dtype=np.int64)
    n = sp.size
    if P.size == 0:
        return np.zeros(0, dtype=np.int64)
    w = 3 if lattice == "hex" else 1

    def d2(idx, Pi, Qi):
        return w * (Pi[:, None] - 2 * sp[idx]) ** 2 + (Qi[:, None] - 2 * sq[idx]) ** 2

    k = min(k, n)
    tree = cKDTree(_phys(sp, sq, lattice))
    _, cand = tree.query(_phys(P / 2.0, Q / 2.0, lattice), k=k)
    cand = np.asarray(cand).reshape(P.size, k)
    dd = d2(cand, P, Q)
    best = dd.min(1)
    # lexicographic (distance, index): among the minimal distances take the smallest index
    cand_m = np.where(dd == best[:, None], cand, n)
    out = cand_m.min(1)
    # every candidate tied: spots at the same distance may lie beyond k -> brute force
    redo = np.flatnonzero((dd.max(1) == best) & (k < n))
    for s in range(0, redo.size, 256):
        rr = redo[s : s + 256]
        ddf = w * (P[rr, None] - 2 * sp[None]) ** 2 + (Q[rr, None] - 2 * sq[None]) ** 2
        out[rr] = np.argmin(ddf, axis=1)  # argmin returns the first (smallest index) minimum
    return out


# ---------------------------------------------------------------------------
# scattered-data interpolation (linear, cubic, nn)
# ---------------------------------------------------------------------------
def _scatter(vals, sp, sq, P, Q, lattice, method):
    """Interpolate (n_spots, n_genes) values at doubled-grid pixels (P, Q) -> (n_pts, n_genes)."""
    from scipy.interpolate import CloughTocher2DInterpolator, LinearNDInterpolator
    from scipy.spatial import Delaunay, QhullError

    out = np.full((P.size, vals.shape[1]), np.nan)
    if method in ("linear", "cubic") and sp.size >= 3:
        try:
            tri = Delaunay(_phys(sp, sq, lattice))  # one triangulation for all genes
            cls = LinearNDInterpolator if method == "linear" else CloughTocher2DInterpolator
            out = np.asarray(cls(tri, vals)(_phys(P / 2.0, Q / 2.0, lattice)), dtype=np.float64).reshape(P.size, vals.shape[1])
        except (QhullError, ValueError) as err:  # all spots on one line
            log.warning("%s interpolation impossible (%s); using nearest neighbour", method, type(err).__name__)
    miss = ~np.isfinite(out).all(1)
    if miss.any():
        idx = _nearest_spot(sp, sq, P[miss], Q[miss], lattice)
        out[miss] = vals[idx]
    return out


def _upsample_scatter(maps, mask, lattice, method, out_mask):
    g = maps.shape[0]
    sp, sq = np.nonzero(mask)  # row-major order
    vals = maps[:, sp, sq].T  # (n_spots, n_genes)
    P, Q = np.nonzero(out_mask)
    res = _scatter(vals, sp, sq, P, Q, lattice, method)
    out = np.zeros((g,) + out_mask.shape, dtype=np.float32)
    out[:, P, Q] = res.T
    _copy_measured(out, maps, mask, out_mask)
    return out


def _copy_measured(out, maps, mask, out_mask):
    """Measured spots keep their measured values exactly."""
    sp, sq = np.nonzero(mask & out_mask[::2, ::2])
    out[:, 2 * sp, 2 * sq] = maps[:, sp, sq]


# ---------------------------------------------------------------------------
# NEDI
# ---------------------------------------------------------------------------
def _spd_solve4(A, b):
    """Solve batches of symmetric positive-definite 4x4 systems (vectorised Cholesky).

    ``A`` is a dict ``{(i, j): array}`` for ``i >= j``, ``b`` a list of 4 arrays.
    Returns the solution (list of 4 arrays) and the smallest pivot.
    """
    n = len(b)
    L = {}
    minpiv = None
    for j in range(n):
        s = A[(j, j)] - sum(L[(j, k)] ** 2 for k in range(j)) if j else A[(j, j)].copy()
        minpiv = s if minpiv is None else np.minimum(minpiv, s)
        d = np.sqrt(np.maximum(s, 1e-300))
        L[(j, j)] = d
        for i in range(j + 1, n):
            t = A[(i, j)] - sum(L[(i, k)] * L[(j, k)] for k in range(j)) if j else A[(i, j)]
            L[(i, j)] = t / d
    y = []
    for i in range(n):
        y.append((b[i] - sum(L[(i, k)] * y[k] for k in range(i))) / L[(i, i)])
    x = [None] * n
    for i in reversed(range(n)):
        x[i] = (y[i] - sum(L[(k, i)] * x[k] for k in range(i + 1, n))) / L[(i, i)]
    return x, minpiv


def _nedi_pass(img, valid, corners, neigh, pairs, window, ridge, flat_tol, gene_var, targets=None):
    """One NEDI pass: predict from 4 neighbours with locally trained weights.

    For a pixel ``o`` of ``img`` (g, H, W) the prediction is
    ``sum_k a_k img[o + corners[k]]``, where ``a`` is the least-squares fit of
    ``img[x]`` on ``img[x + neigh[k]]`` over the training pixels ``x = o + w``,
    ``w`` in the window (geometric duality: ``neigh`` is the ``corners``
    stencil at twice the scale). ``window`` is a pair ``(A, B)`` of offset
    lists whose sums ``a + b`` are the window (so separable windows cost
    ``|A| + |B|`` shifted adds). Only training pixels that are ``valid``
    (bool (H, W): measured, or predicted from measured values) together with
    their 4 neighbours count; pixels beyond the border are invalid. Windows
    with fewer than half their pixels usable, flat windows (variance <=
    ``flat_tol`` x the gene's variance) and ill-conditioned systems use the
    plain average of the 4 neighbours (bilinear). ``ridge`` > 0 adds
    ``ridge * trace(R) / 4`` to R and pulls the weights towards 1/4 each.
    Where not all 4 neighbours are valid, the prediction is the mean of the
    valid opposite pairs (``pairs``: indices into ``corners``), i.e. linear
    interpolation between two measured neighbours; with no valid pair, the
    plain average of the (filled) neighbours. The 4x4 systems are solved
    only at ``targets`` (bool (H, W); default all pixels); elsewhere the
    result is the plain average.

    Returns the predictions (shape of ``img``) and their validity (derived
    from valid values only).
    """
    g, H, W = img.shape
    wa, wb = window
    full = [(a0 + b0, a1 + b1) for a0, a1 in wa for b0, b1 in wb]
    pw = max(max(abs(a), abs(b)) for a, b in full)
    pn = max(max(abs(a), abs(b)) for a, b in list(neigh) + list(corners))
    P = pw + pn
    # 'reflect' keeps the parity of every index, so lattice sub-grids stay intact;
    # the mirrored pixels are context for the corners only (invalid for training)
    A = np.pad(img, ((0, 0), (P, P), (P, P)), mode="reflect")
    V = np.pad(np.asarray(valid, dtype=bool), P, mode="constant", constant_values=False)
    Hd, Wd = H + 2 * pw, W + 2 * pw  # training-pixel domain, offset pn inside A

    def at(arr, off, base, h, w):
        return arr[..., base + off[0] : base + off[0] + h, base + off[1] : base + off[1] + w]

    bmin = (min(b[0] for b in wb), min(b[1] for b in wb))
    bmax = (max(b[0] for b in wb), max(b[1] for b in wb))

    def wsum(f):  # f[..., pw + x] is pixel x; returns the window sums on (H, W)
        h1, w1 = H + bmax[0] - bmin[0], W + bmax[1] - bmin[1]
        stage = 0.0
        for a0, a1 in wa:
            stage = stage + f[..., pw + a0 + bmin[0] : pw + a0 + bmin[0] + h1, pw + a1 + bmin[1] : pw + a1 + bmin[1] + w1]
        acc = 0.0
        for b0, b1 in wb:
            acc = acc + stage[..., b0 - bmin[0] : b0 - bmin[0] + H, b1 - bmin[1] : b1 - bmin[1] + W]
        return acc

    wt = at(V, (0, 0), pn, Hd, Wd).copy()
    for d in neigh:
        wt &= at(V, d, pn, Hd, Wd)
    cnt = wsum(wt.astype(np.float64))
    C = [at(A, d, P, H, W) for d in corners]
    bil = (C[0] + C[1] + C[2] + C[3]) / 4.0
    val = bil.copy()
    sel = np.ones((H, W), dtype=bool) if targets is None else np.asarray(targets, dtype=bool)
    sel = sel & (cnt >= len(full) / 2.0)
    if sel.any():
        wt = wt.astype(np.float64)
        y = at(A, (0, 0), pn, Hd, Wd)
        N = [at(A, d, pn, Hd, Wd) for d in neigh]
        Nw = [n * wt for n in N]
        yw = y * wt

        def wsel(f):
            return wsum(f)[:, sel]

        R = {(i, j): wsel(Nw[i] * N[j]) for i in range(4) for j in range(i + 1)}
        r = [wsel(Nw[i] * y) for i in range(4)]
        c = cnt[sel]
        mean = wsel(yw) / c
        var = wsel(yw * y) / c - mean * mean
        tr = R[(0, 0)] + R[(1, 1)] + R[(2, 2)] + R[(3, 3)]
        lam = ridge * tr / 4.0
        for i in range(4):
            R[(i, i)] = R[(i, i)] + lam
            r[i] = r[i] + lam * 0.25
        Cs = [x[:, sel] for x in C]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            a, minpiv = _spd_solve4(R, r)
            v = a[0] * Cs[0] + a[1] * Cs[1] + a[2] * Cs[2] + a[3] * Cs[3]
        bad = (var <= flat_tol * gene_var[:, None]) | (minpiv <= 1e-10 * tr) | ~np.isfinite(v)
        val[:, sel] = np.where(bad, bil[:, sel], v)
    cv = [at(V, d, P, H, W) for d in corners]
    all4 = cv[0] & cv[1] & cv[2] & cv[3]
    pv = [cv[i] & cv[j] for i, j in pairs]
    npair = pv[0].astype(np.float64) + pv[1]
    pair_mean = (pv[0] * (C[pairs[0][0]] + C[pairs[0][1]]) + pv[1] * (C[pairs[1][0]] + C[pairs[1][1]])) / np.maximum(2.0 * npair, 1.0)
    val = np.where(all4, val, np.where(npair > 0, pair_mean, bil))
    return val, all4 | (npair > 0)


_DIAG = ((0, 0), (0, 1), (1, 0), (1, 1))  # corners of the centre (i + 1/2, j + 1/2)
_DIAG_N = ((-1, -1), (-1, 1), (1, -1), (1, 1))  # the same stencil at twice the scale
_CROSS = ((-1, 0), (1, 0), (0, -1), (0, 1))
_CROSS_N = ((-2, 0), (2, 0), (0, -2), (0, 2))
_DIAG_PAIRS = ((0, 3), (1, 2))  # opposite corners
_CROSS_PAIRS = ((0, 1), (2, 3))


def _windows(M: int):
    """The M x M window of step 1 and the same window turned by 45 degrees (step 2).

    Both as separable pairs ``(A, B)``: the window is ``{a + b}``.
    """
    lo = -(M // 2 - 1)
    square = (tuple((a, 0) for a in range(lo, lo + M)), tuple((0, b) for b in range(lo, lo + M)))
    # o + s (1, 1) + t (1, -1), s, t in {-(M-1)/2, ..., (M-1)/2}: offsets (k + l - (M-1), k - l)
    diamond = (tuple((k, k) for k in range(M)), tuple((l - (M - 1), -l) for l in range(M)))
    return square, diamond


def _nedi_square_full(X, valid, M, ridge, flat_tol, need):
    """Standard NEDI on a complete (g, u, v) image -> (g, 2u, 2v); ``need``: wanted outputs."""
    g, u, v = X.shape
    gv = X[:, valid].var(1)
    square, diamond = _windows(M)
    Y = np.zeros((g, 2 * u, 2 * v))
    Yv = np.zeros((2 * u, 2 * v), dtype=bool)
    Y[:, ::2, ::2] = X
    Yv[::2, ::2] = valid
    # step 1: all centres (2i+1, 2j+1) from the 4 diagonal low-res neighbours (they
    # are context for step 2); the last row / column extrapolate from the mirrored border
    Y[:, 1::2, 1::2], Yv[1::2, 1::2] = _nedi_pass(X, valid, _DIAG, _DIAG_N, _DIAG_PAIRS, square, ridge, flat_tol, gv)
    # step 2: the remaining pixels (P + Q odd) from their 4-neighbourhood, window turned 45 degrees
    PP, QQ = np.indices(Y.shape[1:])
    odd = (PP + QQ) % 2 == 1
    Z, _ = _nedi_pass(Y, Yv, _CROSS, _CROSS_N, _CROSS_PAIRS, diamond, ridge, flat_tol, gv, targets=odd & need)
    Y[:, odd] = Z[:, odd]
    return Y


def _hex_stencils(M: int):
    """NEDI stencils for the three edge directions of the hex lattice.

    A new hex spot is the midpoint of an edge between two neighbouring spots;
    its 4 nearest spots form a rhombus: the 2 ends of the edge (distance 1 in
    column units) and the 2 apexes of the triangles on either side
    (distance sqrt(3)). Each direction gets (parity of the index (i, j) that
    holds the target, target offset from (i, j), corners, corners at twice
    the scale seen from a training spot, opposite pairs, window). The window
    holds the spots nearest the target (at least ``M^2``, whole distance
    shells: 18 for M = 4), the same set turned by 60 degrees for each
    direction.
    """
    out = []
    specs = [
        # horizontal edges: target (i, j) with i + j odd, ends (i, j -+ 1)
        (1, (0.0, 0.0), ((0, -1), (0, 1), (-1, 0), (1, 0))),
        # edges (p, q) - (p+1, q+1): target (i + 1/2, j + 1/2) with i + j even
        (0, (0.5, 0.5), ((0, 0), (1, 1), (0, 2), (1, -1))),
        # edges (p, q+1) - (p+1, q): target (i + 1/2, j + 1/2) with i + j odd
        (1, (0.5, 0.5), ((0, 1), (1, 0), (0, -1), (1, 2))),
    ]
    for parity, (ci, cj), corners in specs:
        neigh = tuple((int(round(2 * (a - ci))), int(round(2 * (b - cj)))) for a, b in corners)
        cand = []
        for a in range(-2 * M, 2 * M + 1):
            for b in range(-3 * M, 3 * M + 1):
                if (a + b + parity) % 2 == 0:  # lands on a spot
                    cand.append((round(3 * (a - ci) ** 2 + (b - cj) ** 2, 9), a, b))
        cand.sort()
        cut = cand[M * M - 1][0]
        window = (tuple((a, b) for d, a, b in cand if d <= cut), ((0, 0),))
        out.append((parity, ci > 0, corners, neigh, ((0, 1), (2, 3)), window))
    return out


def _nedi_hex_full(X, valid, M, ridge, flat_tol, need):
    """NEDI on the hex lattice: each new spot from its rhombus of 4 measured spots."""
    g, u, v = X.shape
    par = np.indices((u, v)).sum(0) % 2
    gv = X[:, valid].var(1)
    Y = np.zeros((g, 2 * u, 2 * v))
    Y[:, ::2, ::2] = X
    for parity, centre, corners, neigh, pairs, window in _hex_stencils(M):
        sl = (slice(1, None, 2),) * 2 if centre else (slice(None, None, 2),) * 2
        tgt = (par == parity) & need[sl]
        if not tgt.any():
            continue
        Z, _ = _nedi_pass(X, valid, corners, neigh, pairs, window, ridge, flat_tol, gv, targets=tgt)
        Y[(slice(None),) + sl] = np.where(tgt[None], Z, Y[(slice(None),) + sl])
    return Y


def nedi(maps, mask, lattice, out_mask=None, window: int = 4, ridge: float = 1e-3, flat_tol: float = 1e-4, chunk_pixels: int = 1 << 18):
    """New Edge-Directed Interpolation (Li & Orchard, IEEE TIP 10(10):1521, 2001).

    Square lattice (the original algorithm, factor 2)
        1. centres ``(2i+1, 2j+1)``: weights for the 4 diagonal low-res
           neighbours from a least-squares fit over an ``M x M`` window
           (``M = window``, 16 pixels by default) of low-res pixels, each
           regressed on its own 4 diagonal neighbours at twice the distance
           (``a = R^-1 r``, ``R = C^T C``, ``r = C^T y``; "geometric
           duality").
        2. the remaining pixels (``P + Q`` odd) from their 4-neighbourhood
           ``(+-1, 0), (0, +-1)``, with the window turned by 45 degrees: the
           ``M^2`` known pixels ``o + s(1, 1) + t(1, -1)``, each regressed on
           its neighbours at ``(+-2, 0), (0, +-2)``.
        Where the window is flat (local variance <= ``flat_tol`` x the gene's
        variance), has fewer than ``M^2 / 2`` usable training pixels, or the
        system is ill-conditioned, the plain average of the 4 neighbours
        (bilinear) is used. ``ridge`` adds ``ridge * trace(R) / 4`` to R and
        pulls the weights towards 1/4 each (a small, stabilising departure
        from the paper for noisy count data; ``ridge=0`` is plain NEDI).
    Hex lattice (Visium checkerboard)
        Every new spot is the midpoint of an edge between two neighbouring
        spots, in one of three directions. Its 4 nearest spots form a
        rhombus: the 2 ends of the edge and the 2 apexes of the triangles on
        either side. NEDI's rule carries over directly: the weights for the
        rhombus come from the least-squares fit of each spot in a window
        (the ``>= M^2`` spots nearest the target, 18 by default) on its own
        rhombus at twice the scale (its neighbours at 2x the offsets, which
        are spots again). All three directions are predicted from measured
        spots in one pass each, so no second step is needed; the three are
        the same stencil turned by 60 degrees. Fallback: the average of the
        4 rhombus spots. No resampling to a square grid is involved; the
        stencils are built in physical distances (rows x sqrt(3)).
    Missing spots
        Training uses only real data: a training pixel counts when it and
        its 4 neighbours are measured spots (or, in the square lattice's
        second step, values predicted from measured spots only); mirrored
        pixels beyond the map border never count. A prediction whose 4
        neighbours are not all measured is the mean of its measured opposite
        pairs, i.e. linear interpolation between the two measured spots it
        lies between (at the tissue border). Lattice pixels without a
        measured spot are first filled by linear interpolation of the
        measured spots (nearest spot outside their convex hull); the fill
        enters only predictions with no measured opposite pair, which H(M)
        never contains.

    Measured spots are returned unchanged. Vectorised over pixels and genes
    (genes in chunks of about ``chunk_pixels`` output pixels).
    """
    maps, mask, out_mask = _check(maps, mask, lattice, out_mask)
    return _nedi(maps, mask, lattice, out_mask, window, ridge, flat_tol, chunk_pixels)


def _nedi(maps, mask, lattice, out_mask, window=4, ridge=1e-3, flat_tol=1e-4, chunk_pixels=1 << 18):
    g, u, v = maps.shape
    if window < 2 or window % 2:
        raise InputError(None, "window", f"NEDI window must be even and >= 2, got {window}")
    if min(u, v) < 2:
        log.warning("map of shape %s too small for NEDI; using linear interpolation", (u, v))
        return _upsample_scatter(maps, mask, lattice, "linear", out_mask)
    pp, qq = np.indices((u, v))
    lat = np.ones((u, v), bool) if lattice == "square" else (pp + qq) % 2 == 0
    hole = lat & ~mask
    X = maps.copy()
    if hole.any():
        sp, sq = np.nonzero(mask)
        hp, hq = np.nonzero(hole)
        X[:, hp, hq] = _scatter(maps[:, sp, sq].T, sp, sq, 2 * hp, 2 * hq, lattice, "linear").T
    out = np.zeros((g, 2 * u, 2 * v), dtype=np.float32)
    step = max(1, int(chunk_pixels // (4 * u * v)))
    full = _nedi_square_full if lattice == "square" else _nedi_hex_full
    for s in range(0, g, step):
        Y = full(X[s : s + step], mask, window, ridge, flat_tol, out_mask)
        out[s : s + step] = np.where(out_mask[None], Y, 0.0)
    _copy_measured(out, maps, mask, out_mask)
    return out


# ---------------------------------------------------------------------------
# DIST
# ---------------------------------------------------------------------------
class DISTNet(torch.nn.Module):
    """DIST's network (Zhao, Wang & Hu, Brief. Bioinform. 24(2):bbad013, 2023).

    A VDSR-like residual CNN that maps a ``(h, w)`` map to 4 channels, one per
    position of each 2x2 output block, merged into ``(2h, 2w)`` (channels 0,
    1, 2, 3 = top-left, top-right, bottom-left, bottom-right). Per block:
    ``a = conv(x)``; ``z = conv(conv(relu(a)))``; ``x = relu(z + a)``. Then a
    last conv to 4 channels, plus the input added to every channel. All
    convolutions are 3x3, stride 1, zero "same" padding, ``width`` channels;
    weights ~ N(0, init_variance / fan_in), biases 0. The defaults (2 blocks,
    width 64, variance 0.1) are those of the authors' code
    (github.com/zhaoyp1997/DIST, ``configs.py`` and ``network.py``): it
    declares 11 filter banks, but through its index arithmetic only these 7
    convolutions enter the graph, and the two inner convolutions of a block
    have no nonlinearity between them.
    """

    def __init__(self, width: int = 64, n_blocks: int = 2, init_variance: float = 0.1):
        super().__init__()
        self.config = {"width": int(width), "n_blocks": int(n_blocks), "init_variance": float(init_variance)}
        nn = torch.nn
        blocks = []
        cin = 1
        for _ in range(n_blocks):
            blocks.append(nn.ModuleList([nn.Conv2d(cin, width, 3, padding=1), nn.Conv2d(width, width, 3, padding=1), nn.Conv2d(width, width, 3, padding=1)]))
            cin = width
        self.blocks = nn.ModuleList(blocks)
        self.last = nn.Conv2d(cin, 4, 3, padding=1)  # the "reconstruction layer"
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                fan_in = mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1]
                nn.init.normal_(mod.weight, 0.0, math.sqrt(init_variance / fan_in))
                nn.init.zeros_(mod.bias)
        self.loss_history: list[float] = []

    def forward(self, x):
        """``(B, h, w) -> (B, 2h, 2w)``."""
        x1 = x.unsqueeze(1)
        h = x1
        for conv_in, conv_a, conv_b in self.blocks:
            a = conv_in(h)
            h = torch.relu(conv_b(conv_a(torch.relu(a))) + a)
        y = self.last(h) + x1  # residual: the input added to each of the 4 channels
        return torch.nn.functional.pixel_shuffle(y, 2).squeeze(1)


def train_dist(
    maps,
    mask,
    lattice,
    epochs: int = 200,
    seed: int = 0,
    device="auto",
    batch_size: int = 128,
    lr: float = 1e-3,
    width: int = 64,
    n_blocks: int = 2,
    init_variance: float = 0.1,
    last_lr_scale: float = 1e-3,
):
    """Train DIST self-supervised on the pairs ``(D(G), G)`` of the given maps.

    Exactly stEnTrans's pretext task (design.md section 1): input
    ``D(G)`` from :func:`stentrans.lattice.downsample`, target ``G``, loss the
    mean squared error over the in-tissue pixels ``M`` (output cropped to the
    target's shape). Genes are the samples; a fresh random order each epoch.
    Adam (lr ``lr``; the reconstruction layer at ``lr * last_lr_scale``, as in
    the authors' code); defaults: the authors' 200 epochs, batches of 128.
    The model sees the same ``(u, v)`` maps as stEnTrans (on hex the
    checkerboard, zeros at ``p + q`` odd) rather than DIST's own re-indexing
    of Visium rows, so both models get identical inputs and targets.
    Seeded through :func:`stentrans._utils.set_seed` plus a dedicated
    generator for the gene order: the same seed gives the same model on CPU.

    Returns the trained :class:`DISTNet` (eval mode) with ``loss_history``
    (mean loss per epoch), ``lattice`` and ``train_config``.
    """
    maps, mask, _ = _check(maps, mask, lattice, None)
    dev = pick_device(device)
    configure_threads(dev)
    set_seed(seed)
    model = DISTNet(width=width, n_blocks=n_blocks, init_variance=init_variance).to(dev)
    last = set(id(p) for p in model.last.parameters())
    body = [p for p in model.parameters() if id(p) not in last]
    opt = torch.optim.Adam([{"params": body, "lr": lr}, {"params": list(model.last.parameters()), "lr": lr * last_lr_scale}])
    target = (maps * mask).astype(np.float32)
    x_lr, _ = downsample(target, mask, lattice)
    x_all = torch.from_numpy(np.ascontiguousarray(x_lr, dtype=np.float32)).to(dev)
    y_all = torch.from_numpy(np.ascontiguousarray(target)).to(dev)
    m = torch.from_numpy(mask.astype(np.float32)).to(dev)
    n_in = float(mask.sum())
    n = x_all.shape[0]
    if n == 0:
        raise InputError(None, "genes", "no gene maps to train DIST on")
    u, v = mask.shape
    gen = torch.Generator().manual_seed(int(seed))
    t0 = time.perf_counter()
    model.train()
    for _ in range(int(epochs)):
        perm = torch.randperm(n, generator=gen).to(dev)
        tot = 0.0
        for s in range(0, n, batch_size):
            idx = perm[s : s + batch_size]
            out = model(x_all[idx])[:, :u, :v]
            loss = (((out - y_all[idx]) * m) ** 2).sum() / (len(idx) * n_in)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(idx)
        model.loss_history.append(tot / n)
    model.eval()
    model.lattice = lattice
    model.train_config = {
        "epochs": int(epochs),
        "seed": int(seed),
        "batch_size": int(batch_size),
        "lr": float(lr),
        "last_lr_scale": float(last_lr_scale),
        "device": str(dev),
        "seconds": time.perf_counter() - t0,
    }
    log.info("DIST trained %d epochs on %d genes in %.1fs, final loss %.4g", epochs, n, model.train_config["seconds"], model.loss_history[-1] if model.loss_history else float("nan"))
    return model


def predict_dist(model, maps, batch_size: int = 256) -> np.ndarray:
    """DIST's raw prediction ``(n_genes, u, v) -> (n_genes, 2u, 2v)`` float32."""
    dev = next(model.parameters()).device
    model.eval()
    maps = np.ascontiguousarray(maps, dtype=np.float32)
    n, u, v = maps.shape
    out = np.empty((n, 2 * u, 2 * v), dtype=np.float32)
    with torch.no_grad():
        for s in range(0, n, batch_size):
            out[s : s + batch_size] = model(torch.from_numpy(maps[s : s + batch_size]).to(dev)).cpu().numpy()
    return out


def _upsample_dist(maps, mask, lattice, out_mask, model=None, clip_negative=None, **train_kw):
    if model is None:
        model = train_dist(maps, mask, lattice, **train_kw)
    elif train_kw:
        raise TypeError(f"training arguments {sorted(train_kw)} given together with a trained model")
    out = predict_dist(model, maps * mask)
    if clip_negative is None:  # as the authors' code: clip when the data are non-negative
        clip_negative = bool((maps[:, mask] >= 0).all())
    if clip_negative:
        np.maximum(out, 0, out=out)
    out *= out_mask[None]
    return out


# ---------------------------------------------------------------------------
# the one interface
# ---------------------------------------------------------------------------
def upsample(maps, mask, lattice: str, method: str, out_mask=None, **kw) -> np.ndarray:
    """Predict the doubled grid with a baseline.

    Parameters
    ----------
    maps
        ``(n_genes, u, v)`` gene maps on the measured grid.
    mask
        ``(u, v)`` bool, measured in-tissue spots (values elsewhere ignored).
    lattice
        ``"square"`` or ``"hex"``.
    method
        One of :data:`METHODS`.
    out_mask
        ``(2u, 2v)`` bool, the positions to predict; default H(M)
        (:func:`stentrans.lattice.enhanced_mask`). Other outputs are 0.
    **kw
        ``nedi``: ``window``, ``ridge``, ``flat_tol`` (see :func:`nedi`).
        ``dist``: ``model`` (trained :class:`DISTNet`; trained here on
        ``(D(maps), maps)`` when None), ``clip_negative`` (default: when the
        data are non-negative), and when training: the arguments of
        :func:`train_dist` (``epochs``, ``seed``, ``device``, ``batch_size``,
        ``lr``, ...).

    Returns
    -------
    ``(n_genes, 2u, 2v)`` float32. On hex, pixels with ``P + Q`` odd are not
    lattice points: NEDI leaves them 0 even when ``out_mask`` asks for them.
    """
    if method not in METHODS:
        raise InputError(None, "method", f"must be one of {METHODS}, got {method!r}")
    maps, mask, out_mask = _check(maps, mask, lattice, out_mask)
    if method in ("linear", "cubic", "nn"):
        if kw:
            raise TypeError(f"upsample(method={method!r}) takes no extra arguments, got {sorted(kw)}")
        return _upsample_scatter(maps, mask, lattice, method, out_mask)
    if method == "nedi":
        return _nedi(maps, mask, lattice, out_mask, **kw)
    return _upsample_dist(maps, mask, lattice, out_mask, **kw)
