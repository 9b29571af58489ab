"""AnnData assembly shared by every reader: lattice, grid, dtypes, units and provenance; :func:`summary` of the result.

Where an input has no pixel coordinates, ``obsm["spatial"]`` is the lattice
position in micrometres, :func:`stentrans.lattice.physical` with the spot
pitch of the technology (:data:`stentrans.lattice.SPACING_UM`): square (ST)
``x = 200 * array_col``, ``y = 200 * array_row``; hex (Visium) ``x = 50 *
array_col``, ``y = 50 * sqrt(3) * array_row``. The units are stated in
``uns["stentrans"]["spatial_units"]``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .._errors import InputError
from .._utils import sha256_file
from ..lattice import SPACING_UM, fit_grid, physical, spots_to_pixels
from ._text import _check_counts, _examples
from .snap import _resolve_lattice

__all__ = ["summary"]

log = logging.getLogger("stentrans")


def _lattice_um(r, c, lattice: str) -> np.ndarray:
    """``(n, 2)`` micrometre ``(x, y)`` of lattice coordinates (or ST spot ids ``X``, ``Y``)."""
    return np.column_stack(physical(r, c, lattice, spacing=SPACING_UM[lattice]))


def _spatial_units(lattice: str) -> str:
    if lattice == "hex":
        return "um from lattice coordinates: x = 50 * array_col, y = 50 * sqrt(3) * array_row (100 um spot pitch)"
    return "um from lattice coordinates: x = 200 * array_col, y = 200 * array_row (200 um spot pitch)"


def _finish(adata, *, path: Path, fmt: str, main_file: Path, lattice: str, auto_hex: bool, extra: dict | None = None, resolved: bool = False):
    """Set lattice, grid, dtypes and provenance; check grid placement."""
    r = adata.obs["array_row"].to_numpy()
    c = adata.obs["array_col"].to_numpy()
    lat = lattice if resolved else _resolve_lattice(lattice, r, c, path, auto_hex)
    grid = fit_grid(r, c, lat, source=path)
    spots_to_pixels(r, c, grid, source=path, ids=np.asarray(adata.obs_names))
    X = adata.X
    X = sp.csr_matrix(X, dtype=np.float32) if not sp.issparse(X) else X.tocsr().astype(np.float32)
    X.sum_duplicates()
    X.sort_indices()
    adata.X = X
    # index names must be strings (or None) for h5ad; tables leave their header cell there
    adata.obs.index.name = None
    adata.var.index.name = None
    adata.obs.columns = adata.obs.columns.astype(str)
    adata.var.columns = adata.var.columns.astype(str)
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise InputError(path, "counts", f"empty matrix ({adata.n_obs} spots x {adata.n_vars} genes)")
    _check_gene_names(adata.var_names, main_file)
    adata.obs["array_row"] = r.astype(np.int64)
    adata.obs["array_col"] = c.astype(np.int64)
    adata.obs["in_tissue"] = np.ones(adata.n_obs, dtype=np.int64)
    units = "pixels (full-resolution image)"
    if "spatial" not in adata.obsm:
        adata.obsm["spatial"] = _lattice_um(r, c, lat)
        units = _spatial_units(lat)
    adata.obsm["spatial"] = np.asarray(adata.obsm["spatial"], dtype=np.float64)
    st = {
        "lattice": lat,
        "source": str(path),
        "format": fmt,
        "input_sha256": sha256_file(main_file),
        "grid": grid.to_dict(),
        "spatial_units": units,
    }
    if extra:
        st.update({k: v for k, v in extra.items() if v is not None})
    adata.uns["stentrans"] = st
    if not adata.obs_names.is_unique:
        raise InputError(path, "spot ids", f"duplicate spot id(s): {_examples(adata.obs_names[adata.obs_names.duplicated()])}")
    if not adata.var_names.is_unique:
        adata.var_names_make_unique()
    log.debug("read %s: %d spots x %d genes, %s lattice, grid %d x %d", path, adata.n_obs, adata.n_vars, lat, *grid.shape)
    return adata


def _check_counts_sparse(X, path, field="counts", obs_names=None, var_names=None) -> None:
    """Refuse NaN, infinite, negative and too large counts (:func:`._text._check_counts`)."""
    _check_counts(X, path, field, obs_names=obs_names, var_names=var_names)


def _check_gene_names(var_names, path, field="genes") -> None:
    """Refuse empty (or missing) gene names, naming their position."""
    names = np.asarray(var_names).astype(str)
    empty = np.flatnonzero((np.char.strip(names) == "") | (names == "nan"))
    if empty.size:
        raise InputError(path, field, f"empty gene name {str(names[empty[0]])!r} at gene {int(empty[0]) + 1} of {names.size}{f' ({empty.size} empty in all)' if empty.size > 1 else ''}")


def summary(adata) -> dict:
    """Spots, genes, lattice, grid shape and occupancy of a read AnnData."""
    from ..grid import grid_of

    grid = grid_of(adata)
    n_lattice = int(grid.lattice_mask().sum())
    st = adata.uns.get("stentrans", {})
    return {
        "source": st.get("source", ""),
        "format": st.get("format", ""),
        "spots": int(adata.n_obs),
        "genes": int(adata.n_vars),
        "lattice": grid.lattice,
        "grid": tuple(int(x) for x in grid.shape),
        "occupied": adata.n_obs / n_lattice if n_lattice else 0.0,
        "lattice_points": n_lattice,
    }
