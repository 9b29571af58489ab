"""AnnData <-> dense gene maps on the spot lattice (``pp.to_grid`` / ``pp.from_grid``)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from ._errors import InputError
from .lattice import LATTICES, Grid, fit_grid, from_maps, mask_from_pixels, spots_to_pixels, to_maps


class GridData(NamedTuple):
    """Gene maps on a lattice.

    maps : (n_genes, u, v) array, 0 where no spot is.
    mask : (u, v) bool, True at measured (in-tissue) spots.
    grid : :class:`~stentrans.lattice.Grid` placement.
    p, q : pixel index of every spot of the AnnData, in ``obs`` order.
    genes : gene names, in map order.
    """

    maps: np.ndarray
    mask: np.ndarray
    grid: Grid
    p: np.ndarray
    q: np.ndarray
    genes: np.ndarray


def source_of(adata):
    """The input file an AnnData was read from (``uns["stentrans"]["source"]``), or None."""
    st = adata.uns.get("stentrans") if hasattr(adata, "uns") else None
    return st.get("source") if isinstance(st, dict) else None


def lattice_of(adata) -> str:
    """``uns["stentrans"]["lattice"]``, checked; errors name the input file."""
    try:
        lat = str(adata.uns["stentrans"]["lattice"])
    except (KeyError, TypeError):
        raise InputError(source_of(adata), 'uns["stentrans"]["lattice"]', "missing; read the data with stentrans.read") from None
    if lat not in LATTICES:
        raise InputError(source_of(adata), 'uns["stentrans"]["lattice"]', f"{lat!r} is not one of {LATTICES}")
    return lat


def layer_matrix(adata, layer: str | None = None):
    """``adata.layers[layer]``, or ``X`` when ``layer`` is None; a missing layer is an :class:`InputError`."""
    if layer is not None:
        if layer not in adata.layers:
            raise InputError(source_of(adata), "layer", f"{layer!r} not in layers {list(adata.layers)}")
        return adata.layers[layer]
    return adata.X


def dense(X) -> np.ndarray:
    return X.toarray() if sp.issparse(X) else np.asarray(X)


def grid_of(adata) -> Grid:
    """The grid of a (measured) AnnData: stored one, else fitted to its spots."""
    st = adata.uns.get("stentrans", {})
    if "grid" in st:
        return Grid.from_dict(st["grid"])
    return fit_grid(adata.obs["array_row"].to_numpy(), adata.obs["array_col"].to_numpy(), lattice_of(adata), source=st.get("source"))


def to_grid(adata, *, genes=None, layer: str | None = None, dtype=np.float32, grid: Grid | None = None) -> GridData:
    """Map genes to dense ``(n_genes, u, v)`` maps plus the in-tissue mask.

    Parameters
    ----------
    adata
        AnnData with ``obs["array_row"]``, ``obs["array_col"]`` and
        ``uns["stentrans"]["lattice"]`` (as returned by :func:`stentrans.read`).
    genes
        Subset and order of genes (default: all of ``var_names``).
    layer
        Layer to read instead of ``X``.
    dtype
        Map dtype (float32 by default; counts are exact in float32 up to 2**24).
    grid
        Placement to use (default: the data's own).
    """
    grid = grid or grid_of(adata)
    src = adata.uns.get("stentrans", {}).get("source")
    p, q = spots_to_pixels(adata.obs["array_row"].to_numpy(), adata.obs["array_col"].to_numpy(), grid, source=src, ids=adata.obs_names)
    sub = adata if genes is None else adata[:, list(genes)]
    X = sub.layers[layer] if layer else sub.X
    maps = to_maps(dense(X), p, q, grid.shape, dtype=dtype)
    return GridData(maps, mask_from_pixels(p, q, grid.shape), grid, p, q, np.asarray(sub.var_names))


def from_grid(maps: np.ndarray, gd_or_adata, *, grid: Grid | None = None) -> np.ndarray:
    """Values of ``maps`` at the spots: ``(n_spots, n_genes)``.

    ``gd_or_adata`` is the :class:`GridData` from :func:`to_grid` or the AnnData
    whose spots to read (with ``grid``, or its own grid).
    """
    if isinstance(gd_or_adata, GridData):
        p, q = gd_or_adata.p, gd_or_adata.q
    else:
        ad = gd_or_adata
        grid = grid or grid_of(ad)
        p, q = spots_to_pixels(ad.obs["array_row"].to_numpy(), ad.obs["array_col"].to_numpy(), grid, ids=ad.obs_names)
    return from_maps(maps, p, q)
