"""Space Ranger layout: the ``outs`` folder, 10x count matrices (HDF5, mtx), scale factors and images.

An ``outs`` folder holds ``filtered_feature_bc_matrix.h5`` or the
``filtered_feature_bc_matrix/`` mtx folder, and ``spatial/`` with
``tissue_positions.csv`` (header), ``tissue_positions_list.csv`` (no
header) or ``tissue_positions.parquet`` (Visium HD bins,
:mod:`stentrans.io.visium_hd`), ``scalefactors_json.json`` and the tissue
images. Positions are read
by :func:`stentrans.io.positions.read_positions`; the counts are paired with
them in :mod:`stentrans.io._pair`. ``_add_spatial_uns`` builds scanpy's
``uns["spatial"][library_id]``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from .._errors import InputError
from ._text import _IO_ERRORS, _io_error, _open_text


def _find_outs(path: Path) -> Path | None:
    """The Space Ranger ``outs`` folder for ``path`` (itself, ``path/outs`` or parent)."""
    cands = [path, path / "outs"]
    if path.name in ("filtered_feature_bc_matrix", "raw_feature_bc_matrix", "spatial"):
        cands.insert(0, path.parent)
    for c in cands:
        if c.is_dir() and ((c / "spatial").is_dir() or (c / "filtered_feature_bc_matrix.h5").exists() or (c / "filtered_feature_bc_matrix").is_dir()):
            return c
    return None


def _positions_file(outs: Path) -> Path | None:
    for name in ("tissue_positions.csv", "tissue_positions_list.csv", "tissue_positions.csv.gz", "tissue_positions_list.csv.gz", "tissue_positions.parquet"):
        p = outs / "spatial" / name
        if p.exists():
            return p
    return None


def _matrix_source(outs: Path) -> Path | None:
    h5 = outs / "filtered_feature_bc_matrix.h5"
    if h5.exists():
        return h5
    mtx = outs / "filtered_feature_bc_matrix"
    if mtx.is_dir():
        return mtx
    return None


def _mtx_main_file(folder: Path) -> Path:
    for name in ("matrix.mtx.gz", "matrix.mtx"):
        if (folder / name).exists():
            return folder / name
    raise InputError(folder, "matrix.mtx.gz", "file not found in the matrix folder")


#: datasets of /matrix (and /matrix/features) a 10x feature-barcode HDF5 file has
_H5_DATASETS = ("barcodes", "data", "indices", "indptr", "shape", "id", "name", "feature_type")
#: scale factors that are positive numbers when present
_POSITIVE_SCALEFACTORS = ("spot_diameter_fullres", "fiducial_diameter_fullres", "tissue_hires_scalef", "tissue_lowres_scalef", "regist_target_img_scalef", "bin_size_um", "microns_per_pixel")
#: largest scale factor accepted (a diameter in pixels beyond any image)
_MAX_SCALEFACTOR = 1e9


def _check_h5_csc(m, path: Path, chunk: int = 1 << 22) -> None:
    """The compressed sparse structure of ``/matrix`` is consistent (a damaged one crashes scipy, not just Python).

    ``shape`` is (genes, barcodes); ``indptr`` has one entry per barcode plus
    one, starts at 0, never decreases and ends at ``len(data) ==
    len(indices)``; every gene index is in range; there are as many
    barcodes and feature names as the shape says.
    """
    shape = np.asarray(m["shape"][()]).ravel()
    if shape.size != 2 or not np.issubdtype(shape.dtype, np.integer) or (shape < 0).any():
        raise InputError(path, "/matrix/shape", f"{shape.tolist()} is not (genes, barcodes)")
    n_genes, n_bc = int(shape[0]), int(shape[1])
    feats = m["features"] if "features" in m else m
    for key, n in (("barcodes", n_bc), ("indptr", n_bc + 1)):
        if m[key].shape != (n,):
            raise InputError(path, f"/matrix/{key}", f"{m[key].shape[0] if m[key].ndim else 0} entries for shape {shape.tolist()} (expected {n})")
    if feats["name"].shape != (n_genes,):
        raise InputError(path, "/matrix/features/name", f"{feats['name'].shape[0] if feats['name'].ndim else 0} names for {n_genes} genes")
    indptr = np.asarray(m["indptr"][()])
    nnz = m["data"].shape[0] if m["data"].ndim == 1 else -1
    if m["indices"].shape != (nnz,) or indptr[0] != 0 or indptr[-1] != nnz or (np.diff(indptr) < 0).any():
        raise InputError(path, "/matrix/indptr", f"inconsistent with /matrix/data and /matrix/indices ({nnz} values; indptr from {int(indptr[0])} to {int(indptr[-1])})")
    ix = m["indices"]
    for s in range(0, nnz, chunk):
        block = np.asarray(ix[s : s + chunk])
        if block.size and (block.min() < 0 or block.max() >= n_genes):
            raise InputError(path, "/matrix/indices", f"gene index {int(block.max() if block.max() >= n_genes else block.min())} out of range for {n_genes} genes")


def _read_10x_h5(path: Path):
    import scanpy as sc

    try:
        with h5py.File(path, "r") as f:
            attrs = {}
            for k in ("chemistry_description", "software_version", "library_ids"):
                if k in f.attrs:
                    v = f.attrs[k]
                    if isinstance(v, np.ndarray):
                        v = v.ravel()[0] if v.size else ""
                    attrs[k] = v.decode() if isinstance(v, bytes) else str(v)
            if "matrix" not in f or not isinstance(f["matrix"], h5py.Group):
                raise InputError(path, "/matrix", "not a 10x feature-barcode HDF5 file (group /matrix missing)")
            have = set()
            f["matrix"].visititems(lambda name, obj: have.add(name.rsplit("/", 1)[-1]) if isinstance(obj, h5py.Dataset) else None)
            missing = [k for k in _H5_DATASETS if k not in have]
            if missing:
                raise InputError(path, "/matrix", f"incomplete 10x HDF5 layout: no dataset {', '.join(missing)}")
            _check_h5_csc(f["matrix"], path)
        with warnings.catch_warnings():
            # duplicate gene symbols are made unique by the caller
            warnings.filterwarnings("ignore", message="Variable names are not unique")
            ad = sc.read_10x_h5(path)
    except InputError:
        raise
    except KeyError as err:
        raise InputError(path, "/matrix", f"incomplete 10x HDF5 layout (missing {err})") from None
    except (*_IO_ERRORS, ValueError, TypeError, RuntimeError, IndexError) as err:  # h5py: RuntimeError for damaged files
        raise InputError(path, "file", f"cannot be read as 10x HDF5 ({type(err).__name__}: {err})") from None
    return ad, attrs


def _check_features_file(folder: Path) -> None:
    """Every line of ``features.tsv[.gz]`` (``genes.tsv``) has the same fields, with a gene name."""
    for name in ("features.tsv.gz", "features.tsv", "genes.tsv.gz", "genes.tsv"):
        f = folder / name
        if f.exists():
            break
    else:
        return  # scanpy names the missing file
    try:
        with _open_text(f) as fh:
            width = None
            for i, line in enumerate(fh, 1):
                line = line.rstrip("\r\n")
                if not line:
                    continue
                fields = line.split("\t")
                if width is None:
                    width = len(fields)
                if len(fields) != width:
                    raise InputError(f, f"line {i}", f"{len(fields)} tab-separated fields, but {width} on the first line")
                if len(fields) > 1 and not fields[1].strip():
                    raise InputError(f, f"line {i}", f"empty gene name (field 2) for feature {fields[0]!r}")
    except _IO_ERRORS as err:
        raise _io_error(f, err) from None


def _read_10x_mtx(folder: Path):
    import scanpy as sc

    main = _mtx_main_file(folder)
    _check_features_file(folder)
    try:
        ad = sc.read_10x_mtx(folder, var_names="gene_symbols", make_unique=True)
    except FileNotFoundError as err:
        raise InputError(folder, Path(err.filename or "").name or "file", "file not found in the matrix folder") from None
    except (*_IO_ERRORS, ValueError, IndexError, OverflowError, TypeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(main, "file", f"cannot be read as a 10x matrix folder ({type(err).__name__}: {err})") from None
    return ad, {}


def _scalefactors(spatial_dir: Path) -> dict | None:
    f = spatial_dir / "scalefactors_json.json"
    if not f.exists():
        return None
    try:
        d = json.loads(f.read_text())
    except (json.JSONDecodeError, *_IO_ERRORS) as err:
        raise InputError(f, "json", f"cannot be parsed ({err})") from None
    if not isinstance(d, dict):
        raise InputError(f, "json", "expected an object of scale factors")
    for k in _POSITIVE_SCALEFACTORS:
        if k not in d:
            continue
        v = d[k]
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) and 0 < v <= _MAX_SCALEFACTOR
        if not ok:
            raise InputError(f, k, f"{v!r} is not a positive number of at most {_MAX_SCALEFACTOR:g}")
    return {str(k): float(v) for k, v in d.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)}


def _images(spatial_dir: Path) -> dict:
    out = {}
    for res in ("hires", "lowres"):
        f = spatial_dir / f"tissue_{res}_image.png"
        if f.exists():
            from matplotlib.image import imread

            try:
                out[res] = imread(f)
            except (*_IO_ERRORS, ValueError, SyntaxError) as err:
                raise InputError(f, "image", f"cannot be read ({type(err).__name__}: {err})") from None
    return out


def _spot_spacing_px(obs: pd.DataFrame, spatial: np.ndarray) -> float | None:
    from scipy.spatial import cKDTree

    if spatial.shape[0] < 2:
        return None
    d, _ = cKDTree(spatial).query(spatial, k=2)
    return float(np.median(d[:, 1]))


def _add_spatial_uns(adata, outs: Path, p: pd.DataFrame, attrs: dict, library_id=None) -> None:
    """scanpy's ``uns["spatial"][library_id]``: images, scale factors (estimated when missing), metadata.

    ``p`` holds the positions of ``adata``'s spots; ``attrs`` the 10x HDF5
    attributes; the library id defaults to the HDF5's, else the sample folder name.
    """
    spatial_dir = outs / "spatial"
    sf = _scalefactors(spatial_dir)
    meta = {k: v for k, v in attrs.items() if k != "library_ids" and v}
    if sf is None:
        sf = {}
        meta["scalefactors_note"] = "no scalefactors_json.json: spot_diameter_fullres estimated as 0.55 x the median spot spacing"
    if "spot_diameter_fullres" not in sf:
        spacing = _spot_spacing_px(p, adata.obsm["spatial"])
        if spacing:
            sf["spot_diameter_fullres"] = 0.55 * spacing
    lib = library_id or attrs.get("library_ids") or ""
    if lib in ("", "unknown"):
        lib = (outs.parent.name if outs.name == "outs" else outs.name) or "library"
    adata.uns["spatial"] = {str(lib): {"images": _images(spatial_dir), "scalefactors": sf, "metadata": meta}}
