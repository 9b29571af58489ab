"""``.h5ad`` inputs: raw counts from ``layers`` or ``X``, lattice coordinates from ``obs`` or snapped from ``obsm["spatial"]``."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._errors import InputError
from ..lattice import LATTICES
from ._assemble import _check_counts_sparse, _finish
from ._text import _IO_ERRORS, _examples
from .snap import _snap_integer, snap_to_lattice

log = logging.getLogger("stentrans")


def _read_h5ad_file(path: Path):
    import anndata as ad_

    try:
        return ad_.read_h5ad(path)
    except (*_IO_ERRORS, KeyError, ValueError, TypeError, RuntimeError) as err:  # h5py: RuntimeError for damaged files
        raise InputError(path, "file", f"cannot be read as .h5ad ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None


def read_h5ad(path: Path, *, lattice: str, snap_tol: float, layer: str | None = None, **_):
    """An ``.h5ad`` with ``obs["array_row"/"array_col"]`` or pixel positions in ``obsm["spatial"]``."""
    return _read_h5ad(path, lattice, snap_tol, layer)


def _read_h5ad(path: Path, lattice: str, snap_tol: float, layer: str | None, *, adata=None, fmt: str = "h5ad", main_file: Path | None = None, extra: dict | None = None):
    """An ``.h5ad`` file, or ``adata`` in its layout read from ``path`` (a SpatialData table; ``main_file`` its file, ``extra`` into ``uns["stentrans"]``)."""
    adata = _read_h5ad_file(path) if adata is None else adata
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise InputError(path, "X", f"empty matrix ({adata.n_obs} spots x {adata.n_vars} genes)")
    if not adata.obs_names.is_unique:
        raise InputError(path, "obs_names", f"duplicate spot id(s): {_examples(pd.unique(adata.obs_names[adata.obs_names.duplicated()]))}")
    if not adata.var_names.is_unique:
        log.warning("%s: duplicate gene names made unique", path)
        adata.var_names_make_unique()
    x_from = "X"
    if layer is not None:
        if layer not in adata.layers:
            raise InputError(path, "layers", f"layer {layer!r} not found (have {list(adata.layers)})")
        adata.X = adata.layers[layer]
        x_from = f"layers[{layer!r}]"
    elif "counts" in adata.layers:
        adata.X = adata.layers["counts"]
        x_from = "layers['counts']"
    if adata.X is None:
        raise InputError(path, "X", "no expression matrix")
    if sp.issparse(adata.X):
        try:  # a damaged sparse structure crashes scipy later, not just Python
            adata.X.check_format(full_check=True)
        except (ValueError, TypeError) as err:
            raise InputError(path, x_from, f"damaged sparse matrix ({err})") from None
    _check_counts_sparse(adata.X, path, x_from, obs_names=adata.obs_names, var_names=adata.var_names)
    prev = adata.uns.get("stentrans") if isinstance(adata.uns.get("stentrans"), dict) else {}
    if "in_tissue" in adata.obs:
        it = pd.to_numeric(adata.obs["in_tissue"].astype(object), errors="coerce").to_numpy(float)
        if np.isnan(it).any():
            raise InputError(path, 'obs["in_tissue"]', "non-numeric values")
        adata = adata[it == 1].copy()
        if adata.n_obs == 0:
            raise InputError(path, 'obs["in_tissue"]', "no spot is in tissue (in_tissue == 1)")
    if "is_imputed" in adata.obs and adata.obs["is_imputed"].astype(bool).any():
        raise InputError(path, 'obs["is_imputed"]', "this is enhanced output (imputed spots); read the measured data instead")
    extra = {"x_from": x_from, **(extra or {})}
    ids = np.asarray(adata.obs_names)
    auto_hex = True
    lat_in = lattice
    if lat_in == "auto" and prev.get("lattice") in LATTICES:
        lat_in = prev["lattice"]
    if "array_row" in adata.obs and "array_col" in adata.obs:
        rr = pd.to_numeric(adata.obs["array_row"].astype(object), errors="coerce").to_numpy(float)
        cc = pd.to_numeric(adata.obs["array_col"].astype(object), errors="coerce").to_numpy(float)
        r, c, snap = _snap_integer(rr, cc, ids, snap_tol, path, 'obs["array_row"]/obs["array_col"]')
        extra["snap"] = snap
        extra["coordinates_from"] = "obs"
    elif "spatial" in adata.obsm:
        r, c, lat_in, info = snap_to_lattice(np.asarray(adata.obsm["spatial"]), lattice=lat_in, tol=snap_tol, ids=ids, source=path)
        extra["snap"] = info
        extra["coordinates_from"] = 'obsm["spatial"]'
    else:
        raise InputError(path, "obs", 'no spot coordinates (counts without positions): need obs["array_row"]/obs["array_col"] or obsm["spatial"]')
    adata.obs["array_row"] = r
    adata.obs["array_col"] = c
    if "spatial" in adata.obsm:
        sp_ = np.asarray(adata.obsm["spatial"], dtype=float)
        if sp_.ndim != 2 or sp_.shape[1] < 2 or not np.isfinite(sp_[:, :2]).all():
            raise InputError(path, 'obsm["spatial"]', "expected finite (n, 2) pixel coordinates")
        adata.obsm["spatial"] = sp_[:, :2]
        if prev.get("spatial_units"):  # e.g. pseudo-spots in the finer data's units: keep what the file says
            extra["spatial_units"] = prev["spatial_units"]
    return _finish(adata, path=path, fmt=fmt, main_file=main_file or path, lattice=lat_in, auto_hex=auto_hex, extra=extra)
