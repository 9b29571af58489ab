"""Readers: every supported input becomes one AnnData on a spot lattice.

:func:`read` dispatches on the input:

* ``.h5ad`` — lattice coordinates from ``obs["array_row"]``/``obs["array_col"]``,
  else snapped from ``obsm["spatial"]`` (spacing from nearest neighbours,
  square vs hex from the neighbour angles).
* a Space Ranger ``outs`` folder (or its parent, or the
  ``filtered_feature_bc_matrix`` folder / ``.h5`` file inside it) — counts
  from ``filtered_feature_bc_matrix.h5`` or the ``filtered_feature_bc_matrix/``
  mtx folder, positions from ``spatial/tissue_positions.csv`` (header) or
  ``spatial/tissue_positions_list.csv`` (no header), scale factors and
  images from ``spatial/`` where present.
* Spatial Transcriptomics count tables ``.tsv``/``.csv`` (optionally
  gzipped) with spot ids ``XxY`` on the rows (or on the columns: the axis
  holding the ids is detected). ``array_col = X``, ``array_row = Y``;
  centroids such as ``16.92x9.015`` are snapped to the nearest integer.
* a counts table plus a coordinates table: ``read(counts, coords=coords)``,
  or a positions source plus a separate matrix: ``read(positions,
  counts=matrix)``.

Every result has ``obs["array_row"]``, ``obs["array_col"]`` (integers),
``obs["in_tissue"]`` (1; only in-tissue spots are kept),
``obsm["spatial"]`` (float x, y), ``X`` (raw counts, float32 CSR),
unique ``obs_names``/``var_names`` and ``uns["stentrans"]`` with ``lattice``,
``source``, ``format``, ``input_sha256`` and ``grid``
(:meth:`stentrans.lattice.Grid.to_dict`). Space Ranger inputs also carry
``uns["spatial"][library_id]`` in scanpy's layout.

Where no pixel coordinates exist, ``obsm["spatial"]`` is the lattice position
in micrometres: square (ST) ``x = 200 * array_col``, ``y = 200 *
array_row`` (200 um spot pitch); hex (Visium) ``x = 50 * array_col``,
``y = 50 * sqrt(3) * array_row`` (100 um spot pitch). The units are stated in
``uns["stentrans"]["spatial_units"]``.

Bad input raises :class:`~stentrans.InputError` naming file, field and value.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import re
import warnings
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._errors import InputError
from ._utils import sha256_file
from .lattice import LATTICES, fit_grid, spots_to_pixels

__all__ = ["read", "read_positions", "snap_to_lattice", "summary", "register_cli", "SPOT_PITCH_UM"]

log = logging.getLogger("stentrans")

#: centre-to-centre spot distance (um) used for ``obsm["spatial"]`` when the
#: input has no pixel coordinates
SPOT_PITCH_UM = {"square": 200.0, "hex": 100.0}

_DEFAULT_SNAP_TOL = 0.3
_ST_ID = re.compile(r"^\s*(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*[xX]\s*(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*$")
_POS_COLUMNS = ["barcode", "in_tissue", "array_row", "array_col", "pxl_row_in_fullres", "pxl_col_in_fullres"]
_IO_ERRORS = (OSError, EOFError, zlib.error, UnicodeDecodeError)
_TABLE_SUFFIXES = (".tsv", ".csv", ".txt", ".tab")


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------
def _examples(values, k: int = 5) -> str:
    values = list(values)
    s = ", ".join(str(v) for v in values[:k])
    return s + (f", ... ({len(values)} in all)" if len(values) > k else "")


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _open_text(path: Path):
    if _is_gzip(path):
        return gzip.open(path, "rt", newline="")
    return open(path, "rt", newline="")


def _strip_gz(name: str) -> str:
    return name[:-3] if name.lower().endswith(".gz") else name


def _is_table_name(path: Path) -> bool:
    return _strip_gz(path.name.lower()).endswith(_TABLE_SUFFIXES)


def _io_error(path, err) -> InputError:
    if isinstance(err, (EOFError, zlib.error, gzip.BadGzipFile)) or "gzip" in str(err).lower() or "compressed" in str(err).lower():
        return InputError(path, "file", f"corrupt or truncated gzip data ({type(err).__name__}: {err})")
    if isinstance(err, UnicodeDecodeError):
        return InputError(path, "file", f"not a text file ({err.reason} at byte {err.start})")
    return InputError(path, "file", f"cannot be read ({type(err).__name__}: {err})")


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise InputError(path, "path", "file or folder not found")


def _first_lines(path: Path, n: int = 2) -> list[str]:
    try:
        with _open_text(path) as fh:
            out = []
            for _ in range(n):
                line = fh.readline()
                if not line:
                    break
                out.append(line.rstrip("\r\n"))
            return out
    except _IO_ERRORS as err:
        raise _io_error(path, err) from None


def _sniff_sep(path: Path, first_line: str) -> str:
    name = _strip_gz(path.name.lower())
    guess = "," if name.endswith(".csv") else "\t"
    other = "\t" if guess == "," else ","
    if guess not in first_line and other in first_line:
        return other
    return guess


def _split(line: str, sep: str) -> list[str]:
    return next(csv.reader([line], delimiter=sep)) if line else []


def _is_number(s: str) -> bool:
    try:
        float(s)
    except (TypeError, ValueError):
        return False
    return s.strip().lower() not in ("nan", "inf", "-inf", "+inf", "infinity")


# ---------------------------------------------------------------------------
# count tables
# ---------------------------------------------------------------------------
def _read_table(path: Path, field: str = "counts") -> pd.DataFrame:
    """A numeric table with labels in the first column and the header row.

    The header may or may not have a corner cell. Duplicate column labels,
    non-numeric cells, NaN and negative values are errors naming the cell.
    """
    lines = _first_lines(path, 2)
    if not lines or not lines[0].strip():
        raise InputError(path, field, "empty file (no header, no values)")
    sep = _sniff_sep(path, lines[0])
    header = _split(lines[0], sep)
    if len(lines) < 2 or not lines[1].strip():
        raise InputError(path, field, "empty matrix: a header but no data rows")
    ncol = len(_split(lines[1], sep))
    if len(header) == ncol:
        columns = header[1:]
    elif len(header) == ncol - 1:
        columns = header
    else:
        raise InputError(path, "header", f"{len(header)} header fields but {ncol} fields in the first data row")
    columns = [c.strip() for c in columns]
    if not columns:
        raise InputError(path, field, "empty matrix: no value columns")
    dup = pd.Index(columns)[pd.Index(columns).duplicated()]
    if len(dup):
        dup = pd.unique(dup)
        if _parse_st_ids(dup)[0].all():
            raise InputError(path, "spot ids", f"duplicate spot id(s) in the header: {_examples(dup)}")
        raise InputError(path, "genes", f"duplicate gene(s) (column labels): {_examples(dup)}")
    try:
        df = pd.read_csv(
            path,
            sep=sep,
            header=None,
            skiprows=1,
            index_col=0,
            engine="c",
            compression="gzip" if _is_gzip(path) else None,
            skip_blank_lines=True,
            low_memory=False,
        )
    except pd.errors.EmptyDataError:
        raise InputError(path, field, "empty matrix: no data rows") from None
    except pd.errors.ParserError as err:
        raise InputError(path, "rows", f"malformed table ({str(err).strip()})") from None
    except _IO_ERRORS as err:
        raise _io_error(path, err) from None
    if df.shape[1] != len(columns):
        raise InputError(path, "header", f"{len(columns)} column labels but {df.shape[1]} value columns")
    df.columns = columns
    df.index = df.index.astype(str).str.strip()
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise InputError(path, field, f"empty matrix ({df.shape[0]} x {df.shape[1]})")
    # non-numeric cells
    bad_cols = [c for c, t in zip(df.columns, df.dtypes) if not (pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t))]
    if bad_cols:
        col = bad_cols[0]
        num = pd.to_numeric(df[col], errors="coerce")
        rows = df.index[num.isna() & df[col].notna()]
        row = rows[0] if len(rows) else df.index[0]
        raise InputError(path, field, f"non-numeric value {str(df.at[row, col])!r} at row {row!r}, column {col!r}")
    values = df.to_numpy(dtype=np.float64, copy=False)
    nan = np.isnan(values)
    if nan.any():
        i, j = np.argwhere(nan)[0]
        raise InputError(path, field, f"{int(nan.sum())} missing/NaN value(s), e.g. at row {df.index[i]!r}, column {df.columns[j]!r}")
    if np.isinf(values).any():
        i, j = np.argwhere(np.isinf(values))[0]
        raise InputError(path, field, f"infinite value at row {df.index[i]!r}, column {df.columns[j]!r}")
    neg = values < 0
    if neg.any():
        i, j = np.argwhere(neg)[0]
        raise InputError(path, field, f"{int(neg.sum())} negative count(s), e.g. {values[i, j]:g} at row {df.index[i]!r}, column {df.columns[j]!r}")
    return df


def _parse_st_ids(ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ok, x, y) for spot ids ``XxY``."""
    ids = pd.Index(ids).astype(str)
    parts = ids.str.extract(_ST_ID)
    ok = parts[0].notna().to_numpy()
    x = pd.to_numeric(parts[0], errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(parts[1], errors="coerce").to_numpy(dtype=float)
    return ok, x, y


def _check_unique_ids(ids, path, field) -> None:
    idx = pd.Index(ids)
    if idx.has_duplicates:
        raise InputError(path, field, f"duplicate spot id(s): {_examples(pd.unique(idx[idx.duplicated()]))}")


def _table_matrix(df: pd.DataFrame, spots_on_rows: bool, path: Path):
    """(X csr float32, spot ids, gene ids) from a table in either orientation."""
    if spots_on_rows:
        spots, genes = df.index, df.columns
        X = sp.csr_matrix(df.to_numpy(dtype=np.float32))
    else:
        spots, genes = df.columns, df.index
        X = sp.csr_matrix(df.to_numpy(dtype=np.float32).T)
    _check_unique_ids(spots, path, "spot ids")
    g = pd.Index(genes)
    if g.has_duplicates:
        raise InputError(path, "genes", f"duplicate gene(s): {_examples(pd.unique(g[g.duplicated()]))}")
    return X, pd.Index(spots.astype(str)), pd.Index(g.astype(str))


# ---------------------------------------------------------------------------
# lattice coordinates
# ---------------------------------------------------------------------------
def _snap_integer(r, c, ids, tol: float, path, field: str):
    """Snap float lattice coordinates to the nearest integers (within ``tol``)."""
    r = np.asarray(r, dtype=float)
    c = np.asarray(c, dtype=float)
    bad_nan = ~(np.isfinite(r) & np.isfinite(c))
    if bad_nan.any():
        raise InputError(path, field, f"missing/non-numeric coordinates for spot(s) {_examples(np.asarray(ids)[bad_nan])}")
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


def snap_to_lattice(xy, lattice: str = "auto", tol: float = _DEFAULT_SNAP_TOL, ids=None, source=None):
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


def _lattice_spatial(r, c, lattice: str) -> np.ndarray:
    pitch = SPOT_PITCH_UM[lattice]
    if lattice == "hex":
        return np.column_stack([np.asarray(c, float) * pitch / 2, np.asarray(r, float) * pitch * np.sqrt(3) / 2])
    return np.column_stack([np.asarray(c, float) * pitch, np.asarray(r, float) * pitch])


def _spatial_units(lattice: str) -> str:
    if lattice == "hex":
        return "um from lattice coordinates: x = 50 * array_col, y = 50 * sqrt(3) * array_row (100 um spot pitch)"
    return "um from lattice coordinates: x = 200 * array_col, y = 200 * array_row (200 um spot pitch)"


# ---------------------------------------------------------------------------
# AnnData assembly
# ---------------------------------------------------------------------------
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
    adata.obs["array_row"] = r.astype(np.int64)
    adata.obs["array_col"] = c.astype(np.int64)
    adata.obs["in_tissue"] = np.ones(adata.n_obs, dtype=np.int64)
    units = "pixels (full-resolution image)"
    if "spatial" not in adata.obsm:
        adata.obsm["spatial"] = _lattice_spatial(r, c, lat)
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


def _check_counts_sparse(X, path, field="counts") -> None:
    data = X.data if sp.issparse(X) else np.asarray(X).ravel()
    if data.size == 0:
        return
    if not np.isfinite(data).all():
        raise InputError(path, field, f"{int((~np.isfinite(data)).sum())} NaN/infinite count(s)")
    if (data < 0).any():
        raise InputError(path, field, f"{int((data < 0).sum())} negative count(s), e.g. {data[data < 0][0]:g}")


# ---------------------------------------------------------------------------
# Space Ranger
# ---------------------------------------------------------------------------
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
    for name in ("tissue_positions.csv", "tissue_positions_list.csv", "tissue_positions.csv.gz", "tissue_positions_list.csv.gz"):
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


def _read_10x_h5(path: Path):
    import h5py
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
            if "matrix" not in f:
                raise InputError(path, "/matrix", "not a 10x feature-barcode HDF5 file (group /matrix missing)")
        with warnings.catch_warnings():
            # duplicate gene symbols are made unique by the caller
            warnings.filterwarnings("ignore", message="Variable names are not unique")
            ad = sc.read_10x_h5(path)
    except InputError:
        raise
    except KeyError as err:
        raise InputError(path, "/matrix", f"incomplete 10x HDF5 layout (missing {err})") from None
    except (*_IO_ERRORS, ValueError) as err:
        raise InputError(path, "file", f"cannot be read as 10x HDF5 ({type(err).__name__}: {err})") from None
    return ad, attrs


def _read_10x_mtx(folder: Path):
    import scanpy as sc

    main = _mtx_main_file(folder)
    try:
        ad = sc.read_10x_mtx(folder, var_names="gene_symbols", make_unique=True)
    except FileNotFoundError as err:
        raise InputError(folder, Path(err.filename or "").name or "file", "file not found in the matrix folder") from None
    except (*_IO_ERRORS, ValueError, IndexError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(main, "file", f"cannot be read as a 10x matrix folder ({type(err).__name__}: {err})") from None
    return ad, {}


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


def read_positions(path) -> pd.DataFrame:
    """Spot positions as a DataFrame indexed by spot id (all spots, in and out of tissue).

    ``path`` is a Space Ranger ``outs`` folder (or its parent, or its
    ``spatial`` folder), a ``tissue_positions.csv`` (header) or
    ``tissue_positions_list.csv`` (no header) file, or a coordinates table
    ``spot id, row, col`` (header optional; columns named ``array_row``/
    ``row``/``y`` and ``array_col``/``col``/``x`` when there is one).

    Columns: ``in_tissue`` (int, 1 when the file has no such column),
    ``array_row``, ``array_col`` (float, as in the file) and, where present,
    ``pxl_row_in_fullres``, ``pxl_col_in_fullres``.
    """
    path = Path(path)
    _check_exists(path)
    if path.is_dir():
        outs = _find_outs(path)
        pf = _positions_file(outs) if outs else None
        if pf is None and (path / "tissue_positions.csv").exists():
            pf = path / "tissue_positions.csv"
        if pf is None and (path / "tissue_positions_list.csv").exists():
            pf = path / "tissue_positions_list.csv"
        if pf is None:
            raise InputError(path, "spatial/tissue_positions.csv", "no positions file found (counts without positions)")
        path = pf
    lines = _first_lines(path, 2)
    if not lines or not lines[0].strip():
        raise InputError(path, "positions", "empty file")
    sep = _sniff_sep(path, lines[0])
    first = _split(lines[0], sep)
    has_header = not (len(first) >= 3 and all(_is_number(v) for v in first[1:]))
    try:
        df = pd.read_csv(path, sep=sep, header=0 if has_header else None, dtype={0: str} if not has_header else None, engine="c", compression="gzip" if _is_gzip(path) else None)
    except pd.errors.EmptyDataError:
        raise InputError(path, "positions", "empty file") from None
    except pd.errors.ParserError as err:
        raise InputError(path, "rows", f"malformed table ({str(err).strip()})") from None
    except _IO_ERRORS as err:
        raise _io_error(path, err) from None
    if df.shape[0] == 0:
        raise InputError(path, "positions", "no spots (header only)")
    if not has_header:
        if df.shape[1] == 6:
            df.columns = _POS_COLUMNS
        elif df.shape[1] == 3:
            df.columns = ["barcode", "array_row", "array_col"]
        elif df.shape[1] == 5:
            df.columns = ["barcode", "array_row", "array_col", "pxl_row_in_fullres", "pxl_col_in_fullres"]
        else:
            raise InputError(path, "columns", f"{df.shape[1]} columns without a header; expected 3 (id, row, col) or 6 (Space Ranger tissue_positions_list.csv)")
    else:
        names = [str(c).strip() for c in df.columns]
        low = [n.lower() for n in names]

        def pick(options):
            for o in options:
                if o in low:
                    return names[low.index(o)]
            return None

        rcol = pick(["array_row", "row", "arr_row", "y"])
        ccol = pick(["array_col", "col", "column", "arr_col", "x"])
        idcol = pick(["barcode", "barcodes", "spot", "spot_id", "id"]) or names[0]
        if rcol is None or ccol is None:
            if len(names) == 3:
                idcol, rcol, ccol = names
            else:
                raise InputError(path, "header", f"cannot find row/col columns among {names} (expected array_row/array_col or row/col)")
        df.columns = names
        ren = {idcol: "barcode", rcol: "array_row", ccol: "array_col"}
        df = df.rename(columns=ren)
    df["barcode"] = df["barcode"].astype(str).str.strip()
    _check_unique_ids(df["barcode"], path, "barcode")
    if "in_tissue" not in df.columns:
        df["in_tissue"] = 1
    out = pd.DataFrame(index=pd.Index(df["barcode"].to_numpy(), name="barcode"))
    for col in ("in_tissue", "array_row", "array_col", "pxl_row_in_fullres", "pxl_col_in_fullres"):
        if col not in df.columns:
            continue
        v = pd.to_numeric(df[col], errors="coerce")
        bad = v.isna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(path, col, f"non-numeric or missing value {str(df[col].iloc[i])!r} for spot {df['barcode'].iloc[i]!r}")
        out[col] = v.to_numpy()
    it = out["in_tissue"].to_numpy()
    if not np.isin(it, (0, 1)).all():
        i = int(np.flatnonzero(~np.isin(it, (0, 1)))[0])
        raise InputError(path, "in_tissue", f"value {it[i]!r} for spot {out.index[i]!r} is not 0 or 1")
    out["in_tissue"] = it.astype(np.int64)
    return out


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
    return {str(k): float(v) for k, v in d.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


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


# ---------------------------------------------------------------------------
# pairing counts with positions
# ---------------------------------------------------------------------------
def _pair(counts_path: Path, pos_path: Path, *, lattice: str, snap_tol: float, fmt: str, source: Path, library_id=None, auto_hex: bool = True):
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
        adata.var_names_make_unique()
        _check_counts_sparse(adata.X, main_file)
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
    extra = {"n_out_of_tissue_dropped": n_out, "n_positions_without_counts": int((pos["in_tissue"] == 1).sum() - inside.sum()), "snap": snap, "positions_file": str(pos_file), "counts_format": mfmt}
    outs = _find_outs(pos_path) if pos_path.is_dir() else (_find_outs(pos_path.parent.parent) if pos_path.parent.name == "spatial" else None)
    if outs is not None and has_px:
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
    return _finish(adata, path=source, fmt=fmt, main_file=main_file, lattice=lattice, auto_hex=auto_hex, extra=extra)


# ---------------------------------------------------------------------------
# ST tables
# ---------------------------------------------------------------------------
def _read_st(path: Path, lattice: str, snap_tol: float):
    import anndata as ad_

    df = _read_table(path)
    ok_r, xr, yr = _parse_st_ids(df.index)
    ok_c, xc, yc = _parse_st_ids(df.columns)
    if ok_r.mean() >= 0.5 and ok_r.mean() >= ok_c.mean():
        rows, ok, x, y = True, ok_r, xr, yr
    elif ok_c.mean() >= 0.5:
        rows, ok, x, y = False, ok_c, xc, yc
    else:
        raise InputError(path, "spot ids", f"no spot coordinates (counts without positions): neither the row labels (e.g. {_examples(df.index, 3)}) nor the column labels are spot ids 'XxY'; pass coords= a coordinates file")
    X, spots, genes = _table_matrix(df, rows, path)
    if not ok.all():
        raise InputError(path, "spot ids", f"{int((~ok).sum())} spot id(s) not of the form 'XxY': {_examples(np.asarray(spots)[~ok])}")
    r, c, snap = _snap_integer(y, x, np.asarray(spots), snap_tol, path, "spot ids")
    adata = ad_.AnnData(X=X, obs=pd.DataFrame(index=spots), var=pd.DataFrame(index=genes))
    adata.obs["in_tissue"] = 1
    adata.obs["array_row"] = r
    adata.obs["array_col"] = c
    adata.obs["spot_x"] = x
    adata.obs["spot_y"] = y
    lat = _resolve_lattice(lattice, r, c, path, auto_hex=False)
    pitch = SPOT_PITCH_UM[lat]
    if lat == "hex":
        adata.obsm["spatial"] = np.column_stack([x * pitch / 2, y * pitch * np.sqrt(3) / 2])
    else:
        adata.obsm["spatial"] = np.column_stack([x * pitch, y * pitch])
    ad = _finish(adata, path=path, fmt="st_table", main_file=path, lattice=lat, auto_hex=False, resolved=True, extra={"snap": snap, "orientation": "spots x genes" if rows else "genes x spots"})
    ad.uns["stentrans"]["spatial_units"] = _spatial_units(lat).replace("array_col", "X").replace("array_row", "Y") + " (X, Y as in the spot ids, before snapping)"
    return ad


# ---------------------------------------------------------------------------
# h5ad
# ---------------------------------------------------------------------------
def _read_h5ad_file(path: Path):
    import anndata as ad_

    try:
        return ad_.read_h5ad(path)
    except (*_IO_ERRORS, KeyError, ValueError, TypeError) as err:
        raise InputError(path, "file", f"cannot be read as .h5ad ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None


def _read_h5ad(path: Path, lattice: str, snap_tol: float, layer: str | None):
    adata = _read_h5ad_file(path)
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
    _check_counts_sparse(adata.X, path, x_from)
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
    extra = {"x_from": x_from}
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
    return _finish(adata, path=path, fmt="h5ad", main_file=path, lattice=lat_in, auto_hex=auto_hex, extra=extra)


# ---------------------------------------------------------------------------
# public entry point
# ---------------------------------------------------------------------------
def read(path, lattice: str = "auto", counts=None, *, coords=None, snap_tol: float = _DEFAULT_SNAP_TOL, layer: str | None = None, library_id: str | None = None):
    """Read spatial counts onto a spot lattice.

    Parameters
    ----------
    path
        ``.h5ad``; Space Ranger ``outs`` folder (or its parent, its
        ``filtered_feature_bc_matrix`` folder or ``.h5``); ST count table
        ``.tsv``/``.csv`` (``.gz``) with ``XxY`` spot ids; a counts table with
        ``coords=``; or a positions source (Space Ranger folder or positions
        file) with ``counts=``.
    lattice
        ``"auto"`` (hex when the coordinates form the Visium checkerboard,
        all ``array_row + array_col`` even, for Space Ranger / coordinate
        inputs; ST tables are square), ``"square"`` or ``"hex"``. An explicit
        lattice the data contradicts is an :class:`InputError`.
    counts
        Count matrix (10x ``.h5``, mtx folder, ``.h5ad`` or table) for a
        ``path`` that only holds positions.
    coords
        Coordinates table (spot id, row, col; or a Space Ranger positions
        file) for a counts table ``path``.
    snap_tol
        Largest distance (lattice units, per axis; for pixel positions in
        spacings) a coordinate may be from its lattice point.
    layer
        ``.h5ad`` only: layer holding the raw counts (default: ``"counts"``
        when present, else ``X``).
    library_id
        Key of ``uns["spatial"]`` for Space Ranger inputs (default: the
        library id in the HDF5 file, else the sample folder name).

    Returns
    -------
    AnnData with in-tissue spots only, raw counts in ``X`` (float32 CSR).
    """
    path = Path(path)
    _check_exists(path)
    if lattice not in ("auto",) + LATTICES:
        raise InputError(path, "lattice", f"{lattice!r} is not one of auto, square, hex")
    snap_tol = float(snap_tol)
    if not (0 <= snap_tol < 0.5):
        raise InputError(path, "snap_tol", f"{snap_tol:g} must be in [0, 0.5)")
    if counts is not None and coords is not None:
        raise InputError(path, "counts/coords", "give either counts= (path holds positions) or coords= (path holds counts), not both")
    if counts is not None:
        counts = Path(counts)
        _check_exists(counts)
        return _pair(counts, path, lattice=lattice, snap_tol=snap_tol, fmt="positions+counts", source=path, library_id=library_id)
    if coords is not None:
        coords = Path(coords)
        _check_exists(coords)
        return _pair(path, coords, lattice=lattice, snap_tol=snap_tol, fmt="counts+coords", source=path, library_id=library_id)

    name = path.name.lower()
    if path.is_dir():
        outs = _find_outs(path)
        if outs is None:
            raise InputError(path, "format", "folder is not a Space Ranger outs folder (no spatial/, filtered_feature_bc_matrix.h5 or filtered_feature_bc_matrix/)")
        m = path if (path / "matrix.mtx.gz").exists() or (path / "matrix.mtx").exists() else _matrix_source(outs)
        pf = _positions_file(outs)
        if m is None:
            raise InputError(outs, "filtered_feature_bc_matrix", "no count matrix (positions without counts): expected filtered_feature_bc_matrix.h5 or filtered_feature_bc_matrix/; pass counts= a matrix")
        if pf is None:
            raise InputError(outs, "spatial/tissue_positions.csv", "no positions file (counts without positions)")
        return _pair(m, outs, lattice=lattice, snap_tol=snap_tol, fmt="spaceranger", source=path, library_id=library_id)
    if name.endswith(".h5ad"):
        return _read_h5ad(path, lattice, snap_tol, layer)
    if name.endswith(".h5"):
        outs = path.parent
        if _positions_file(outs) is None:
            raise InputError(path, "positions", "10x HDF5 matrix without spatial/tissue_positions.csv beside it (counts without positions); pass coords=")
        return _pair(path, outs, lattice=lattice, snap_tol=snap_tol, fmt="spaceranger", source=path, library_id=library_id)
    if _is_table_name(path):
        if _strip_gz(name).startswith("tissue_positions"):
            raise InputError(path, "counts", "a positions file without counts (positions without counts); pass counts= a count matrix")
        return _read_st(path, lattice, snap_tol)
    raise InputError(path, "format", f"unknown input format {path.suffix or path.name!r}: expected .h5ad, a Space Ranger outs folder, a 10x .h5, or a .tsv/.csv[.gz] count table")


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------
def _add_read_args(p) -> None:
    p.add_argument("--lattice", choices=("auto",) + LATTICES, default="auto", help="spot lattice (default: auto)")
    p.add_argument("--coords", default=None, help="coordinates table (spot id, row, col) for a counts table")
    p.add_argument("--counts", default=None, help="count matrix for an input that only holds positions")
    p.add_argument("--snap-tol", type=float, default=_DEFAULT_SNAP_TOL, help="largest off-lattice distance that is snapped (default 0.3)")


def _read_args(args):
    return read(args.input, lattice=args.lattice, counts=args.counts, coords=args.coords, snap_tol=args.snap_tol)


def summary(adata) -> dict:
    """Spots, genes, lattice, grid shape and occupancy of a read AnnData."""
    from .grid import grid_of

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


def _cmd_info(args) -> int:
    s = summary(_read_args(args))
    u, v = s["grid"]
    print(f"file: {s['source']}")
    print(f"format: {s['format']}")
    print(f"spots: {s['spots']}")
    print(f"genes: {s['genes']}")
    print(f"lattice: {s['lattice']}")
    print(f"grid: {u} x {v} (u x v)")
    print(f"occupied: {s['occupied']:.3f} ({s['spots']} of {s['lattice_points']} lattice points of the grid)")
    return 0


def _cmd_qc(args) -> int:
    from . import pp
    from ._utils import atomic_path

    adata = _read_args(args)
    out = pp.qc(
        adata,
        min_counts=args.min_counts,
        min_spot_fraction=args.min_spot_fraction,
        min_spots=args.min_spots,
        normalize=args.normalize,
        log1p=args.log1p,
    )
    with atomic_path(args.output) as tmp:
        out.write_h5ad(tmp)
    log.info("qc: %d spots x %d genes -> %s", out.n_obs, out.n_vars, args.output)
    return 0


def register_cli(subparsers) -> None:
    """Add ``info`` and ``qc`` to the ``stentrans`` command line."""
    p = subparsers.add_parser("info", help="read an input and print spots, genes, lattice and grid", description="Read FILE and print spots, genes, lattice, grid shape (u x v), fraction of the grid's lattice points occupied, and the source format.")
    p.add_argument("input", metavar="FILE", help=".h5ad, Space Ranger outs folder, .h5, or .tsv/.csv[.gz] count table")
    _add_read_args(p)
    p.set_defaults(func=_cmd_info)

    q = subparsers.add_parser("qc", help="read, filter spots and genes, write .h5ad", description="Read INPUT, drop low-count spots and rarely detected genes (stentrans.pp.filter), write OUT.h5ad atomically.")
    q.add_argument("input", metavar="INPUT")
    q.add_argument("-o", "--output", required=True, metavar="OUT.h5ad")
    _add_read_args(q)
    q.add_argument("--min-counts", type=float, default=0, help="drop spots with fewer total counts (default 0)")
    q.add_argument("--min-spot-fraction", type=float, default=0.1, help="keep genes detected in more than this fraction of spots (default 0.1)")
    q.add_argument("--min-spots", type=int, default=None, help="keep genes detected in at least N spots (overrides --min-spot-fraction)")
    q.add_argument("--normalize", action="store_true", help="library-size normalisation to 1e4 counts per spot")
    q.add_argument("--log1p", action="store_true", help="log(1 + x) after normalisation")
    q.set_defaults(func=_cmd_qc)
