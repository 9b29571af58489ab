"""NEDI, New Edge-Directed Interpolation (Li & Orchard 2001), on the square and the hex lattice."""

from __future__ import annotations

import numpy as np

from ..._errors import InputError
from .config import NEDIConfig
from .interp import _check, _copy_measured, _scatter, _upsample_scatter, log

__all__ = ["nedi"]

_D = NEDIConfig()


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


def nedi(maps, mask, lattice, out_mask=None, window: int = _D.window, ridge: float = _D.ridge, flat_tol: float = _D.flat_tol, chunk_pixels: int = _D.chunk_pixels):
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


def _nedi(maps, mask, lattice, out_mask, window=_D.window, ridge=_D.ridge, flat_tol=_D.flat_tol, chunk_pixels=_D.chunk_pixels):
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
