"""Bin cell-level or subcellular data into ST-like pseudo-spots on a square lattice.

The paper turned two single-cell / subcellular resolution data sets (MP, AMHB)
into spot data by summing the counts of everything that falls into one square
of side ``bin_size``. :func:`bin_cells` does that: square ``(i, j)`` covers
``origin_x + i * bin_size <= x < origin_x + (i + 1) * bin_size`` (likewise
``y``/``j``) and becomes the spot with ``array_col = i`` and ``array_row = j``
(the ST convention of :mod:`stentrans.io`: spot id ``"{i}x{j}"``). Squares
holding fewer than ``min_cells`` cells (molecules) are not tissue and are left
out. The result reads back with :func:`stentrans.read` as a square lattice.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._errors import InputError

log = logging.getLogger("stentrans.binning")

__all__ = ["bin_cells", "read_cells", "register_cli"]

# numeric columns with these names are cell ids, not genes
_ID_COLUMN = re.compile(r"^(unnamed: ?0|cell|cells|cell_?id|cellid|id|index|barcode|cell_?index)$", re.IGNORECASE)


def _as_csr(counts, n_rows: int, source) -> sp.csr_matrix:
    if isinstance(counts, pd.DataFrame):
        counts = counts.to_numpy()
    X = sp.csr_matrix(counts) if not sp.issparse(counts) else counts.tocsr()
    if X.shape[0] != n_rows:
        raise InputError(source, "counts", f"{X.shape[0]} rows of counts for {n_rows} cells")
    X = X.astype(np.float32)
    if X.nnz and (not np.isfinite(X.data).all() or (X.data < 0).any()):
        raise InputError(source, "counts", "counts must be finite and non-negative")
    return X


def bin_cells(coords_df: pd.DataFrame, counts=None, bin_size: float = 100.0, *, x: str = "x", y: str = "y", gene: str = "gene", genes=None, origin: tuple[float, float] | None = None, min_cells: int = 1, source=None) -> ad.AnnData:
    """Sum cells (or molecules) into square pseudo-spots.

    Parameters
    ----------
    coords_df
        One row per cell with coordinates in columns ``x`` and ``y``; or, when
        ``counts`` is ``None``, one row per detected molecule with its gene in
        column ``gene`` (subcellular data).
    counts
        ``(n_cells, n_genes)`` counts (array, sparse matrix or DataFrame whose
        columns are the genes), in the row order of ``coords_df``.
    bin_size
        Side of a pseudo-spot, in the coordinates' units.
    genes
        Gene names for an array ``counts`` (default: DataFrame columns, else
        ``gene0..``).
    origin
        Lower-left corner of square ``(0, 0)`` (default: the smallest ``x``
        and ``y``).
    min_cells
        Squares with fewer cells (molecules) are dropped.

    Returns
    -------
    AnnData with one observation per pseudo-spot: ``X`` summed counts
    (float32 CSR), ``obs["array_row"]``, ``obs["array_col"]`` (integers),
    ``obs["in_tissue"]``, ``obs["n_cells"]``, ``obs["total_counts"]``,
    ``obsm["spatial"]`` (square centres, input units) and
    ``uns["stentrans"]`` with ``lattice="square"``, ``format="binned"`` and the
    binning settings.
    """
    bin_size = float(bin_size)
    if not np.isfinite(bin_size) or bin_size <= 0:
        raise InputError(source, "bin_size", f"{bin_size:g} must be a positive number")
    for col in (x, y):
        if col not in coords_df.columns:
            raise InputError(source, "coordinates", f"column {col!r} not found (have {', '.join(map(str, coords_df.columns[:10]))})")
    xs = pd.to_numeric(coords_df[x], errors="coerce").to_numpy(float)
    ys = pd.to_numeric(coords_df[y], errors="coerce").to_numpy(float)
    bad = ~(np.isfinite(xs) & np.isfinite(ys))
    if bad.any():
        ids = coords_df.index[bad][:5]
        raise InputError(source, f"{x}/{y}", f"{bad.sum()} row(s) without finite coordinates, e.g. {', '.join(map(str, ids))}")
    n = len(xs)
    if n == 0:
        raise InputError(source, "coordinates", "no cells to bin")

    if counts is None:
        if gene not in coords_df.columns:
            raise InputError(source, "counts", f"no counts given and no {gene!r} column for one-molecule-per-row data")
        codes, gene_names = pd.factorize(coords_df[gene].astype(str), sort=True)
        X = sp.csr_matrix((np.ones(n, dtype=np.float32), (np.arange(n), codes)), shape=(n, len(gene_names)))
        genes = list(gene_names)
        unit = "molecules"
    else:
        if genes is None:
            genes = list(map(str, counts.columns)) if isinstance(counts, pd.DataFrame) else None
        X = _as_csr(counts, n, source)
        if genes is None:
            genes = [f"gene{i}" for i in range(X.shape[1])]
        if len(genes) != X.shape[1]:
            raise InputError(source, "genes", f"{len(genes)} gene names for {X.shape[1]} count columns")
        unit = "cells"

    x0, y0 = (float(np.min(xs)), float(np.min(ys))) if origin is None else (float(origin[0]), float(origin[1]))
    i = np.floor((xs - x0) / bin_size).astype(np.int64)
    j = np.floor((ys - y0) / bin_size).astype(np.int64)
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


def _read_table(path: Path) -> pd.DataFrame:
    name = path.name.lower().removesuffix(".gz")
    sep = "," if name.endswith(".csv") else "\t"
    try:
        return pd.read_csv(path, sep=sep)
    except (OSError, ValueError, UnicodeDecodeError, EOFError) as err:
        raise InputError(path, "file", f"cannot be read as a table ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None


def read_cells(path, *, x: str = "x", y: str = "y", gene: str = "gene", drop=(), query: str | None = None):
    """Load cell-level or molecule-level data for :func:`bin_cells`.

    ``.h5ad``: cells are observations; coordinates from ``obs[x]``/``obs[y]``,
    else ``obsm["spatial"]``; counts from ``layers["counts"]`` when present,
    else ``X``. Tables (``.csv``/``.tsv``, optionally gzipped): a ``gene``
    column means one molecule per row; otherwise one cell per row with the
    numeric columns other than ``x``, ``y`` and ``drop`` as genes (text
    columns and id columns such as ``cell``, ``cell_id``, ``Unnamed: 0`` are
    ignored). ``query`` (a :meth:`pandas.DataFrame.query` string,
    e.g. ``"Animal_ID == 1 and Bregma == 0.26"``) selects rows first.

    Returns ``(coords_df, counts_or_None, genes_or_None)``.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file", "not found")
    drop = [d for d in (drop or ()) if d]
    if path.name.lower().endswith(".h5ad"):
        try:
            a = ad.read_h5ad(path)
        except (OSError, KeyError, ValueError) as err:
            raise InputError(path, "file", f"cannot be read as .h5ad ({type(err).__name__})") from None
        obs = a.obs.copy()
        if x not in obs or y not in obs:
            if "spatial" not in a.obsm:
                raise InputError(path, "coordinates", f'no obs[{x!r}]/obs[{y!r}] and no obsm["spatial"]')
            xy = np.asarray(a.obsm["spatial"], dtype=float)
            obs[x], obs[y] = xy[:, 0], xy[:, 1]
        counts = a.layers["counts"] if "counts" in a.layers else a.X
        if query:
            sel = obs.eval(query)
            obs, counts = obs[sel.to_numpy()], counts[np.flatnonzero(sel.to_numpy())]
        return obs, counts, list(map(str, a.var_names))
    df = _read_table(path)
    if query:
        try:
            df = df.query(query)
        except Exception as err:  # pandas raises many kinds for a bad expression
            raise InputError(path, "query", f"{query!r}: {type(err).__name__}: {err}") from None
    if gene in df.columns:
        return df[[x, y, gene]] if x in df and y in df else df, None, None
    missing = [c for c in drop if c not in df.columns]
    if missing:
        raise InputError(path, "drop", f"column(s) not found: {', '.join(missing)}")
    ids = [c for c in df.columns if _ID_COLUMN.match(str(c)) and c not in (x, y)]
    if ids:
        log.info("%s: column(s) %s taken as cell ids, not genes", path, ", ".join(map(str, ids)))
    gene_cols = [c for c in df.columns if c not in (x, y) and c not in drop and c not in ids and pd.api.types.is_numeric_dtype(df[c])]
    if not gene_cols:
        raise InputError(path, "genes", "no numeric gene columns besides the coordinates")
    return df[[x, y]] if x in df and y in df else df, df[gene_cols], gene_cols


# ------------------------------------------------------------ CLI
def _cmd_bin(args) -> int:
    from ._utils import atomic_path

    drop = [d.strip() for d in (args.drop or "").split(",") if d.strip()]
    coords, counts, genes = read_cells(args.input, x=args.x, y=args.y, gene=args.gene_column, drop=drop, query=args.query)
    out = bin_cells(coords, counts, args.bin_size, x=args.x, y=args.y, gene=args.gene_column, genes=genes, min_cells=args.min_cells, source=args.input)
    with atomic_path(args.output, suffix=".h5ad") as tmp:
        out.write_h5ad(tmp)
    log.info("binned %s -> %s (%d spots x %d genes)", args.input, args.output, out.n_obs, out.n_vars)
    return 0


def register_cli(sub) -> None:
    p = sub.add_parser("bin", help="bin cell-level / subcellular data into square pseudo-spots (.h5ad)")
    p.add_argument("input", help=".h5ad (cells as observations) or .csv/.tsv[.gz] (cells or molecules as rows)")
    p.add_argument("-o", "--output", required=True, help="pseudo-spot .h5ad")
    p.add_argument("--bin-size", type=float, required=True, help="side of a pseudo-spot, in the coordinates' units")
    p.add_argument("--x", default="x", help="x coordinate column (default x)")
    p.add_argument("--y", default="y", help="y coordinate column (default y)")
    p.add_argument("--gene-column", default="gene", help="gene column of one-molecule-per-row tables (default gene)")
    p.add_argument("--drop", default="", help="comma-separated numeric columns that are not genes")
    p.add_argument("--query", default=None, help="pandas query selecting rows first, e.g. 'Animal_ID == 1'")
    p.add_argument("--min-cells", type=int, default=1, help="drop squares with fewer cells/molecules (default 1)")
    p.set_defaults(func=_cmd_bin)
