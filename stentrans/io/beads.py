"""Bead tables (Slide-seq) and per-cell tables with centroids, as :class:`~.points.Points`.

* Bead tables: ``.tsv``/``.csv`` (optionally gzipped) with one row per bead,
  the bead id ``XxY`` (its position, e.g. ``1705.25x3916.89`` puck pixels) in
  the first column and one column per gene (the first row holds the gene
  names, with or without a corner cell). Beads on the columns (genes on the
  rows) are read too. Rows are parsed in chunks into a sparse matrix, so a
  puck of tens of thousands of beads never sits in memory as dense text.
* Cells: ``.h5ad`` (cells as observations, centroids in ``obs[x]``/``obs[y]``
  or ``obsm["spatial"]``) or a cell table (centroid columns and one numeric
  column per gene). Parsing is :func:`stentrans.io.cells.read_cells`'s;
  each cell becomes one point at its centroid, so binning sums cells by
  centroid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._errors import InputError
from ._text import MAX_COUNT, _IO_ERRORS, _check_unique_ids, _examples, _first_lines, _io_error, _is_gzip, _parse_st_ids, _read_table, _sniff_sep, _split, _table_matrix
from .cells import _as_csr, centroid_columns, read_cells
from .molecules import read_molecules
from .points import Points, numeric_column, row_labels

__all__ = ["read_beads", "read_cell_points", "BEAD_CHUNK"]

#: bead rows parsed at a time
BEAD_CHUNK = 1000


def _check_chunk(df: pd.DataFrame, path: Path, first_row: int) -> np.ndarray:
    """Counts of a chunk as float32; the first bad cell is an error naming bead, gene and value."""
    bad_cols = [c for c, t in zip(df.columns, df.dtypes) if not (pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t))]
    if bad_cols:
        col = bad_cols[0]
        num = pd.to_numeric(df[col], errors="coerce")
        rows = np.flatnonzero(num.isna().to_numpy())
        i = int(rows[0]) if len(rows) else 0
        raise InputError(path, f"column {col!r}", f"non-numeric value {str(df[col].iloc[i])!r} at bead {df.index[i]!r} (row {first_row + i + 1})")
    values = df.to_numpy(dtype=np.float64)
    for bad, what in ((~np.isfinite(values), "missing/NaN or infinite"), (values < 0, "negative"), (values > MAX_COUNT, f"too large (above {MAX_COUNT:g})")):
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise InputError(path, f"column {df.columns[j]!r}", f"{what} value {values[i, j]:g} at bead {df.index[i]!r} (row {first_row + i + 1})")
    return values.astype(np.float32)


def _beads_on_rows(path: Path, sep: str, genes: list[str]):
    parts, ids = [], []
    try:
        reader = pd.read_csv(path, sep=sep, header=None, skiprows=1, index_col=0, chunksize=BEAD_CHUNK, compression="gzip" if _is_gzip(path) else None, na_filter=False, low_memory=False)
        for chunk in reader:
            if chunk.shape[1] != len(genes):
                raise InputError(path, "header", f"{len(genes)} gene names but {chunk.shape[1]} value columns")
            chunk.columns = genes
            chunk.index = chunk.index.astype(str).str.strip()
            parts.append(sp.csr_matrix(_check_chunk(chunk, path, sum(len(i) for i in ids))))
            ids.append(chunk.index)
    except pd.errors.ParserError as err:
        raise InputError(path, "rows", f"malformed table ({str(err).strip()})") from None
    except _IO_ERRORS as err:
        raise _io_error(path, err) from None
    if not parts:
        raise InputError(path, "rows", "no beads (a header but no data rows)")
    return sp.vstack(parts, format="csr"), pd.Index(np.concatenate([np.asarray(i) for i in ids]))


def read_beads(path) -> Points:
    """Read a bead table (``XxY`` bead ids, genes as columns) into :class:`~.points.Points`."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "path", "file not found")
    lines = _first_lines(path, 2)
    if len(lines) < 2 or not lines[0].strip():
        raise InputError(path, "header", "empty file or a header without beads")
    sep = _sniff_sep(path, lines[0])
    header, first = _split(lines[0], sep), _split(lines[1], sep)
    if len(header) == len(first):
        genes = [g.strip() for g in header[1:]]
    elif len(header) == len(first) - 1:
        genes = [g.strip() for g in header]
    else:
        raise InputError(path, "header", f"{len(header)} header fields but {len(first)} fields in the first bead row")
    row_ok = _parse_st_ids([first[0]])[0][0]
    if not row_ok and len(genes) and _parse_st_ids(genes)[0].mean() >= 0.5:  # beads on the columns
        X, ids, names = _table_matrix(_read_table(path), False, path)
    else:
        dup = pd.Index(genes)[pd.Index(genes).duplicated()]
        if len(dup):
            raise InputError(path, "genes", f"duplicate gene(s) (column labels): {_examples(pd.unique(dup))}")
        X, ids = _beads_on_rows(path, sep, genes)
        names = pd.Index(genes)
        _check_unique_ids(ids, path, "bead ids")
    ok, bx, by = _parse_st_ids(ids)
    if not ok.all():
        raise InputError(path, "bead ids", f"{int((~ok).sum())} bead id(s) not of the form 'XxY': {_examples(np.asarray(ids)[~ok])}")
    return Points(np.column_stack([bx, by]), X, names, kind="beads", source=str(path), unit="px", columns={"x": "bead id X", "y": "bead id Y"}, labels=pd.Index(np.asarray(ids, dtype=str)).map(lambda b: f"bead {b!r}"))


def read_cell_points(path, *, x: str | None = None, y: str | None = None, gene: str | None = None, count: str | None = None, drop=(), query: str | None = None) -> Points:
    """Read cells (``.h5ad`` or a cell table) into one point per cell at its centroid.

    ``x``/``y`` are detected as :func:`~.cells.read_cells` detects them
    (names in any case); a table with a gene column (or a molecule layout)
    is one molecule per row and is read by :func:`~.molecules.read_molecules`
    (with ``count``). ``drop`` and ``query`` as in :func:`~.cells.read_cells`.
    """
    path = Path(path)
    coords, counts, genes = read_cells(path, x=x, y=y, gene=gene, drop=drop, query=query)
    if counts is None:  # a gene column: one molecule per row (read_cells keeps no count column)
        return read_molecules(path, x=x, y=y, gene=gene, count=count)
    fx, fy = centroid_columns(coords.columns, x, y, path)
    labels = row_labels(coords.index, "cell")
    xs = numeric_column(coords[fx], path, fx, labels=labels)
    ys = numeric_column(coords[fy], path, fy, labels=labels)
    X = _as_csr(counts, len(xs), path)
    return Points(np.column_stack([xs, ys]), X, pd.Index(list(map(str, genes))), kind="cells", source=str(path), columns={"x": fx, "y": fy}, labels=labels)
