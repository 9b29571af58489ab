"""Lattice coordinates from positions: snapping, collisions, and which lattice the data form.

* :func:`snap_to_lattice` infers a square or hex lattice from positions alone
  (e.g. pixels) and returns integer ``array_row``/``array_col``;
* ``_snap_integer`` rounds near-integer lattice coordinates (ST centroids such
  as ``16.92x9.015``) within a tolerance;
* ``_resolve_lattice`` checks a requested lattice against the coordinates
  (the Visium checkerboard: every ``array_row + array_col`` even).
"""

from __future__ import annotations

import numpy as np

from .._errors import InputError
from ..lattice import LATTICES, check_extent
from ._text import _examples

__all__ = ["snap_to_lattice", "DEFAULT_SNAP_TOL"]

#: largest distance (lattice units per axis; spacings for pixel positions) a
#: coordinate may be from its lattice point
DEFAULT_SNAP_TOL = 0.3


def _axis_fields(field: str) -> tuple[str, str]:
    """Names of the row and column coordinate in an input whose coordinates are ``field``."""
    if "/" in field:
        a, b = field.split("/", 1)
        return a, b
    return f"{field} (Y: array_row)", f"{field} (X: array_col)"


def _snap_integer(r, c, ids, tol: float, path, field: str):
    """Snap float lattice coordinates to the nearest integers (within ``tol``)."""
    r = np.asarray(r, dtype=float)
    c = np.asarray(c, dtype=float)
    bad_nan = ~(np.isfinite(r) & np.isfinite(c))
    if bad_nan.any():
        raise InputError(path, field, f"missing/non-numeric coordinates for spot(s) {_examples(np.asarray(ids)[bad_nan])}")
    check_extent(r, c, path, fields=_axis_fields(field))
    ri, ci = np.rint(r), np.rint(c)
    off = np.maximum(np.abs(r - ri), np.abs(c - ci))
    far = off > tol + 1e-9
    if far.any():
        j = np.flatnonzero(far)
        ex = ", ".join(f"{ids[i]} (offset {off[i]:.3g})" for i in j[:5])
        raise InputError(path, field, f"{far.sum()} spot(s) farther than {tol:g} from an integer lattice point (off-lattice): {ex}")
    _check_collisions(ri, ci, ids, path, field)
    return ri.astype(np.int64), ci.astype(np.int64), {"tolerance": float(tol), "n_snapped": int((off > 1e-9).sum()), "max_offset": float(off.max()) if off.size else 0.0}


def _check_collisions(r, c, ids, path, field) -> None:
    rc = np.column_stack([np.asarray(r, dtype=np.int64), np.asarray(c, dtype=np.int64)])
    _, inv, cnt = np.unique(rc, axis=0, return_inverse=True, return_counts=True)
    inv = inv.ravel()
    if (cnt > 1).any():
        multi = [np.flatnonzero(inv == g).tolist() for g in np.flatnonzero(cnt > 1)]
        ex = "; ".join(" and ".join(str(ids[i]) for i in grp) + f" -> (row {int(np.asarray(r)[grp[0]])}, col {int(np.asarray(c)[grp[0]])})" for grp in multi[:3])
        raise InputError(path, field, f"{len(multi)} lattice point(s) hold more than one spot (collision): {ex}")


def _is_checkerboard(r, c) -> bool:
    r = np.asarray(r, dtype=np.int64)
    c = np.asarray(c, dtype=np.int64)
    if r.size < 2 or ((r + c) % 2).any():
        return False
    # all rows and columns even is a square lattice with spacing 2, not a honeycomb
    return bool((r % 2).any())


def _resolve_lattice(lattice: str, r, c, path, auto_hex: bool) -> str:
    if lattice not in ("auto",) + LATTICES:
        raise InputError(path, "lattice", f"{lattice!r} is not one of auto, square, hex")
    cb = _is_checkerboard(r, c)
    if lattice == "auto":
        return "hex" if (cb and auto_hex) else "square"
    if lattice == "hex" and not cb:
        odd = (np.asarray(r) + np.asarray(c)) % 2 != 0
        if odd.any():
            j = np.flatnonzero(odd)[:3]
            ex = ", ".join(f"({int(np.asarray(r)[i])}, {int(np.asarray(c)[i])})" for i in j)
            raise InputError(path, "lattice", f"'hex' contradicts the data: {int(odd.sum())} spot(s) with odd array_row + array_col, e.g. {ex}")
    if lattice == "square" and cb and np.asarray(r).size >= 3:
        raise InputError(path, "lattice", "'square' contradicts the data: all spots have even array_row + array_col (a hex/Visium checkerboard); use 'hex' or 'auto'")
    return lattice


def snap_to_lattice(xy, lattice: str = "auto", tol: float = DEFAULT_SNAP_TOL, ids=None, source=None):
    """Lattice coordinates for spots given only by positions (e.g. pixels).

    The spacing ``a`` comes from nearest-neighbour distances; square vs hex from
    the angles of the neighbour vectors (4-fold vs 6-fold symmetry). Each spot
    is rounded to the nearest lattice point, then an affine fit of the lattice
    to all spots is refined; spots farther than ``tol * a`` from their point
    and two spots on one point are errors naming the ids.

    Returns
    -------
    array_row, array_col : int arrays (hex: Visium checkerboard, row + col even)
    lattice : the lattice used
    info : dict with ``spacing``, ``max_offset`` (units of ``a``), ``tolerance``.
    """
    from scipy.spatial import cKDTree

    xy = np.asarray(xy, dtype=float)
    n = xy.shape[0]
    ids = np.asarray(ids if ids is not None else np.arange(n)).astype(str)
    field = 'obsm["spatial"]'
    if xy.ndim != 2 or xy.shape[1] < 2:
        raise InputError(source, field, f"expected an (n, 2) array, got shape {xy.shape}")
    xy = xy[:, :2]
    if not np.isfinite(xy).all():
        bad = ~np.isfinite(xy).all(axis=1)
        raise InputError(source, field, f"non-finite positions for spot(s) {_examples(ids[bad])}")
    if n < 3:
        raise InputError(source, field, f"{n} spot(s): too few to infer a lattice from positions")
    tree = cKDTree(xy)
    d, j = tree.query(xy, k=min(7, n))
    if (d[:, 1] <= 0).any():
        i = int(np.flatnonzero(d[:, 1] <= 0)[0])
        raise InputError(source, field, f"spots {ids[i]} and {ids[j[i, 1]]} have the same position (collision)")
    a0 = float(np.median(d[:, 1]))
    near = (d[:, 1:] > 0.75 * a0) & (d[:, 1:] < 1.25 * a0)
    src_i = np.repeat(np.arange(n)[:, None], d.shape[1] - 1, axis=1)[near]
    vec = xy[j[:, 1:][near]] - xy[src_i]
    theta = np.arctan2(vec[:, 1], vec[:, 0])
    r4 = abs(np.exp(4j * theta).mean())
    r6 = abs(np.exp(6j * theta).mean())
    detected = "hex" if r6 > r4 else "square"
    if lattice == "auto":
        lattice = detected
    elif lattice not in LATTICES:
        raise InputError(source, "lattice", f"{lattice!r} is not one of auto, square, hex")
    elif lattice != detected and max(r4, r6) > 0.8:
        raise InputError(source, "lattice", f"{lattice!r} contradicts the data: the spot positions form a {detected} lattice")
    k = 6 if lattice == "hex" else 4
    phi = float(np.angle(np.exp(1j * k * theta).mean()) / k)
    # spacing: mean length of neighbour vectors
    a = float(np.linalg.norm(vec, axis=1).mean())
    e1 = a * np.array([np.cos(phi), np.sin(phi)])
    turn = np.pi / 3 if lattice == "hex" else np.pi / 2
    e2 = a * np.array([np.cos(phi + turn), np.sin(phi + turn)])
    o = xy[np.argmin(np.linalg.norm(xy - xy.mean(0), axis=1))]
    A = np.column_stack([e1, e2])  # xy - o = A @ (i, k)
    frac = np.linalg.solve(A, (xy - o).T).T
    for _ in range(6):
        ik = np.rint(frac)
        design = np.column_stack([ik, np.ones(n)])
        coef, *_ = np.linalg.lstsq(design, xy, rcond=None)  # xy ~ [i, k, 1] @ coef
        A = coef[:2].T
        o = coef[2]
        frac_new = np.linalg.solve(A, (xy - o).T).T
        if np.array_equal(np.rint(frac_new), ik):
            frac = frac_new
            break
        frac = frac_new
    ik = np.rint(frac)
    check_extent(ik[:, 1], ik[:, 0], source, fields=(field + " (lattice rows)", field + " (lattice columns)"))
    resid = np.linalg.norm((xy - o) - ik @ A.T, axis=1) / a
    far = resid > tol
    if far.any():
        jj = np.flatnonzero(far)
        ex = ", ".join(f"{ids[i]} (offset {resid[i]:.2f} spacings)" for i in jj[:5])
        raise InputError(source, field, f"{far.sum()} spot(s) farther than {tol:g} spacings from the fitted {lattice} lattice (off-lattice): {ex}")
    i_, k_ = ik[:, 0].astype(np.int64), ik[:, 1].astype(np.int64)
    if lattice == "hex":
        row, col = k_, 2 * i_ + k_
    else:
        # e2 is e1 turned by +90 degrees: rows follow the second image axis (y)
        row, col = k_, i_
    r0, c0 = row.min(), col.min()
    if lattice == "hex" and (r0 + c0) % 2:
        c0 -= 1
    row, col = row - r0, col - c0
    _check_collisions(row, col, ids, source, field)
    return row, col, lattice, {"spacing": a, "max_offset": float(resid.max()), "tolerance": float(tol), "detected": detected}
