"""Counts paired with positions: Space Ranger outs (Visium HD bins too), counts + coordinates tables, positions + a matrix.

:func:`_pair` reads the positions (:func:`~stentrans.io.positions.read_positions`)
and a count matrix in any supported form (10x HDF5, mtx folder, ``.h5ad``,
table in either orientation), keeps the in-tissue spots of the matrix, snaps
their lattice coordinates and, for a Space Ranger layout with pixel
positions, adds scanpy's ``uns["spatial"]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .._errors import InputError
from ._assemble import _check_counts_sparse, _check_gene_names, _finish
from ._text import _examples, _is_table_name, _read_table, _table_matrix
from .h5ad import _read_h5ad_file
from .positions import read_positions
from .snap import _snap_integer
from .spaceranger import _add_spatial_uns, _find_outs, _matrix_source, _mtx_main_file, _positions_file, _read_10x_h5, _read_10x_mtx
from .visium_hd import _bin_info, _bin_size_value, _find_bin_folder, _library_id


def _load_matrix(path: Path):
    """(AnnData spots x genes, main file, format tag, attrs) from a counts source."""
    if path.is_dir():
        if (path / "matrix.mtx.gz").exists() or (path / "matrix.mtx").exists():
            ad, attrs = _read_10x_mtx(path)
            return ad, _mtx_main_file(path), "10x_mtx", attrs
        src = _find_outs(path)
        m = _matrix_source(src) if src else None
        if m is None:
            raise InputError(path, "counts", "no count matrix found (expected filtered_feature_bc_matrix.h5 or filtered_feature_bc_matrix/)")
        return _load_matrix(m)
    name = path.name.lower()
    if name.endswith(".h5"):
        ad, attrs = _read_10x_h5(path)
        return ad, path, "10x_h5", attrs
    if name.endswith(".h5ad"):
        ad = _read_h5ad_file(path)
        return ad, path, "h5ad", {}
    if _is_table_name(path):
        df = _read_table(path)
        return df, path, "table", {}
    raise InputError(path, "format", f"unknown count matrix format {path.name!r} (expected .h5, a 10x mtx folder, .h5ad, .csv/.tsv[.gz])")


def _genes_file(main_file: Path, mfmt: str) -> Path:
    """The file holding the gene names of a count matrix (``features.tsv.gz`` of an mtx folder)."""
    if mfmt == "10x_mtx":
        for name in ("features.tsv.gz", "features.tsv", "genes.tsv.gz", "genes.tsv"):
            if (main_file.parent / name).exists():
                return main_file.parent / name
    return main_file


def _pair(counts_path: Path, pos_path: Path, *, lattice: str, snap_tol: float, fmt: str, source: Path, library_id=None, auto_hex: bool = True, extra: dict | None = None):
    """Counts of ``counts_path`` at the positions of ``pos_path``; ``extra`` joins ``uns["stentrans"]``."""
    import anndata as ad_

    pos = read_positions(pos_path)
    pos_file = pos_path if pos_path.is_file() else (_positions_file(_find_outs(pos_path)) if _find_outs(pos_path) else pos_path)
    mat, main_file, mfmt, attrs = _load_matrix(counts_path)
    if isinstance(mat, pd.DataFrame):
        ids_rows = mat.index.astype(str)
        ids_cols = pd.Index(mat.columns).astype(str)
        n_rows = ids_rows.isin(pos.index).sum()
        n_cols = ids_cols.isin(pos.index).sum()
        X, spots, genes = _table_matrix(mat, spots_on_rows=n_rows >= n_cols, path=counts_path)
        adata = ad_.AnnData(X=X, obs=pd.DataFrame(index=spots), var=pd.DataFrame(index=genes))
    else:
        adata = mat
        if not adata.obs_names.is_unique:
            raise InputError(main_file, "barcodes", f"duplicate barcode(s): {_examples(adata.obs_names[adata.obs_names.duplicated()])}")
        _check_gene_names(adata.var_names, _genes_file(main_file, mfmt))
        adata.var_names_make_unique()
        _check_counts_sparse(adata.X, main_file, obs_names=adata.obs_names, var_names=adata.var_names)
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise InputError(main_file, "counts", f"empty matrix ({adata.n_obs} spots x {adata.n_vars} genes)")
    spots = adata.obs_names
    known = spots.isin(pos.index)
    if not known.any():
        raise InputError(pos_file, "barcode", f"no spot id in common with the count matrix {main_file.name} (positions without counts): positions e.g. {_examples(pos.index, 3)}; matrix e.g. {_examples(spots, 3)}")
    if not known.all():
        raise InputError(main_file, "barcode", f"{int((~known).sum())} spot(s) of the count matrix have no position in {pos_file.name} (counts without positions): {_examples(spots[~known])}")
    p = pos.loc[spots]
    inside = p["in_tissue"].to_numpy() == 1
    if not inside.any():
        raise InputError(pos_file, "in_tissue", f"none of the {len(spots)} spots of the count matrix is in tissue")
    n_out = int((~inside).sum())
    adata = adata[inside].copy()
    p = p.loc[adata.obs_names]
    r, c, snap = _snap_integer(p["array_row"].to_numpy(), p["array_col"].to_numpy(), np.asarray(adata.obs_names), snap_tol, pos_file, "array_row/array_col")
    for col in list(adata.obs.columns):
        if col in ("in_tissue", "array_row", "array_col"):
            del adata.obs[col]
    adata.obs["in_tissue"] = 1
    adata.obs["array_row"] = r
    adata.obs["array_col"] = c
    has_px = "pxl_row_in_fullres" in p.columns and "pxl_col_in_fullres" in p.columns
    if has_px:
        adata.obsm["spatial"] = np.column_stack([p["pxl_col_in_fullres"].to_numpy(float), p["pxl_row_in_fullres"].to_numpy(float)])
    in_tissue = pos[pos["in_tissue"].to_numpy() == 1]
    info = {"n_out_of_tissue_dropped": n_out, "n_positions_without_counts": int(len(in_tissue) - inside.sum()), "snap": snap, "positions_file": str(pos_file), "counts_format": mfmt}
    # every in-tissue position of the positions file, so that lost spots (fill_lost="tissue") need no second reading
    info["in_tissue_positions"] = np.column_stack([np.rint(in_tissue["array_row"].to_numpy(float)), np.rint(in_tissue["array_col"].to_numpy(float))]).astype(np.int32).reshape(-1, 2)
    outs = _find_outs(pos_path) if pos_path.is_dir() else (_find_outs(pos_path.parent.parent) if pos_path.parent.name == "spatial" else None)
    if outs is not None and has_px:
        _add_spatial_uns(adata, outs, p, attrs, library_id)
    info.update(extra or {})
    return _finish(adata, path=source, fmt=fmt, main_file=main_file, lattice=lattice, auto_hex=auto_hex, extra=info)


def _spaceranger(matrix: Path, outs: Path, *, path: Path, lattice: str, snap_tol: float, library_id, bin_size):
    """Read a Space Ranger folder's counts and positions; Visium HD bin folders as square lattices."""
    hd = _bin_info(outs)
    if hd is None:
        if bin_size is not None:
            raise InputError(path, "bin_size", "only Visium HD binned outputs (binned_outputs/square_XXXum/) have a bin size")
        return _pair(matrix, outs, lattice=lattice, snap_tol=snap_tol, fmt="spaceranger", source=path, library_id=library_id)
    want = _bin_size_value(bin_size, path)
    if want is not None and want != hd["bin_size_um"]:
        raise InputError(path, "bin_size", f"{want} um asked for, but {outs.name} holds the {hd['bin_size_um']:g} um bins")
    if lattice == "hex":
        raise InputError(path, "lattice", "'hex' contradicts the data: Visium HD bins form a square lattice")
    # "auto" without hex: square even where the in-tissue bins form a checkerboard
    return _pair(matrix, outs, lattice="auto", snap_tol=snap_tol, fmt="visium_hd", source=path, library_id=library_id or _library_id(outs), auto_hex=False, extra=hd)


def read_spaceranger(path: Path, *, lattice: str, snap_tol: float, library_id: str | None = None, bin_size=None, **_):
    """A Space Ranger ``outs`` folder (its parent, its matrix folder or ``.h5``), Visium HD bin folders included."""
    path = Path(path)
    sr = {"path": path, "lattice": lattice, "snap_tol": snap_tol, "library_id": library_id, "bin_size": bin_size}
    if path.is_dir():
        outs = _find_bin_folder(path, bin_size) or _find_outs(path)
        if outs is None:
            raise InputError(path, "format", "folder is not a Space Ranger outs folder (no spatial/, filtered_feature_bc_matrix.h5, filtered_feature_bc_matrix/ or binned_outputs/)")
        m = path if (path / "matrix.mtx.gz").exists() or (path / "matrix.mtx").exists() else _matrix_source(outs)
        pf = _positions_file(outs)
        if m is None:
            raise InputError(outs, "filtered_feature_bc_matrix", "no count matrix (positions without counts): expected filtered_feature_bc_matrix.h5 or filtered_feature_bc_matrix/; give the count matrix too (--counts FILE; read(..., counts=FILE))")
        if pf is None:
            expected = "spatial/tissue_positions.parquet" if _bin_info(outs) else "spatial/tissue_positions.csv"
            raise InputError(outs, expected, "no positions file (counts without positions)")
        return _spaceranger(m, outs, **sr)
    # a 10x HDF5 matrix: the positions lie beside it
    outs = path.parent
    if _positions_file(outs) is None:
        raise InputError(path, "positions", "10x HDF5 matrix without spatial/tissue_positions.csv (or .parquet) beside it (counts without positions); give the positions too (--coords FILE; read(..., coords=FILE))")
    return _spaceranger(path, outs, **sr)
