"""Lost spots: lattice positions inside the tissue that hold no measurement (docs/method.md section 3).

The paper enhances "unmeasured areas or unexpectedly lost areas": besides the
gaps between spots, spots inside the tissue that failed or were removed. A
lost position is a lattice point of the measured grid (on hex: ``array_row +
array_col`` even) without a spot. Where they come from (:func:`resolve`):

``"auto"`` (:func:`detect`)
    The one rule: an unmeasured lattice position is lost when

    1. at least :data:`MIN_NEIGHBOURS` of its lattice neighbours
       (:data:`stentrans.lattice.NEIGHBOUR_OFFSETS`) are measured: 3 of 4 on
       square, 4 of 6 on hex (neighbours beyond the grid count as
       unmeasured), and
    2. it lies inside the closed outline of the measured spots: no path of
       unmeasured lattice positions, in neighbour steps, leads from it to
       beyond the measured spots' grid (:func:`outside`).

    One pass over the measured mask (not repeated on the completed one, so
    a bay is not filled step by step). Positions on the outer edge of the
    tissue, one-spot notches in the outline included, are never lost; a
    notch in the edge of an enclosed tissue-free area (a lumen) can be.
``"tissue"`` (:func:`tissue_positions`)
    Space Ranger positions flagged ``in_tissue`` that have no spot in the
    data: the reader records every in-tissue position of the positions file
    (``uns["stentrans"]["in_tissue_positions"]``, beside their number without
    counts, ``n_positions_without_counts``), so nothing is read again here;
    spots removed by QC (or any subset) count too.
a list (:func:`parse_positions`)
    Given by the user: ST spot ids ``XxY`` (``array_col = X``, ``array_row =
    Y``, as the readers map them), ``"row,col"`` strings or ``(row, col)``
    pairs of array coordinates; :func:`read_positions_file` reads one per
    line. Each must be a lattice point of the measured grid without a spot.
``"none"``
    No lost positions.

Enhancement (:func:`stentrans.tl.enhance`) adds the lost positions to the
mask whose ``H(M)`` it predicts, so they and their midpoints to neighbouring
spots are enhanced; the methods still predict from the measured spots only.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ._errors import InputError
from .lattice import NEIGHBOUR_OFFSETS, Grid

#: measured lattice neighbours that make an unmeasured lattice position lost (:func:`detect`)
MIN_NEIGHBOURS = {"square": 3, "hex": 4}
#: the modes of :func:`resolve` besides an explicit list of positions
MODES = ("none", "auto", "tissue")

_ST_ID = re.compile(r"^\s*([+-]?\d+)\s*[xX]\s*([+-]?\d+)\s*$")
_ROW_COL = re.compile(r"^\s*([+-]?\d+)\s*[,;\t ]\s*([+-]?\d+)\s*$")


def neighbour_counts(mask: np.ndarray, lattice: str) -> np.ndarray:
    """Measured lattice neighbours of every pixel of ``mask`` (pixels beyond the grid count as unmeasured)."""
    mask = np.asarray(mask, dtype=bool)
    u, v = mask.shape
    pad = 2
    big = np.zeros((u + 2 * pad, v + 2 * pad), dtype=np.int16)
    big[pad : pad + u, pad : pad + v] = mask
    n = np.zeros((u, v), dtype=np.int16)
    for dr, dc in NEIGHBOUR_OFFSETS[lattice]:
        n += big[pad + dr : pad + dr + u, pad + dc : pad + dc + v]
    return n


def lattice_points(shape, lattice: str) -> np.ndarray:
    """Pixels of a grid that are lattice points (all on square; ``p + q`` even on hex)."""
    if lattice == "square":
        return np.ones(shape, dtype=bool)
    p, q = np.indices(shape)
    return (p + q) % 2 == 0


def outside(mask: np.ndarray, lattice: str) -> np.ndarray:
    """Unmeasured lattice positions of the grid joined to beyond the grid by unmeasured lattice positions (neighbour steps)."""
    from scipy import ndimage

    mask = np.asarray(mask, dtype=bool)
    u, v = mask.shape
    pad = 2  # even: the hex checkerboard keeps its parity
    free = lattice_points((u + 2 * pad, v + 2 * pad), lattice)
    free[pad : pad + u, pad : pad + v] &= ~mask
    seed = free.copy()
    seed[pad : pad + u, pad : pad + v] = False
    offsets = NEIGHBOUR_OFFSETS[lattice]
    structure = np.zeros((3, 5), dtype=bool)
    structure[1, 2] = True
    for dr, dc in offsets:
        structure[1 + dr, 2 + dc] = True
    out = ndimage.binary_propagation(seed, structure=structure, mask=free)
    return out[pad : pad + u, pad : pad + v]


def detect(mask: np.ndarray, lattice: str, min_neighbours: int | None = None) -> np.ndarray:
    """Lost positions of a measured mask (the ``"auto"`` rule of the module documentation).

    Parameters
    ----------
    mask
        ``(u, v)`` bool, the measured spots on their grid.
    lattice
        ``"square"`` or ``"hex"``.
    min_neighbours
        Measured neighbours needed (default :data:`MIN_NEIGHBOURS` of the lattice).

    Returns
    -------
    ``(u, v)`` bool: unmeasured lattice points with at least ``min_neighbours``
    measured lattice neighbours that are not :func:`outside` the outline.
    """
    if lattice not in MIN_NEIGHBOURS:
        raise InputError(None, "lattice", f"{lattice!r}: must be one of {', '.join(MIN_NEIGHBOURS)}")
    mask = np.asarray(mask, dtype=bool)
    k = MIN_NEIGHBOURS[lattice] if min_neighbours is None else int(min_neighbours)
    return lattice_points(mask.shape, lattice) & ~mask & (neighbour_counts(mask, lattice) >= k) & ~outside(mask, lattice)


# ---------------------------------------------------------------------------
# positions given by the user
# ---------------------------------------------------------------------------
def parse_position(value, source=None) -> tuple[int, int]:
    """``(array_row, array_col)`` of one ST id ``XxY``, ``"row,col"`` string or ``(row, col)`` pair."""
    if isinstance(value, str):
        m = _ST_ID.match(value)
        if m:
            return int(m.group(2)), int(m.group(1))  # XxY: array_col = X, array_row = Y
        m = _ROW_COL.match(value)
        if m:
            return int(m.group(1)), int(m.group(2))
        raise InputError(source, None, f"{value!r}: not a lost position (an ST spot id XxY such as 5x10, array coordinates row,col, or one of {', '.join(MODES)})")
    try:
        r, c = value
        rf, cf = float(r), float(c)
    except (TypeError, ValueError):
        raise InputError(source, None, f"{value!r}: not a lost position (an ST spot id XxY, or a pair (array_row, array_col))") from None
    if not (rf.is_integer() and cf.is_integer()):
        raise InputError(source, None, f"{value!r}: lattice coordinates must be integers")
    return int(rf), int(cf)


def parse_positions(values, source=None) -> list[tuple[int, int]]:
    """Positions from a comma list of ST ids (``"5x10,10x14"``) or a list of ids / pairs; duplicates dropped."""
    if isinstance(values, str):
        values = [v for v in values.split(",") if v.strip()]
    elif not hasattr(values, "__iter__"):
        raise InputError(source, None, f"{values!r}: not a list of lost positions")
    out = [parse_position(v, source) for v in values]
    return list(dict.fromkeys(out))


def read_positions_file(path) -> list[tuple[int, int]]:
    """Positions of a text file: one ``row,col`` (or ``row col``) or ST id ``XxY`` per line; ``#`` comments and blank lines skipped."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise InputError(path, None, "file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(path, None, f"cannot be read ({type(err).__name__})") from None
    out = []
    for i, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            out.append(parse_position(text))
        except InputError as err:
            raise InputError(path, f"line {i}", err.problem) from None
    return list(dict.fromkeys(out))


# ---------------------------------------------------------------------------
# Space Ranger's in-tissue positions
# ---------------------------------------------------------------------------
def tissue_positions(adata) -> list[tuple[int, int]]:
    """In-tissue positions of the Space Ranger positions file that have no spot in ``adata``.

    From ``uns["stentrans"]["in_tissue_positions"]``, which :func:`stentrans.read`
    records for inputs with a positions file; no file is read. Data without
    them have none (an :class:`~stentrans.InputError`).
    """
    st = adata.uns.get("stentrans", {})
    recorded = st.get("in_tissue_positions")
    if recorded is None:
        raise InputError(st.get("source"), "in_tissue_positions", "fill_lost='tissue' needs the in-tissue positions of a Space Ranger positions file, which stentrans.read records (these data were not read from one, or by an older version: read them again)")
    pos = np.asarray(recorded, dtype=np.int64).reshape(-1, 2)
    spots = set(zip(np.rint(adata.obs["array_row"].to_numpy(float)).astype(np.int64).tolist(), np.rint(adata.obs["array_col"].to_numpy(float)).astype(np.int64).tolist()))
    return [rc for rc in dict.fromkeys(map(tuple, pos.tolist())) if rc not in spots]


# ---------------------------------------------------------------------------
# from a mode or list to a mask on the measured grid
# ---------------------------------------------------------------------------
def _name(rc) -> str:
    return f"({rc[0]}, {rc[1]})"


def to_mask(positions, grid: Grid, mask: np.ndarray, source=None, strict: bool = True) -> np.ndarray:
    """``(u, v)`` bool mask of ``positions`` (``(array_row, array_col)`` pairs) on ``grid``.

    ``strict``: a position off the grid, off the lattice or at a measured
    spot is an :class:`~stentrans.InputError` naming it; otherwise such
    positions are skipped.
    """
    out = np.zeros(grid.shape, dtype=bool)
    lat = lattice_points(grid.shape, grid.lattice)
    for rc in positions:
        p = (rc[0] - grid.row0) / grid.step
        q = (rc[1] - grid.col0) / grid.step
        problem = None
        if not (float(p).is_integer() and float(q).is_integer()) or not (0 <= p < grid.shape[0] and 0 <= q < grid.shape[1]):
            lo = grid.coords(0, 0)
            hi = grid.coords(grid.shape[0] - 1, grid.shape[1] - 1)
            problem = f"outside the measured spots' extent (array_row {lo[0]:g}..{hi[0]:g}, array_col {lo[1]:g}..{hi[1]:g})"
        elif not lat[int(p), int(q)]:
            problem = "not a hex lattice point (array_row + array_col must be even)"
        elif mask[int(p), int(q)]:
            problem = "a measured spot, not a lost one"
        if problem is None:
            out[int(p), int(q)] = True
        elif strict:
            raise InputError(source, None, f"lost position {_name(rc)}: {problem}")
    return out


def resolve(fill_lost, grid: Grid, mask: np.ndarray, adata=None, source=None) -> tuple[str, np.ndarray]:
    """``(mode, lost mask)`` of a ``fill_lost`` setting on the measured ``grid`` / ``mask``.

    ``fill_lost``: ``"none"`` (or None / False), ``"auto"`` (or True), ``"tissue"``
    (needs ``adata``), or positions for :func:`parse_positions` (mode
    ``"given"``; errors name the bad value, with ``source`` as where it came from).
    """
    if fill_lost is None or fill_lost is False or (isinstance(fill_lost, str) and fill_lost.strip().lower() == "none"):
        return "none", np.zeros(grid.shape, dtype=bool)
    if fill_lost is True or (isinstance(fill_lost, str) and fill_lost.strip().lower() == "auto"):
        return "auto", detect(mask, grid.lattice)
    if isinstance(fill_lost, str) and fill_lost.strip().lower() == "tissue":
        if adata is None:
            raise InputError(source, "fill_lost", "'tissue' needs the measured AnnData")
        return "tissue", to_mask(tissue_positions(adata), grid, mask, strict=False)
    if isinstance(fill_lost, np.ndarray) and fill_lost.dtype == bool:
        if fill_lost.shape != grid.shape:
            raise InputError(source, "fill_lost", f"mask of shape {fill_lost.shape}, expected the grid's {grid.shape}")
        bad = fill_lost & (mask | ~lattice_points(grid.shape, grid.lattice))
        if bad.any():
            raise InputError(source, "fill_lost", f"{int(bad.sum())} position(s) of the mask are measured spots or off the lattice")
        return "given", fill_lost.copy()
    positions = parse_positions(fill_lost, source)
    return "given", to_mask(positions, grid, mask, source=source)


def positions_of(lost: np.ndarray, grid: Grid) -> np.ndarray:
    """``(n, 2)`` int64 ``[array_row, array_col]`` of a lost mask, in row-major order."""
    p, q = np.nonzero(lost)
    r, c = grid.coords(p, q)
    return np.column_stack([np.rint(r), np.rint(c)]).astype(np.int64).reshape(-1, 2)


def st_ids(positions) -> list[str]:
    """ST spot ids ``XxY`` (``X = array_col``, ``Y = array_row``) of ``(row, col)`` positions."""
    return [f"{int(c)}x{int(r)}" for r, c in np.asarray(positions).reshape(-1, 2)]
