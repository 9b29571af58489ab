"""Input checks and scattered-data interpolation (linear, cubic, nn) of the baselines.

Distances use physical positions in column units
(:func:`stentrans.lattice.physical` with the spot pitch in column units: 1 on
the square lattice, 2 on the hex lattice, where the Visium neighbours
``(0, +-2)`` and ``(+-1, +-1)`` are all at distance 2).
"""

from __future__ import annotations

import logging

import numpy as np

from ..._errors import InputError
from ...lattice import LATTICES, enhanced_mask, physical

log = logging.getLogger("stentrans.baselines")

#: spot pitch in column units: the ``spacing`` of :func:`~stentrans.lattice.physical`
#: that puts positions in column units
_COLUMN_UNITS = {"square": 1.0, "hex": 2.0}


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
    """Physical (row, col) positions, in column units, of input-pixel coordinates (may be halves)."""
    x, y = physical(np.asarray(rows, dtype=np.float64), np.asarray(cols, dtype=np.float64), lattice, spacing=_COLUMN_UNITS[lattice])
    return np.column_stack([y, x])


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
