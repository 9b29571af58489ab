"""Binning finer data into pseudo-spots, the one route from :class:`~.points.Points` to spots.

Two layouts, both from the points :func:`stentrans.io.read_finer` returns
(molecules, DNBs, beads, cell centroids): :func:`pseudospots`, disks on a
Visium-like or ST-like lattice with the tissue mask and the truth at the
enhanced positions (``stentrans bin --spacing``, the workflow's `finer`
samples); :func:`square_bins`, squares covering the plane (``stentrans bin
--bin-size``, the workflow's `cells` samples, the paper's MP and AMHB). Also
the noise ceiling of a truth's counts.

Geometry (docs/method.md section 6)
------------------------------
Spot centres lie on a lattice of spacing ``A`` (centre-to-centre distance of
neighbouring spots) in the input's coordinate units:
``(x, y) = origin + stentrans.lattice.physical(array_row, array_col, lattice,
spacing=A)``, i.e. square ``x = col * A``, ``y = row * A``; hex (all
``array_row + array_col`` even) ``x = col * A / 2``, ``y = row * A * sqrt(3) /
2``. The origin defaults to the smallest ``x`` and ``y`` of the points, so
``array_row, array_col >= 0``. A spot is a disk of diameter ``D`` (default
``0.55 A`` hex, Visium's 55 of 100 um; ``0.5 A`` square, ST's 100 of 200 um:
:data:`DIAMETER_FRACTION`); its counts are the sum of the counts of the
points (molecules, DNBs, beads, cell centroids) at distance ``<= D / 2`` from
its centre (a closed disk).

Tissue mask
-----------
From the density of counts: a 2-D histogram of the points weighted by their
counts at pitch ``mask_pitch * A`` (default ``A / 4``), Gaussian smoothing
with ``sigma = mask_sigma * A`` (``A / 2``), threshold at ``mask_fraction``
(0.1) of the ``mask_quantile`` (0.95) quantile of the smoothed density over
the pixels it reaches, binary closing with a disk of radius ``mask_closing *
A`` (``A / 2``) and hole filling (:mod:`scipy.ndimage`). A lattice point is a
measured spot when its centre lies in the mask and its disk holds at least
``min_counts`` (1) counts; the others are off the tissue, as on a real slide.

Extent
------
Points spread over more than a lattice grid may hold
(:func:`stentrans.lattice.check_point_extent`: 32,768 lattice steps per
side, 2**26 in all) or a mask raster of more than :data:`MAX_MASK_PIXELS`
pixels are refused before anything is allocated: one stray coordinate
(``x = 1e12``) is an :class:`~stentrans.InputError` naming the file, the
column and the value.

Truth
-----
The same disks at every position of the enhanced lattice ``H(M)`` of the
measured spots (:func:`stentrans.lattice.enhanced_mask` on the grid
:func:`stentrans.lattice.fit_grid` gives them, which is the grid
:func:`stentrans.read` stores), with the half-step ``array_row``/``array_col``
``row0 + P * step / 2`` that ``stentrans enhance`` writes, kept where the
centre lies in the tissue mask (measured positions always are).
``obs["is_measured"]`` marks the measured spots, ``obs["is_imputed"]`` the new
positions; new positions are named ``new_r{row:g}_c{col:g}`` as in the
enhanced output, measured ones keep the spot ids ``r{row}_c{col}``.

Noise ceiling
-------------
:func:`binomial_split` thins every count into two independent halves;
:func:`noise_ceiling` correlates the halves per gene (:func:`stentrans.metrics.pcc`)
and corrects with Spearman-Brown, ``sqrt(2 r / (1 + r))``: the PCC a perfect
predictor of the underlying signal reaches against the counts.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._errors import InputError
from .._utils import sha256_file
from ..lattice import LATTICES, SPACING_UM, SPOT_DIAMETER_UM, check_extent, check_point_extent, enhanced_mask, fit_grid, mask_from_pixels, measured_index, physical
from ..metrics import pcc
from .points import Points

log = logging.getLogger("stentrans.binning")

__all__ = ["PseudoSpotConfig", "DIAMETER_FRACTION", "MAX_MASK_PIXELS", "TissueMask", "tissue_mask", "disk_counts", "pseudospots", "square_bins", "write_pseudospots", "binomial_split", "noise_ceiling"]

#: default spot diameter as a fraction of the spacing (Visium 55/100, ST 100/200)
DIAMETER_FRACTION = {lat: SPOT_DIAMETER_UM[lat] / SPACING_UM[lat] for lat in LATTICES}
#: largest tissue-mask raster (pixels): 1 GiB per float64 raster; at the default pitch
#: (a quarter spacing) about 2,900 x 2,900 lattice points, a whole Xenium slide at 10 um
MAX_MASK_PIXELS = 2**27


@dataclass
class PseudoSpotConfig:
    """Spot size and tissue-mask settings of :func:`pseudospots` (defaults written once here)."""

    spot_diameter: float | None = field(default=None, metadata={"help": "disk diameter D in input units; None: 0.55 x spacing on hex, 0.5 x spacing on square"})
    min_counts: int = field(default=1, metadata={"help": "a lattice point in tissue is a spot when its disk holds this many counts"})
    mask_pitch: float = field(default=0.25, metadata={"help": "tissue mask: histogram pitch, in spacings"})
    mask_sigma: float = field(default=0.5, metadata={"help": "tissue mask: Gaussian smoothing sigma, in spacings"})
    mask_quantile: float = field(default=0.95, metadata={"help": "tissue mask: quantile of the smoothed density the threshold refers to"})
    mask_fraction: float = field(default=0.1, metadata={"help": "tissue mask: threshold as a fraction of that quantile"})
    mask_closing: float = field(default=0.5, metadata={"help": "tissue mask: radius of the binary closing, in spacings"})
    um_per_unit: float | None = field(default=None, metadata={"help": "micrometres per input coordinate unit, for the record; None: the format's when it states one"})


@dataclass
class TissueMask:
    """A boolean raster over the input's plane: pixel ``(i, j)`` covers ``x0 + j * pitch <= x < x0 + (j + 1) * pitch`` (likewise ``y``/``i``)."""

    mask: np.ndarray
    x0: float
    y0: float
    pitch: float
    threshold: float

    def contains(self, x, y) -> np.ndarray:
        """Whether points ``(x, y)`` lie in the mask (False outside the raster)."""
        j = np.floor((np.asarray(x, float) - self.x0) / self.pitch).astype(np.int64)
        i = np.floor((np.asarray(y, float) - self.y0) / self.pitch).astype(np.int64)
        ok = (i >= 0) & (j >= 0) & (i < self.mask.shape[0]) & (j < self.mask.shape[1])
        out = np.zeros(i.shape, dtype=bool)
        out[ok] = self.mask[i[ok], j[ok]]
        return out

    @property
    def area(self) -> float:
        """Area of the mask, input units squared."""
        return float(self.mask.sum()) * self.pitch**2


def _disk(radius_px: float) -> np.ndarray:
    r = int(np.floor(radius_px))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return xx * xx + yy * yy <= radius_px * radius_px


def tissue_mask(xy: np.ndarray, weights: np.ndarray, spacing: float, config: PseudoSpotConfig | None = None) -> TissueMask:
    """The tissue mask of points ``xy`` weighted by ``weights`` (rules in the module docstring)."""
    from scipy import ndimage

    cfg = config or PseudoSpotConfig()
    pitch, sigma_px, close_px, pad = _mask_geometry(spacing, cfg)
    lo = xy.min(axis=0) - pad * pitch
    size = np.floor((xy.max(axis=0) + pad * pitch - lo) / pitch) + 1
    if not np.isfinite(size).all() or float(size[0]) * float(size[1]) > MAX_MASK_PIXELS:
        raise InputError(None, "points", f"a tissue-mask raster of {size[0]:.0f} x {size[1]:.0f} pixels of side {pitch:g} (more than {MAX_MASK_PIXELS}): the points spread too far for spacing {spacing:g}")
    n = size.astype(np.int64)
    j = np.floor((xy[:, 0] - lo[0]) / pitch).astype(np.int64)
    i = np.floor((xy[:, 1] - lo[1]) / pitch).astype(np.int64)
    hist = np.bincount(i * int(n[0]) + j, weights=np.asarray(weights, dtype=np.float64), minlength=int(n[0] * n[1])).reshape(int(n[1]), int(n[0]))
    dens = ndimage.gaussian_filter(hist, sigma_px, mode="constant")
    reached = dens[dens > 0]
    thr = cfg.mask_fraction * float(np.quantile(reached, cfg.mask_quantile)) if reached.size else np.inf
    m = dens >= thr
    if close_px >= 1:
        m = ndimage.binary_closing(m, structure=_disk(close_px))
    m = ndimage.binary_fill_holes(m)
    return TissueMask(m, float(lo[0]), float(lo[1]), float(pitch), thr)


def disk_counts(xy: np.ndarray, counts: sp.csr_matrix, centres: np.ndarray, radius: float) -> tuple[sp.csr_matrix, np.ndarray]:
    """Summed counts of the points within ``radius`` (inclusive) of each centre, and how many points that is."""
    from scipy.spatial import cKDTree

    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    if len(centres) == 0:
        return sp.csr_matrix((0, counts.shape[1]), dtype=np.float32), np.zeros(0, dtype=np.int64)
    hits = cKDTree(xy).query_ball_point(centres, r=radius, return_sorted=True)
    n_in = np.fromiter((len(h) for h in hits), dtype=np.int64, count=len(hits))
    indptr = np.concatenate([[0], np.cumsum(n_in)])
    indices = np.concatenate([np.asarray(h, dtype=np.int64) for h in hits]) if indptr[-1] else np.zeros(0, np.int64)
    A = sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(len(centres), len(xy)))
    out = (A @ counts).tocsr().astype(np.float32)
    out.sum_duplicates()
    out.sort_indices()
    return out, n_in


def _mask_geometry(spacing: float, cfg: PseudoSpotConfig) -> tuple[float, float, float, int]:
    """``(pitch, sigma_px, close_px, pad)`` of the tissue-mask raster."""
    for name in ("mask_pitch", "mask_sigma", "mask_closing"):
        v = float(getattr(cfg, name))
        if not np.isfinite(v) or v < 0 or (name == "mask_pitch" and v == 0):
            raise InputError(None, "--" + name.replace("_", "-"), f"{v:g} must be a {'positive' if name == 'mask_pitch' else 'non-negative'} number")
    pitch = cfg.mask_pitch * spacing
    sigma_px = cfg.mask_sigma / cfg.mask_pitch
    close_px = cfg.mask_closing / cfg.mask_pitch
    pad = int(np.ceil(4 * sigma_px + close_px)) + 2
    return pitch, sigma_px, close_px, pad


def _check_extent(points: Points, lattice: str, spacing: float, cfg: PseudoSpotConfig) -> None:
    """The points' extent fits a lattice grid (:func:`stentrans.lattice.check_point_extent`) and a tissue-mask raster of at most :data:`MAX_MASK_PIXELS`."""
    cols = (str(points.columns.get("x", "x")), str(points.columns.get("y", "y")))
    ux, uy = physical(1.0, 1.0, lattice, spacing=spacing)
    check_point_extent(points.xy, (float(ux), float(uy)), points.source, cols, labels=points.labels, grid=f"{lattice} lattice steps at spacing {spacing:g}", hint="; a stray coordinate, or a --spacing too small for the data's extent")
    try:
        pitch, _, _, pad = _mask_geometry(spacing, cfg)
    except InputError as err:
        raise InputError(points.source, err.field, err.problem) from None
    check_point_extent(points.xy, (pitch, pitch), points.source, cols, labels=points.labels, pad=pad, max_side=np.inf, max_pixels=MAX_MASK_PIXELS, grid=f"tissue-mask pixels of side {pitch:g}", hint="; a stray coordinate, or a --spacing (--mask-pitch) too small for the data's extent")


def _lattice_points(lattice: str, spacing: float, origin, xy: np.ndarray, source=None):
    """Every lattice point whose centre lies in the points' bounding box (rows, cols >= 0)."""
    ux, uy = physical(1.0, 1.0, lattice, spacing=spacing)
    hi = xy.max(axis=0) - np.asarray(origin)
    n_col = int(np.floor(hi[0] / float(ux))) + 1
    n_row = int(np.floor(hi[1] / float(uy))) + 1
    if n_col * n_row > 50_000_000:
        raise InputError(source, "--spacing", f"{spacing:g} gives {n_col} x {n_row} lattice points: too fine for the data's extent")
    rows, cols = np.divmod(np.arange(n_row * n_col, dtype=np.int64), n_col)
    if lattice == "hex":
        keep = (rows + cols) % 2 == 0
        rows, cols = rows[keep], cols[keep]
    return rows, cols


def _centres(rows, cols, lattice, spacing, origin) -> np.ndarray:
    x, y = physical(rows, cols, lattice, spacing=spacing)
    return np.column_stack([x + origin[0], y + origin[1]])


def _record(points: Points, lattice: str, spacing: float, diameter: float, origin, cfg: PseudoSpotConfig, tm: TissueMask, role: str) -> dict:
    um = cfg.um_per_unit if cfg.um_per_unit is not None else points.um_per_unit
    rec = {
        "role": role,
        "lattice": lattice,
        "spacing": float(spacing),
        "spot_diameter": float(diameter),
        "units": points.unit or "input coordinate units (not stated by the format)",
        "origin": [float(origin[0]), float(origin[1])],
        "input": str(points.source),
        "input_format": points.kind,
        "columns": {k: str(v) for k, v in points.columns.items()},
        "n_points": int(points.n),
        "n_counts": float(points.counts.sum()),
        "tissue_mask": {**{k: float(v) for k, v in asdict(cfg).items() if k.startswith("mask_")}, "threshold": float(tm.threshold), "area": tm.area, "min_counts": int(cfg.min_counts)},
        "disk": "closed: points at distance <= spot_diameter / 2 from the centre",
    }
    if um is not None:
        rec["um_per_unit"] = float(um)
        rec["spacing_um"] = float(spacing) * float(um)
        rec["spot_diameter_um"] = float(diameter) * float(um)
    try:
        rec["input_sha256"] = sha256_file(points.source)
    except OSError:
        pass
    return rec


def _anndata(X, obs: pd.DataFrame, centres, genes, stentrans_uns: dict, binning: dict) -> ad.AnnData:
    out = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=pd.Index(list(genes))))
    if not out.var_names.is_unique:
        out.var_names_make_unique()
    out.obsm["spatial"] = np.asarray(centres, dtype=np.float64)
    out.uns["stentrans"] = stentrans_uns
    out.uns["binning"] = binning
    return out


def pseudospots(points: Points, lattice: str, spacing: float, *, config: PseudoSpotConfig | None = None, origin=None, truth: bool = False):
    """Bin points into pseudo-spots (and, with ``truth``, the truth at the enhanced positions).

    Parameters
    ----------
    points
        :class:`~stentrans.io.points.Points` (:func:`stentrans.io.read_finer`).
    lattice
        ``"hex"`` (Visium-like) or ``"square"`` (ST-like).
    spacing
        Centre-to-centre distance ``A`` of neighbouring spots, input units.
    config
        Spot diameter, tissue mask and the record's ``um_per_unit``.
    origin
        ``(x, y)`` of lattice point ``(0, 0)`` (default: the points' smallest x and y).
    truth
        Also return the truth (module docstring).

    Returns
    -------
    ``(spots, truth_or_None)``. ``spots``: an input like any other
    (``obs["array_row"]``, ``obs["array_col"]`` int64, ``obs["in_tissue"]`` 1,
    ``obs["n_points"]``, ``obs["total_counts"]``, ``obsm["spatial"]`` centres
    in input units, ``X`` raw counts float32 CSR, ``uns["stentrans"]`` with
    ``lattice``, ``source``, ``format="pseudospots"``, ``grid``,
    ``spatial_units``, and ``uns["binning"]``). ``truth``: the same plus
    float half-step ``array_row``/``array_col``, ``obs["is_measured"]``,
    ``obs["is_imputed"]``, the enhanced grid, ``var`` as ``spots``.
    """
    cfg = config or PseudoSpotConfig()
    src = points.source
    if lattice not in LATTICES:
        raise InputError(src, "--lattice", f"{lattice!r} is not one of {', '.join(LATTICES)}")
    spacing = float(spacing)
    if not np.isfinite(spacing) or spacing <= 0:
        raise InputError(src, "--spacing", f"{spacing:g} must be a positive number")
    diameter = float(cfg.spot_diameter) if cfg.spot_diameter is not None else DIAMETER_FRACTION[lattice] * spacing
    if not np.isfinite(diameter) or diameter <= 0:
        raise InputError(src, "--spot-diameter", f"{diameter:g} must be a positive number")
    if points.n == 0:
        raise InputError(src, "points", "no molecules, beads or cells to bin")
    xy = points.xy
    _check_extent(points, lattice, spacing, cfg)
    origin = (float(xy[:, 0].min()), float(xy[:, 1].min())) if origin is None else (float(origin[0]), float(origin[1]))
    tm = tissue_mask(xy, points.totals, spacing, cfg)
    rows, cols = _lattice_points(lattice, spacing, origin, xy, source=src)
    centres = _centres(rows, cols, lattice, spacing, origin)
    inside = tm.contains(centres[:, 0], centres[:, 1])
    rows, cols, centres = rows[inside], cols[inside], centres[inside]
    X, n_in = disk_counts(xy, points.counts, centres, diameter / 2)
    total = np.asarray(X.sum(axis=1)).ravel()
    keep = total >= cfg.min_counts
    if not keep.any():
        raise InputError(src, "--spacing", f"no lattice point in tissue holds {cfg.min_counts} or more counts at spacing {spacing:g}, diameter {diameter:g}")
    rows, cols, centres, n_in, total = rows[keep], cols[keep], centres[keep], n_in[keep], total[keep]
    X = X[np.flatnonzero(keep)]
    grid = fit_grid(rows, cols, lattice, source=src)
    names = pd.Index([f"r{r}_c{c}" for r, c in zip(rows, cols)])
    obs = pd.DataFrame({"array_row": rows, "array_col": cols, "in_tissue": np.ones(len(rows), dtype=np.int64), "n_points": n_in, "total_counts": total.astype(np.float64)}, index=names)
    units = f"input coordinate units ({points.unit or 'as in the file'}): spot centres"
    rec = _record(points, lattice, spacing, diameter, origin, cfg, tm, "spots")
    rec["n_spots"] = int(len(rows))
    rec["n_counts_binned"] = float(total.sum())
    st = {"lattice": lattice, "source": str(src), "format": "pseudospots", "grid": grid.to_dict(), "spatial_units": units}
    if "input_sha256" in rec:
        st["input_sha256"] = rec["input_sha256"]
    spots = _anndata(X, obs, centres, points.genes, st, rec)
    log.info("%s: %d %s lattice spots of diameter %g at spacing %g (%d points, median %g counts per spot)", src, len(rows), lattice, diameter, spacing, points.n, float(np.median(total)))
    if not truth:
        return spots, None
    return spots, _truth(points, spots, grid, tm, lattice, spacing, diameter, origin, cfg)


def square_bins(points: Points, bin_size: float, *, origin: tuple[float, float] | None = None, min_cells: int = 1) -> ad.AnnData:
    """Sum points (cells, molecules) into square pseudo-spots covering the plane (the paper's MP and AMHB).

    Square ``(i, j)`` covers ``origin_x + i * bin_size <= x < origin_x + (i +
    1) * bin_size`` (likewise ``y``/``j``) and becomes the spot with
    ``array_col = i`` and ``array_row = j`` (the ST convention of
    :mod:`stentrans.io.st`: spot id ``"{i}x{j}"``). Squares holding fewer
    than ``min_cells`` points are not tissue and are left out. The result
    reads back with :func:`stentrans.read` as a square lattice.

    Parameters
    ----------
    points
        :class:`~.points.Points` (:func:`stentrans.io.read_finer`, or
        :func:`stentrans.io.bin_cells` from tables in memory).
    bin_size
        Side of a pseudo-spot, in the coordinates' units.
    origin
        Lower-left corner of square ``(0, 0)`` (default: the smallest ``x``
        and ``y``).
    min_cells
        Squares with fewer points are dropped.

    Returns
    -------
    AnnData with one observation per pseudo-spot: ``X`` summed counts
    (float32 CSR), ``obs["array_row"]``, ``obs["array_col"]`` (integers),
    ``obs["in_tissue"]``, ``obs["n_cells"]``, ``obs["total_counts"]``,
    ``obsm["spatial"]`` (square centres, input units) and
    ``uns["stentrans"]`` with ``lattice="square"``, ``format="binned"`` and the
    binning settings.
    """
    source = points.source
    bin_size = float(bin_size)
    if not np.isfinite(bin_size) or bin_size <= 0:
        raise InputError(source, "bin_size", f"{bin_size:g} must be a positive number")
    xs, ys = points.xy[:, 0], points.xy[:, 1]
    n = len(xs)
    if n == 0:
        raise InputError(source, "coordinates", "no points to bin")
    x, y = points.columns.get("x", "x"), points.columns.get("y", "y")
    unit = "molecules" if points.kind in ("molecules", "gem") else points.kind
    X, genes = points.counts, points.genes
    check_point_extent(points.xy, (bin_size, bin_size), source, (x, y), labels=points.labels, grid=f"squares of side {bin_size:g}", hint="; a stray coordinate, or a --bin-size too small for the data's extent")
    x0, y0 = (float(np.min(xs)), float(np.min(ys))) if origin is None else (float(origin[0]), float(origin[1]))
    fi = np.floor((xs - x0) / bin_size)
    fj = np.floor((ys - y0) / bin_size)
    check_extent(fj, fi, source, fields=(f"{y} (squares of side {bin_size:g})", f"{x} (squares of side {bin_size:g})"))
    i = fi.astype(np.int64)
    j = fj.astype(np.int64)
    keep_rows = (i >= 0) & (j >= 0)
    if not keep_rows.all():
        log.warning("%s: %d %s lie below/left of the origin and are left out", source or "binning", int((~keep_rows).sum()), unit)
    i, j = i[keep_rows], j[keep_rows]
    X = X[np.flatnonzero(keep_rows)]
    width = int(i.max()) + 1 if i.size else 1
    key = j * width + i
    spots, inverse = np.unique(key, return_inverse=True)
    A = sp.csr_matrix((np.ones(len(key), dtype=np.float32), (inverse, np.arange(len(key)))), shape=(len(spots), len(key)))
    B = (A @ X).tocsr().astype(np.float32)
    n_in = np.asarray(A.sum(axis=1)).ravel().astype(np.int64)
    ok = n_in >= int(min_cells)
    if not ok.any():
        raise InputError(source, "min_cells", f"no square of side {bin_size:g} holds {min_cells} or more {unit}")
    spots, B, n_in = spots[ok], B[np.flatnonzero(ok)], n_in[ok]
    col = spots % width
    row = spots // width
    B.sum_duplicates()
    B.sort_indices()
    names = pd.Index([f"{c}x{r}" for c, r in zip(col, row)])
    obs = pd.DataFrame(
        {
            "array_row": row.astype(np.int64),
            "array_col": col.astype(np.int64),
            "in_tissue": np.ones(len(spots), dtype=np.int64),
            "n_cells": n_in,
            "total_counts": np.asarray(B.sum(axis=1)).ravel().astype(np.float64),
        },
        index=names,
    )
    out = ad.AnnData(X=B, obs=obs, var=pd.DataFrame(index=pd.Index(list(map(str, genes)))))
    if not out.var_names.is_unique:
        out.var_names_make_unique()
    out.obsm["spatial"] = np.column_stack([x0 + (col + 0.5) * bin_size, y0 + (row + 0.5) * bin_size]).astype(np.float64)
    out.uns["stentrans"] = {
        "lattice": "square",
        "format": "binned",
        "source": str(source) if source is not None else "<memory>",
        "spatial_units": "input coordinate units (centres of the squares)",
        "binning": {
            "bin_size": bin_size,
            "origin_x": x0,
            "origin_y": y0,
            "unit": unit,
            "n_in": int(n),
            "n_binned": int(n_in.sum()),
            "n_spots": int(len(spots)),
            "min_cells": int(min_cells),
        },
    }
    log.info("binned %d %s into %d square pseudo-spots of side %g (%d x %d genes)", int(n_in.sum()), unit, len(spots), bin_size, out.n_obs, out.n_vars)
    return out


def write_pseudospots(source, output, lattice: str, spacing: float, *, truth_output=None, config: PseudoSpotConfig | None = None, origin=None, reader: str = "auto", **columns):
    """Read finer data, bin it (:func:`pseudospots`) and write the spots (and the truth) as ``.h5ad``.

    ``source`` is read by :func:`stentrans.io.read_finer` (``reader``:
    its ``format``; ``columns``: its ``x``, ``y``, ``gene``, ``count``,
    ``drop``, ``query``). Both files are written to temporary names and
    renamed only when both are complete, so bad input leaves nothing behind.
    Returns ``(spots, truth)`` (``truth`` None without ``truth_output``).
    """
    import contextlib

    from .._utils import atomic_path
    from .formats import read_finer

    points = read_finer(source, reader, **columns)
    spots, truth = pseudospots(points, lattice, spacing, config=config, origin=origin, truth=truth_output is not None)
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(atomic_path(output, suffix=".h5ad"))
        ttmp = stack.enter_context(atomic_path(truth_output, suffix=".h5ad")) if truth is not None else None
        spots.write_h5ad(tmp)
        if truth is not None:
            truth.write_h5ad(ttmp)
    return spots, truth


def _truth(points, spots, grid, tm, lattice, spacing, diameter, origin, cfg):
    rows = spots.obs["array_row"].to_numpy()
    cols = spots.obs["array_col"].to_numpy()
    p, q = grid.pixels(rows, cols, source=points.source)
    H = enhanced_mask(mask_from_pixels(p, q, grid.shape), lattice)
    up = grid.up()
    P, Q = np.nonzero(H)
    tr, tc = up.coords(P, Q)
    idx = measured_index(P, Q, p, q, grid.shape)
    is_meas = idx >= 0
    n_new_in_H = int((~is_meas).sum())
    centres = _centres(tr, tc, lattice, spacing, origin)
    keep = is_meas | tm.contains(centres[:, 0], centres[:, 1])
    P, Q, tr, tc, is_meas, idx, centres = P[keep], Q[keep], tr[keep], tc[keep], is_meas[keep], idx[keep], centres[keep]
    X, n_in = disk_counts(points.xy, points.counts, centres, diameter / 2)
    spot_names = np.asarray(spots.obs_names)
    new_names = np.char.add(np.char.add(np.char.add("new_r", np.char.mod("%g", tr)), "_c"), np.char.mod("%g", tc))
    names = np.where(is_meas, spot_names[np.maximum(idx, 0)], new_names).astype(str)
    obs = pd.DataFrame(
        {
            "array_row": tr.astype(np.float64),
            "array_col": tc.astype(np.float64),
            "is_measured": is_meas,
            "is_imputed": ~is_meas,
            "in_tissue": np.ones(len(P), dtype=np.int64),
            "n_points": n_in,
            "total_counts": np.asarray(X.sum(axis=1), dtype=np.float64).ravel(),
        },
        index=pd.Index(names),
    )
    rec = _record(points, lattice, spacing, diameter, origin, cfg, tm, "truth")
    rec.update(n_spots=int(is_meas.sum()), n_truth=int(len(P)), n_new=int((~is_meas).sum()), n_new_in_H=n_new_in_H)
    st = {"lattice": lattice, "source": str(points.source), "format": "pseudospots_truth", "grid": up.to_dict(), "measured_grid": grid.to_dict(), "spatial_units": spots.uns["stentrans"]["spatial_units"]}
    if "input_sha256" in rec:
        st["input_sha256"] = rec["input_sha256"]
    out = _anndata(X, obs, centres, spots.var_names, st, rec)
    log.info("truth: %d positions (%d measured, %d new of %d in H(M))", len(P), int(is_meas.sum()), int((~is_meas).sum()), rec["n_new_in_H"])
    return out


# ---------------------------------------------------------------------------
# noise ceiling
# ---------------------------------------------------------------------------
def _integer_counts(values, what: str) -> np.ndarray:
    v = np.asarray(values)
    if v.size and (not np.isfinite(v).all() or (v < 0).any() or (v != np.rint(v)).any()):
        raise InputError(None, what, "binomial splitting needs non-negative integer counts (raw counts)")
    return np.rint(v).astype(np.int64)


def binomial_split(counts, rng: np.random.Generator):
    """Split integer counts into two halves, each count thinned with probability 1/2: ``(half_a, half_b)``, ``half_a + half_b == counts``.

    Sparse input gives CSR halves of the input's dtype (zeros dropped);
    dense gives arrays. Each molecule goes to one half at random, so the
    halves are independent samples of the same spots (Poisson: each has half
    the rate).
    """
    if sp.issparse(counts):
        c = sp.csr_matrix(counts, copy=True)
        c.sum_duplicates()
        n = _integer_counts(c.data, "counts")
        a_data = rng.binomial(n, 0.5)
        a = sp.csr_matrix((a_data.astype(c.dtype), c.indices.copy(), c.indptr.copy()), shape=c.shape)
        b = sp.csr_matrix(((n - a_data).astype(c.dtype), c.indices.copy(), c.indptr.copy()), shape=c.shape)
        a.eliminate_zeros()
        b.eliminate_zeros()
        return a, b
    arr = np.asarray(counts)
    n = _integer_counts(arr, "counts")
    a = rng.binomial(n, 0.5)
    return a.astype(arr.dtype, copy=False), (n - a).astype(arr.dtype, copy=False)


def noise_ceiling(truth_counts, rng: np.random.Generator, *, chunk: int = 1024) -> np.ndarray:
    """Per-gene noise ceiling of the PCC against ``truth_counts`` (spots x genes, raw counts).

    ``r`` is the PCC (:func:`stentrans.metrics.pcc`) over the spots of the two
    halves of :func:`binomial_split`; the ceiling is ``sqrt(2 r / (1 + r))``
    (Spearman-Brown), 0 where ``r <= 0`` and NaN where ``r`` is (a constant gene).
    """
    a, b = binomial_split(truth_counts, rng)
    n_genes = a.shape[1]
    r = np.empty(n_genes, dtype=np.float64)
    for s in range(0, n_genes, chunk):
        sl = slice(s, min(s + chunk, n_genes))
        da = a[:, sl].toarray() if sp.issparse(a) else np.asarray(a[:, sl])
        db = b[:, sl].toarray() if sp.issparse(b) else np.asarray(b[:, sl])
        r[sl] = pcc(da, db)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = 2.0 * r / (1.0 + r)
    return np.where(np.isnan(r), np.nan, np.sqrt(np.clip(rel, 0.0, None)))
