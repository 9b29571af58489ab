"""Lattice geometry: spots <-> dense 2-D maps, down-sampling D, enhanced mask H(M).

Conventions (docs/method.md section 2)
---------------------------------
* Every spot carries integer lattice coordinates ``array_row`` and
  ``array_col``. Pixel ``(p, q)`` of a map holds the spot with
  ``array_row = row0 + p * step`` and ``array_col = col0 + q * step``.
  Rows of the map are ``array_row``, columns are ``array_col``. For ST spot
  ids ``XxY`` the reader sets ``array_col = X`` and ``array_row = Y``.
* ``square`` (ST): every pixel is a possible lattice point; neighbours are the
  4 pixels at distance 1.
* ``hex`` (Visium): lattice points are the checkerboard ``array_row +
  array_col`` even. The origin is chosen with ``row0 + col0`` even, so lattice
  pixels are exactly those with ``p + q`` even. Neighbours: ``(0, +-2)`` and
  ``(+-1, +-1)``.
* Down-sampling D keeps pixel ``(2i, 2k)``; on hex only where ``i + k`` is even,
  so the coarse lattice is again a checkerboard with twice the spacing.
* The enhanced grid doubles both axes; pixel ``(P, Q)`` sits at lattice
  coordinate ``(row0 + P * step / 2, col0 + Q * step / 2)``. H(M) is 1 at the
  measured spots and at midpoints of two neighbouring in-tissue spots (on
  square lattices the centre of a 2x2 block counts when either diagonal pair
  is in tissue).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, asdict

import numpy as np

from ._errors import InputError

LATTICES = ("square", "hex")

# neighbour offsets used for H(M): each pair (s, s + d) of in-tissue spots puts
# a new spot at pixel 2 s + d of the doubled grid.
_MIDPOINT_OFFSETS = {
    "square": ((0, 1), (1, 0), (1, 1), (1, -1)),
    "hex": ((0, 2), (1, 1), (1, -1)),
}
# graph neighbours (for Sepal and baselines)
NEIGHBOUR_OFFSETS = {
    "square": ((0, 1), (0, -1), (1, 0), (-1, 0)),
    "hex": ((0, 2), (0, -2), (1, 1), (1, -1), (-1, 1), (-1, -1)),
}


@dataclass(frozen=True)
class Grid:
    """Placement of a lattice in a dense map.

    Attributes
    ----------
    lattice
        ``"square"`` or ``"hex"``.
    row0, col0
        Lattice coordinates of pixel ``(0, 0)``.
    shape
        ``(u, v)`` map shape.
    step
        Lattice units per pixel: 1 for measured data, 0.5 after enhancement,
        2 after down-sampling.
    """

    lattice: str
    row0: float
    col0: float
    shape: tuple[int, int]
    step: float = 1.0

    def __post_init__(self):
        if self.lattice not in LATTICES:
            raise ValueError(f"lattice must be one of {LATTICES}, got {self.lattice!r}")

    # -- coordinates -----------------------------------------------------
    def pixels(self, array_row, array_col, source=None) -> tuple[np.ndarray, np.ndarray]:
        """Pixel indices of lattice coordinates; errors name off-grid spots."""
        r = (np.asarray(array_row, dtype=float) - self.row0) / self.step
        c = (np.asarray(array_col, dtype=float) - self.col0) / self.step
        p = np.rint(r).astype(np.int64)
        q = np.rint(c).astype(np.int64)
        bad = (np.abs(r - p) > 1e-6) | (np.abs(c - q) > 1e-6)
        bad |= (p < 0) | (q < 0) | (p >= self.shape[0]) | (q >= self.shape[1])
        if self.lattice == "hex":
            bad |= ((p + q) % 2) != 0
        if bad.any():
            i = np.flatnonzero(bad)[:5]
            vals = ", ".join(f"({array_row[j]}, {array_col[j]})" for j in i)
            raise InputError(source, "array_row/array_col", f"{bad.sum()} spot(s) not on the {self.lattice} grid, e.g. {vals}")
        return p, q

    def coords(self, p, q) -> tuple[np.ndarray, np.ndarray]:
        """Lattice coordinates of pixels."""
        return (self.row0 + np.asarray(p) * self.step, self.col0 + np.asarray(q) * self.step)

    def lattice_mask(self) -> np.ndarray:
        """Pixels that can hold a lattice point (all on square, checkerboard on hex)."""
        if self.lattice == "square":
            return np.ones(self.shape, dtype=bool)
        p, q = np.indices(self.shape)
        return (p + q) % 2 == 0

    def down(self) -> "Grid":
        return Grid(self.lattice, self.row0, self.col0, ((self.shape[0] + 1) // 2, (self.shape[1] + 1) // 2), self.step * 2)

    def up(self) -> "Grid":
        return Grid(self.lattice, self.row0, self.col0, (self.shape[0] * 2, self.shape[1] * 2), self.step / 2)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shape"] = list(self.shape)
        return d

    @classmethod
    def from_dict(cls, d) -> "Grid":
        return cls(str(d["lattice"]), float(d["row0"]), float(d["col0"]), tuple(int(x) for x in d["shape"]), float(d.get("step", 1.0)))


#: largest grid side (pixels per axis) :func:`fit_grid` places: Visium HD's
#: 2 um bins (3,350 x 3,350 per capture area) fit, spot ids such as
#: ``1000000000000x1`` do not (their enhanced maps would need petabytes)
MAX_GRID_SIDE = 2**15
#: largest number of grid pixels (``u * v``) :func:`fit_grid` places
MAX_GRID_PIXELS = 2**26


def check_extent(array_row, array_col, source=None, fields=("array_row", "array_col"), pad: int = 0) -> None:
    """Refuse lattice coordinates whose grid would exceed :data:`MAX_GRID_SIDE` / :data:`MAX_GRID_PIXELS`.

    Raises :class:`~stentrans.InputError` naming ``source``, the coordinate
    (``fields``: the names of ``array_row`` and ``array_col`` in the input),
    its span and the limit. Non-finite coordinates are refused too.
    """
    sides = []
    for v, name in zip((array_row, array_col), fields):
        v = np.asarray(v, dtype=float)
        if v.size == 0:
            sides.append(0)
            continue
        if not np.isfinite(v).all():
            raise InputError(source, name, f"non-finite lattice coordinate {float(v[~np.isfinite(v)][0])!r}")
        lo, hi = float(v.min()), float(v.max())
        if max(abs(lo), abs(hi)) > 2.0**52:  # beyond exact integers in float64 (and near int64 overflow)
            raise InputError(source, name, f"lattice coordinate {lo if abs(lo) > abs(hi) else hi:.15g} is out of range (magnitude above 2**52)")
        n = np.floor(hi) - np.ceil(lo) + 2 + 2 * pad  # (+1 for the hex origin parity)
        if n > MAX_GRID_SIDE:
            raise InputError(source, name, f"spans {lo:.15g} .. {hi:.15g}: a grid of more than the limit of {MAX_GRID_SIDE} lattice steps per side (not a spot array)")
        sides.append(int(n))
    if sides[0] * sides[1] > MAX_GRID_PIXELS:
        raise InputError(source, "/".join(fields), f"the spots span {sides[0]} x {sides[1]} lattice steps: a grid of more than the limit of {MAX_GRID_PIXELS} pixels")


def check_point_extent(xy, steps, source=None, columns=("x", "y"), *, labels=None, pad: int = 0, max_side: float = MAX_GRID_SIDE, max_pixels: float = MAX_GRID_PIXELS, grid: str = "lattice steps", hint: str = "") -> None:
    """Refuse points whose bounding box covers more grid cells than :func:`check_extent` allows a lattice.

    ``xy`` are physical ``(x, y)`` (molecules, beads, cell centroids) in the
    file's units; ``steps`` the grid's pitch ``(along x, along y)`` in those
    units (``grid`` names the cells in the message, ``pad`` cells are added on
    every side). One stray coordinate (``x = 1e12``) would otherwise ask for
    a raster of terabytes. The :class:`~stentrans.InputError` names
    ``source``, the column (``columns``) and the value farthest from the
    median of its axis, in grid cells (the stray one where there is one),
    with where it is (``labels[i]`` or ``labels(i)``; default ``row i + 1``).
    """
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    if len(xy) == 0:
        return
    steps = np.asarray(steps, dtype=np.float64).reshape(2)

    def where(i: int) -> str:
        if labels is None:
            return f"row {i + 1}"
        return str(labels(i) if callable(labels) else labels[i])

    bad = ~np.isfinite(xy)
    if bad.any():
        i, a = (int(v) for v in np.argwhere(bad)[0])
        raise InputError(source, f"column {columns[a]!r}", f"non-finite value {xy[i, a]!r} at {where(i)}")
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    with np.errstate(over="ignore", invalid="ignore"):
        sides = np.floor((hi - lo) / steps) + 2 + 2 * pad
        pixels = float(sides[0]) * float(sides[1])
    if (sides <= max_side).all() and pixels <= max_pixels:
        return
    with np.errstate(over="ignore", invalid="ignore"):
        dev = np.abs(xy - np.median(xy, axis=0)) / steps
    far = np.flatnonzero((dev == np.nanmax(dev)).ravel())  # ties (two points): the larger magnitude
    i, a = (int(v) for v in np.unravel_index(int(far[np.argmax(np.abs(xy).ravel()[far])]), dev.shape))
    limit = f"the limit of {max_side:.0f} per side" if not (sides <= max_side).all() else f"the limit of {max_pixels:.0f} in all"
    raise InputError(
        source,
        f"column {columns[a]!r}",
        f"value {xy[i, a]:.15g} at {where(i)} lies far from the other points: they span {hi[0] - lo[0]:.6g} x {hi[1] - lo[1]:.6g} units, "
        f"{sides[0]:.0f} x {sides[1]:.0f} {grid}, more than {limit}{hint}",
    )


def fit_grid(array_row, array_col, lattice: str, source=None, pad: int = 0) -> Grid:
    """Smallest grid holding all spots (origin parity fixed for hex); at most :data:`MAX_GRID_SIDE` per side."""
    r = np.asarray(array_row, dtype=float)
    c = np.asarray(array_col, dtype=float)
    if r.size == 0:
        raise InputError(source, "spots", "no spots to place on a grid")
    check_extent(r, c, source, pad=pad)
    if not (np.allclose(r, np.rint(r)) and np.allclose(c, np.rint(c))):
        raise InputError(source, "array_row/array_col", "lattice coordinates must be integers")
    r0 = int(np.rint(r.min())) - pad
    c0 = int(np.rint(c.min())) - pad
    if lattice == "hex":
        bad = (np.rint(r) + np.rint(c)) % 2 != 0
        if bad.any():
            j = np.flatnonzero(bad)[:5]
            vals = ", ".join(f"({int(r[i])}, {int(c[i])})" for i in j)
            raise InputError(source, "array_row/array_col", f"{bad.sum()} spot(s) with odd array_row + array_col on a hex lattice, e.g. {vals}")
        if (r0 + c0) % 2:
            c0 -= 1
    u = int(np.rint(r.max())) - r0 + 1 + pad
    v = int(np.rint(c.max())) - c0 + 1 + pad
    return Grid(lattice, float(r0), float(c0), (u, v), 1.0)


def spots_to_pixels(array_row, array_col, grid: Grid, source=None, ids=None):
    """Pixel indices, erroring on collisions (two spots on one pixel)."""
    p, q = grid.pixels(array_row, array_col, source)
    flat = p * grid.shape[1] + q
    uniq, counts = np.unique(flat, return_counts=True)
    if (counts > 1).any():
        dup = uniq[counts > 1][:3]
        names = []
        for d in dup:
            who = np.flatnonzero(flat == d)
            names.append("/".join(str(ids[w]) if ids is not None else str(w) for w in who))
        raise InputError(source, "array_row/array_col", f"{(counts > 1).sum()} pixel(s) hold more than one spot: {', '.join(names)}")
    return p, q


def to_maps(values: np.ndarray, p: np.ndarray, q: np.ndarray, shape, dtype=np.float32) -> np.ndarray:
    """Scatter a (n_spots, n_genes) matrix into (n_genes, u, v) maps (0 elsewhere)."""
    values = np.asarray(values)
    maps = np.zeros((values.shape[1], shape[0], shape[1]), dtype=dtype)
    maps[:, p, q] = values.T
    return maps


def from_maps(maps: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Gather (n_genes, u, v) maps back to (n_spots, n_genes)."""
    return np.ascontiguousarray(np.asarray(maps)[:, p, q].T)


def mask_from_pixels(p, q, shape) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    m[p, q] = True
    return m


def measured_index(P, Q, p, q, shape) -> np.ndarray:
    """For doubled-grid pixels ``(P, Q)``: the index into the measured pixels ``(p, q)`` (of a grid of ``shape``) sitting there, else -1.

    A doubled-grid pixel holds a measured spot only at even ``(P, Q)``, where
    ``(P // 2, Q // 2)`` is one of ``(p, q)`` (on hex the midpoint of two
    ``(0, +-2)`` neighbours is also an even pixel, without a spot).
    """
    P, Q = np.asarray(P), np.asarray(Q)
    at = np.full(tuple(shape), -1, dtype=np.int64)
    at[np.asarray(p), np.asarray(q)] = np.arange(len(p))
    even = (P % 2 == 0) & (Q % 2 == 0)
    idx = np.full(len(P), -1, dtype=np.int64)
    idx[even] = at[P[even] // 2, Q[even] // 2]
    return idx


def downsample(maps: np.ndarray, mask: np.ndarray, lattice: str):
    """D: keep pixels (2i, 2k) (and on hex only i + k even).

    Works on numpy arrays and torch tensors with the map in the last two axes.
    Returns ``(maps_lr, mask_lr)``.
    """
    lr = maps[..., ::2, ::2]
    mlr = np.asarray(mask)[::2, ::2].copy()
    if lattice == "hex":
        i, k = np.indices(mlr.shape)
        mlr &= (i + k) % 2 == 0
    if isinstance(lr, np.ndarray):
        lr = lr * mlr
    else:  # torch
        import torch

        lr = lr * torch.as_tensor(mlr, dtype=lr.dtype, device=lr.device)
    return lr, mlr


def kept_mask(mask: np.ndarray, lattice: str) -> np.ndarray:
    """Full-resolution mask of the spots that survive D (the model's input)."""
    k = np.zeros_like(mask, dtype=bool)
    _, mlr = downsample(np.zeros((1,) + mask.shape, dtype=np.float32), mask, lattice)
    k[::2, ::2] = mlr
    return k


def coset_labels(shape, lattice: str) -> np.ndarray:
    """``(u, v)`` int labels 0-3: the coset of the down-sampled lattice ``D`` each pixel belongs to.

    ``D`` keeps a sub-lattice of twice the spacing (index 4); its four cosets
    are the phase offsets of ``D``. Label 0 is what ``D`` keeps. Square:
    ``2 (p mod 2) + (q mod 2)``. Hex (``p + q`` even): ``2 (p mod 2) + ((p + q) / 2 mod 2)``;
    pixels off the hex lattice get -1. A spot's lattice neighbours are all
    in other cosets.
    """
    p, q = np.indices(tuple(shape))
    if lattice == "square":
        return 2 * (p % 2) + (q % 2)
    out = 2 * (p % 2) + ((p + q) // 2) % 2
    return np.where((p + q) % 2 == 0, out, -1)


def enhanced_mask(mask: np.ndarray, lattice: str) -> np.ndarray:
    """H(M) on the doubled grid (2u, 2v)."""
    mask = np.asarray(mask, dtype=bool)
    u, v = mask.shape
    H = np.zeros((2 * u, 2 * v), dtype=bool)
    H[::2, ::2] = mask
    if lattice == "hex":
        valid = np.indices(mask.shape).sum(0) % 2 == 0
        mask = mask & valid
    P, Q = np.nonzero(mask)
    for dr, dc in _MIDPOINT_OFFSETS[lattice]:
        r2, c2 = P + dr, Q + dc
        ok = (r2 >= 0) & (r2 < u) & (c2 >= 0) & (c2 < v)
        ok[ok] = mask[r2[ok], c2[ok]]
        H[2 * P[ok] + dr, 2 * Q[ok] + dc] = True
    return H


# ---------------------------------------------------------------------------
# physical coordinates and spot shapes (the only place that knows them)
# ---------------------------------------------------------------------------
#: physical (x, y) per lattice unit of (array_col, array_row), in units of the
#: centre-to-centre distance of neighbouring spots
UNIT_XY = {"square": (1.0, 1.0), "hex": (0.5, math.sqrt(3.0) / 2.0)}
#: physical spot pitch of the two technologies, micrometres
SPACING_UM = {"square": 200.0, "hex": 100.0}
#: spot diameter of the two technologies, micrometres (ST 100 um, Visium 55 um)
SPOT_DIAMETER_UM = {"square": 100.0, "hex": 55.0}


def physical(array_row, array_col, lattice: str, spacing: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Physical ``(x, y)`` of lattice coordinates (may be half steps).

    ``x`` follows ``array_col`` and ``y`` follows ``array_row``; neighbouring
    spots lie ``spacing`` apart (square: ``x = col``, ``y = row``; hex:
    ``x = col / 2``, ``y = row * sqrt(3) / 2``, times ``spacing``). Every
    other unit the package uses is a multiple of this one: micrometres with
    ``spacing=SPACING_UM[lattice]``, hex column units with ``spacing=2``.
    """
    if lattice not in UNIT_XY:
        raise InputError(None, "lattice", f"{lattice!r}: must be one of {LATTICES}")
    ux, uy = UNIT_XY[lattice]
    x = np.asarray(array_col, dtype=np.float64) * ux
    y = np.asarray(array_row, dtype=np.float64) * uy
    if spacing != 1.0:
        x = x * spacing
        y = y * spacing
    return x, y


def spot_polygons(x, y, lattice: str, spacing: float = 1.0) -> np.ndarray:
    """Vertices ``(n, k, 2)`` of tiles centred at physical ``(x, y)``.

    Squares (axis-aligned, side ``spacing``) on the square lattice,
    pointy-topped hexagons of inradius ``spacing / 2`` on hex, so that spots
    ``spacing`` apart tile the plane (``spacing / 2`` for an enhanced lattice).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if lattice == "hex":
        R = spacing / math.sqrt(3.0)
        ang = np.deg2rad(90.0 + 60.0 * np.arange(6))
        off = np.column_stack([R * np.cos(ang), R * np.sin(ang)])
    else:
        h = spacing / 2.0
        off = np.array([[-h, -h], [h, -h], [h, h], [-h, h]])
    return np.stack([x, y], axis=1)[:, None, :] + off[None]
