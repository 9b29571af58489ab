"""The enhanced AnnData (docs/method.md section 3): measured and new spots on the half-step lattice.

:func:`build_enhanced` assembles it from values at the positions ``H(M)`` of
the doubled grid: ``obs["is_imputed"]`` and ``obs["is_lost"]``, half-step ``array_row`` /
``array_col``, pixel ``obsm["spatial"]`` (an affine fit to the measured
spots), ``uns["spatial"]`` with the spot diameter (and Visium HD's
``bin_size_um``) halved and the other scale factors (``microns_per_pixel``,
image scales) kept, and provenance in ``uns["stentrans"]`` (Visium HD:
``bin_size_um`` halved, ``measured_bin_size_um``, ``microns_per_pixel``).
"""

from __future__ import annotations

import copy
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from .._utils import atomic_path
from .._version import __version__
from ..lattice import Grid, measured_index


def affine_fit(rows, cols, xy) -> np.ndarray:
    """Least-squares affine map ``(array_row, array_col, 1) -> (x, y)``; (3, 2) matrix."""
    A = np.column_stack([np.asarray(rows, float), np.asarray(cols, float), np.ones(len(rows))])
    coef, *_ = np.linalg.lstsq(A, np.asarray(xy, float), rcond=None)
    return coef


#: scale factors that are a spot's (bin's) size: halved on the enhanced lattice
HALVED_SCALEFACTORS = ("spot_diameter_fullres", "bin_size_um")


def _halved_spatial(uns_spatial) -> dict:
    """``uns["spatial"]`` of the enhanced lattice: everything kept, the spot (bin) size halved.

    The image scale factors and ``microns_per_pixel`` (Visium HD) describe
    the images and pixels, which do not change; ``spot_diameter_fullres`` and
    Visium HD's ``bin_size_um`` halve with the lattice spacing.
    """
    out = copy.deepcopy(dict(uns_spatial))
    for lib in out.values():
        sf = lib.get("scalefactors") if isinstance(lib, dict) else None
        for key in HALVED_SCALEFACTORS:
            if sf and key in sf:
                sf[key] = float(sf[key]) / 2.0
    return out


def _jsonable(d):
    """uns must be h5ad-writable: no None, tuples become lists, lists of dicts become dicts."""
    if isinstance(d, dict):
        return {str(k): _jsonable(v) for k, v in d.items() if v is not None}
    if isinstance(d, (list, tuple)):
        if any(isinstance(v, dict) for v in d):  # h5ad cannot store a list of mappings
            return {str(i): _jsonable(v) for i, v in enumerate(d)}
        return [_jsonable(v) for v in d]
    if isinstance(d, (np.floating, np.integer)):
        return d.item()
    return d


def build_enhanced(
    adata,
    hr_values: np.ndarray,
    H: np.ndarray,
    grid: Grid,
    p: np.ndarray,
    q: np.ndarray,
    genes,
    *,
    provenance: dict | None = None,
    clip_negative: bool = True,
    lost: np.ndarray | None = None,
) -> ad.AnnData:
    """Assemble the enhanced AnnData.

    Parameters
    ----------
    adata
        The measured AnnData (obs, obsm["spatial"], uns["spatial"] are used).
    hr_values
        ``(n_new_spots, n_genes)`` values at the ``H`` pixels in C order
        (``np.nonzero(H)``).
    H
        Enhanced mask on the doubled grid ``grid.up()``.
    grid, p, q
        Measured grid and the measured spots' pixels (obs order).
    lost
        ``(u, v)`` bool on ``grid``: lost positions filled (:mod:`stentrans.lost`;
        ``H`` must hold them). They are imputed spots with ``is_lost`` True,
        named ``lost_r{row}_c{col}``; ``uns["stentrans"]`` gets ``n_lost`` and
        ``lost`` (``(n, 2)`` ``[array_row, array_col]``).
    """
    from ..lost import positions_of

    up = grid.up()
    P, Q = np.nonzero(H)
    rows, cols = up.coords(P, Q)
    src_idx = measured_index(P, Q, p, q, grid.shape)
    is_meas = src_idx >= 0
    is_lost = np.zeros(len(P), dtype=bool)
    if lost is not None:
        on = (P % 2 == 0) & (Q % 2 == 0)
        is_lost[on] = np.asarray(lost, dtype=bool)[P[on] // 2, Q[on] // 2]
        is_lost &= ~is_meas
        if int(is_lost.sum()) != int(np.asarray(lost).sum()):
            raise ValueError("every lost position must be an H position without a measured spot")
    barcodes = np.where(is_meas, np.asarray(adata.obs_names)[np.maximum(src_idx, 0)], "")
    prefix = np.where(is_lost, "lost_r", "new_r")
    names = np.where(is_meas, barcodes, np.char.add(np.char.add(np.char.add(prefix, np.char.mod("%g", rows)), "_c"), np.char.mod("%g", cols)))
    obs = pd.DataFrame(
        {
            "is_imputed": ~is_meas,
            "is_lost": is_lost,
            "array_row": rows.astype(np.float64),
            "array_col": cols.astype(np.float64),
            "barcode": barcodes.astype(str),
            "in_tissue": np.ones(len(P), dtype=np.int64),
        },
        index=pd.Index(names.astype(str), name=None),
    )
    X = None
    if hr_values is not None:  # None: a skeleton whose X is streamed to the file later
        X = np.asarray(hr_values, dtype=np.float32)
        if clip_negative:
            np.maximum(X, 0, out=X)
    out = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=pd.Index(list(map(str, genes)))))
    if "spatial" in adata.obsm:
        coef = affine_fit(adata.obs["array_row"], adata.obs["array_col"], np.asarray(adata.obsm["spatial"])[:, :2])
        out.obsm["spatial"] = np.column_stack([rows, cols, np.ones(len(rows))]) @ coef
    if "spatial" in adata.uns:
        out.uns["spatial"] = _halved_spatial(adata.uns["spatial"])
    st_in = dict(adata.uns.get("stentrans", {}))
    # obsm["spatial"] stays in the input's coordinates: its units description goes along
    st = {k: st_in[k] for k in ("lattice", "source", "format", "input_sha256", "qc", "scale", "microns_per_pixel", "spatial_units") if k in st_in}
    if "bin_size_um" in st_in:  # Visium HD: new bins at half steps, half the side
        st["measured_bin_size_um"] = float(st_in["bin_size_um"])
        st["bin_size_um"] = float(st_in["bin_size_um"]) / 2.0
    st["grid"] = up.to_dict()
    st["measured_grid"] = grid.to_dict()
    st["version"] = __version__
    st["clipped_negative"] = bool(clip_negative)
    st["n_measured"] = int(is_meas.sum())
    st["n_imputed"] = int((~is_meas).sum())
    st["n_lost"] = int(is_lost.sum())
    st["lost"] = positions_of(np.zeros(grid.shape, dtype=bool) if lost is None else np.asarray(lost, dtype=bool), grid)
    st.update(provenance or {})
    out.uns["stentrans"] = _jsonable(st)
    return out


def write_h5ad(adata, path) -> Path:
    """Write an AnnData atomically (temp file + rename)."""
    path = Path(path)
    with atomic_path(path, suffix=".h5ad") as tmp:
        adata.write_h5ad(tmp)
    return path
