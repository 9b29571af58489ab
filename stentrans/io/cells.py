"""Cell-level and subcellular tables: their columns, and reading them (:func:`read_cells`) for binning.

The binning itself is :mod:`.binning` (:func:`~.binning.square_bins`, the
paper's squares for MP and AMHB, and :func:`~.binning.pseudospots`, disks on
a lattice); :func:`bin_cells` is the in-memory entry for a table of cells or
molecules and their counts: it checks the columns and bins the
:class:`~.points.Points` they make into squares.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._errors import InputError
from ._text import _IO_ERRORS, _check_counts, _first_lines, _split
from .points import find_column, row_labels, shown_columns

log = logging.getLogger("stentrans.binning")

#: the x / y names tried when only the other coordinate column is named
_BIN_X, _BIN_Y = "x", "y"

__all__ = ["BinConfig", "bin_cells", "read_cells"]


@dataclass
class BinConfig:
    """Column names and the tissue rule of binning (their defaults, written once here).

    Column names ``None`` are detected (:func:`table_columns`), in any case.
    """

    x: str | None = field(default=None, metadata={"help": "x coordinate column (default: detected)"})
    y: str | None = field(default=None, metadata={"help": "y coordinate column (default: detected)"})
    gene: str | None = field(default=None, metadata={"help": "gene column of one-molecule-per-row tables (default: detected)", "flag": "--gene-column"})
    min_cells: int = field(default=1, metadata={"help": "drop squares with fewer cells/molecules"})


_BIN = BinConfig()
#: centroid columns ``(x, y)`` of cell tables, tried in this order when none are named (any case):
#: generic, Xenium ``cells.csv``, MERSCOPE ``cell_metadata.csv``, CosMx ``metadata_file.csv``
CENTROIDS = (("x", "y"), ("x_centroid", "y_centroid"), ("center_x", "center_y"), ("CenterX_global_px", "CenterY_global_px"))


def centroid_columns(have, x: str | None = None, y: str | None = None, source=None) -> tuple[str | None, str | None]:
    """The centroid columns of a cell table as ``have`` spells them: the named ones (any case), else the first pair of :data:`CENTROIDS` present; ``None`` where not found."""
    if x is not None or y is not None:
        return (find_column(have, x or _BIN_X, source=source, role="x"), find_column(have, y or _BIN_Y, source=source, role="y"))
    for cx, cy in CENTROIDS:
        fx, fy = find_column(have, cx, source=source, role="x"), find_column(have, cy, source=source, role="y")
        if fx is not None and fy is not None:
            return fx, fy
    return None, None


def molecule_columns(have, x: str | None = None, y: str | None = None, gene: str | None = None, source=None) -> dict | None:
    """``{"x", "y", "gene"}`` when ``have`` is a one-molecule-per-row table, else ``None``.

    With ``gene`` named the table is one (the column must exist; x/y as
    :func:`~.molecules.detect_columns` finds them); without, when a molecule
    layout (:data:`~.molecules.LAYOUTS`) fits.
    """
    from .molecules import detect_columns

    if gene is not None:
        cols, _ = detect_columns(have, x=x, y=y, gene=gene, source=source)
        return cols
    try:
        cols, _ = detect_columns(have, x=x, y=y, source=source)
    except InputError:
        return None
    return cols


def no_layout(source, have) -> InputError:
    """The error for a table that fits no layout: the columns found, the names expected and the flags that choose them."""
    from .molecules import LAYOUTS

    mol = ", ".join(f"{lay.x}/{lay.y}/{lay.gene}" for lay in LAYOUTS)
    cen = ", ".join(f"{cx}/{cy}" for cx, cy in CENTROIDS)
    return InputError(
        source,
        "columns",
        f"no layout fits the columns found ({shown_columns(have)}): a molecule table needs x, y and gene columns ({mol}), "
        f"a cell table x/y centroid columns ({cen}) and numeric gene columns (names in any case); "
        "name them with --x, --y and --gene (--format chooses the reader, --drop the numeric columns that are not genes; see stentrans bin --help)",
    )

# numeric columns with these names are cell ids, not genes
_ID_COLUMN = re.compile(r"^(unnamed: ?0|cell|cells|cell_?id|cellid|id|index|barcode|cell_?index)$", re.IGNORECASE)


def _as_csr(counts, n_rows: int, source, genes=None) -> sp.csr_matrix:
    if isinstance(counts, pd.DataFrame):
        counts = counts.to_numpy()
    try:
        X = sp.csr_matrix(counts) if not sp.issparse(counts) else counts.tocsr()
        X = X.astype(np.float64)
    except (TypeError, ValueError) as err:
        raise InputError(source, "counts", f"not a numeric matrix ({type(err).__name__}: {err})") from None
    if X.shape[0] != n_rows:
        raise InputError(source, "counts", f"{X.shape[0]} rows of counts for {n_rows} cells")
    _check_counts(X, source, "counts", var_names=genes)
    return X.astype(np.float32)


def bin_cells(coords_df: pd.DataFrame, counts=None, bin_size: float = 100.0, *, x: str | None = _BIN.x, y: str | None = _BIN.y, gene: str | None = _BIN.gene, genes=None, origin: tuple[float, float] | None = None, min_cells: int = _BIN.min_cells, source=None) -> ad.AnnData:
    """Sum cells (or molecules) into square pseudo-spots.

    Parameters
    ----------
    coords_df
        One row per cell with coordinates in columns ``x`` and ``y``; or, when
        ``counts`` is ``None``, one row per detected molecule with its gene in
        column ``gene`` (subcellular data). Names ``None`` are detected as
        :func:`read_cells` detects them; every name matches in any case.
    counts
        ``(n_cells, n_genes)`` counts (array, sparse matrix or DataFrame whose
        columns are the genes), in the row order of ``coords_df``.
    genes
        Gene names for an array ``counts`` (default: DataFrame columns, else
        ``gene0..``).
    bin_size, origin, min_cells
        As :func:`~.binning.square_bins`, which bins the cells (molecules)
        and whose AnnData this returns.
    """
    bin_size = float(bin_size)
    if not np.isfinite(bin_size) or bin_size <= 0:
        raise InputError(source, "bin_size", f"{bin_size:g} must be a positive number")
    have = list(map(str, coords_df.columns))
    if counts is None:
        cols = molecule_columns(have, x, y, gene, source)
        if cols is None:
            raise no_layout(source, have)
        x, y, gene = cols["x"], cols["y"], cols["gene"]
    else:
        fx, fy = centroid_columns(have, x, y, source)
        for flag, col, want in (("--x", fx, x), ("--y", fy, y)):
            if col is None:
                raise InputError(source, flag, f"column {want!r} not found (have {shown_columns(have)})") if want is not None else no_layout(source, have)
        x, y = fx, fy
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
        gcol = coords_df[gene]
        empty = gcol.isna().to_numpy() | (gcol.astype(str).str.strip() == "").to_numpy()
        if empty.any():
            raise InputError(source, gene, f"{int(empty.sum())} molecule(s) without a gene name, e.g. row {coords_df.index[np.flatnonzero(empty)[0]]!r}")
        codes, gene_names = pd.factorize(gcol.astype(str), sort=True)
        X = sp.csr_matrix((np.ones(n, dtype=np.float32), (np.arange(n), codes)), shape=(n, len(gene_names)))
        genes = list(gene_names)
        unit = "molecules"
    else:
        if genes is None:
            genes = list(map(str, counts.columns)) if isinstance(counts, pd.DataFrame) else None
        X = _as_csr(counts, n, source, genes)
        if genes is None:
            genes = [f"gene{i}" for i in range(X.shape[1])]
        if len(genes) != X.shape[1]:
            raise InputError(source, "genes", f"{len(genes)} gene names for {X.shape[1]} count columns")
        unit = "cells"

    from .binning import square_bins
    from .points import Points

    plain = isinstance(coords_df.index, pd.RangeIndex) and coords_df.index.start == 0 and coords_df.index.step == 1
    labels = None if plain else row_labels(coords_df.index)  # errors name a cell or row as the table does
    points = Points(np.column_stack([xs, ys]), X.tocsr(), pd.Index(list(map(str, genes))), kind=unit, source=str(source) if source is not None else "<memory>", columns={"x": x, "y": y}, labels=labels)
    return square_bins(points, bin_size, origin=origin, min_cells=min_cells)


def _read_cells_table(path: Path) -> pd.DataFrame:
    name = path.name.lower().removesuffix(".gz")
    sep = "," if name.endswith(".csv") else "\t"
    lines = _first_lines(path, 1)
    if not lines or not lines[0].strip():
        raise InputError(path, "header", "empty file (no header)")
    header = [h.strip() for h in _split(lines[0], sep)]
    for k, h in enumerate(header):
        if not h and k > 0:  # (a blank first label is the index column pandas writes)
            raise InputError(path, "header", f"empty label '' in column {k + 1} of the header (a column name is missing)")
    dup = pd.Index(header)[pd.Index(header).duplicated()]
    if len(dup):
        raise InputError(path, "header", f"duplicate column label(s): {', '.join(map(repr, pd.unique(dup)[:5]))}")
    try:
        return pd.read_csv(path, sep=sep)
    except (*_IO_ERRORS, ValueError) as err:
        raise InputError(path, "file", f"cannot be read as a table ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None


def _numeric_columns(df: pd.DataFrame, path, skip) -> pd.DataFrame:
    """Text columns whose values are (nearly) all numbers are counts with a bad cell: convert, or name the cell.

    A column where every value parses as a number (e.g. one ``1e400``, read
    as text) becomes numeric (the count checks see it); one where most do
    but some do not is an error naming row, column and value; text columns
    (cell types, ids) stay text and are ignored.
    """
    out = df
    for c in df.columns:
        if c in skip or pd.api.types.is_numeric_dtype(df[c]):
            continue
        col = df[c]
        present = col.notna().to_numpy()
        num = pd.to_numeric(col, errors="coerce")
        parsed = num.notna().to_numpy()
        if not present.any() or parsed.sum() < 0.5 * present.sum():
            continue
        bad = present & ~parsed
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(path, str(c), f"non-numeric value {str(col.iloc[i])!r} in row {i + 1} of a numeric (gene) column")
        if out is df:
            out = df.copy()
        out[c] = num
    return out


def read_cells(path, *, x: str | None = _BIN.x, y: str | None = _BIN.y, gene: str | None = _BIN.gene, drop=(), query: str | None = None):
    """Load cell-level or molecule-level data for :func:`bin_cells`.

    ``.h5ad``: cells are observations; coordinates from ``obs[x]``/``obs[y]``,
    else ``obsm["spatial"]``; counts from ``layers["counts"]`` when present,
    else ``X``. Tables (``.csv``/``.tsv``, optionally gzipped): a ``gene``
    column, or a molecule layout (:data:`~.molecules.LAYOUTS`) when ``gene``
    is not given, means one molecule per row (x/y: the layout's); otherwise
    one cell per row with the numeric columns other than ``x``, ``y`` and
    ``drop`` as genes (text columns and id columns such as ``cell``,
    ``cell_id``, ``Unnamed: 0`` are ignored). Column names ``None`` are
    detected (cells: the first pair of :data:`CENTROIDS`); every name matches
    in any case. A table that fits neither is an :class:`InputError` naming
    the columns found and the flags that choose them. ``query`` (a
    :meth:`pandas.DataFrame.query` string, e.g. ``"Animal_ID == 1 and Bregma
    == 0.26"``) selects rows first.

    Returns ``(coords_df, counts_or_None, genes_or_None)``; ``coords_df``
    holds the coordinate (and gene) columns under the file's names.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file", "not found")
    drop = [d for d in (drop or ()) if d]
    if path.name.lower().endswith(".h5ad"):
        try:
            a = ad.read_h5ad(path)
        except (*_IO_ERRORS, KeyError, ValueError, TypeError, RuntimeError) as err:  # h5py: RuntimeError for damaged files
            raise InputError(path, "file", f"cannot be read as .h5ad ({type(err).__name__})") from None
        obs = a.obs.copy()
        fx, fy = centroid_columns(obs.columns, x, y, path)
        if fx is None or fy is None:
            if "spatial" not in a.obsm:
                raise InputError(path, "coordinates", f'no obs[{x or "x"!r}]/obs[{y or "y"!r}] (any case) and no obsm["spatial"]')
            xy = np.asarray(a.obsm["spatial"], dtype=float)
            obs[x or _BIN_X], obs[y or _BIN_Y] = xy[:, 0], xy[:, 1]
        counts = a.layers["counts"] if "counts" in a.layers else a.X
        if query:
            sel = obs.eval(query)
            obs, counts = obs[sel.to_numpy()], counts[np.flatnonzero(sel.to_numpy())]
        return obs, counts, list(map(str, a.var_names))
    df = _read_cells_table(path)
    if query:
        try:
            df = df.query(query)
        except Exception as err:  # pandas raises many kinds for a bad expression
            raise InputError(path, "query", f"{query!r}: {type(err).__name__}: {err}") from None
    have = list(map(str, df.columns))
    mol = molecule_columns(have, x, y, gene, path)
    if mol is not None:
        return df[[mol["x"], mol["y"], mol["gene"]]], None, None
    fx, fy = centroid_columns(have, x, y, path)
    for flag, col, want in (("--x", fx, x), ("--y", fy, y)):
        if col is None:
            raise InputError(path, flag, f"column {want!r} not found (have {shown_columns(have)})") if want is not None else no_layout(path, have)
    x, y = fx, fy
    missing = [c for c in drop if c not in df.columns]
    if missing:
        raise InputError(path, "drop", f"column(s) not found: {', '.join(missing)}")
    ids = [c for c in df.columns if _ID_COLUMN.match(str(c)) and c not in (x, y)]
    if ids:
        log.info("%s: column(s) %s taken as cell ids, not genes", path, ", ".join(map(str, ids)))
    df = _numeric_columns(df, path, skip=[x, y, *drop, *ids])
    gene_cols = [c for c in df.columns if c not in (x, y) and c not in drop and c not in ids and pd.api.types.is_numeric_dtype(df[c])]
    if not gene_cols:
        raise no_layout(path, have)
    return df[[x, y]], df[gene_cols], gene_cols
