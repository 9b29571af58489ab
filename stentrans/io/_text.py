"""Text inputs: gzip detection, separator sniffing and the checked parsing of count tables.

Everything here reads bytes and cells and names the file, field and value of
whatever is wrong (:class:`~stentrans.InputError`); no lattice knowledge.
"""

from __future__ import annotations

import csv
import gzip
import re
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._errors import InputError

_ST_ID = re.compile(r"^\s*(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*[xX]\s*(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*$")
_IO_ERRORS = (OSError, EOFError, zlib.error, UnicodeDecodeError)
_TABLE_SUFFIXES = (".tsv", ".csv", ".txt", ".tab")


# ---------------------------------------------------------------------------
# files
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
    empty = [i for i, c in enumerate(columns) if not c]
    if empty:
        pos = empty[0] + 1 + (len(header) - len(columns))  # 1-based field of the header line
        raise InputError(path, "header", f"empty label '' in column {pos} of the header (a gene name or spot id is missing){f'; {len(empty)} empty labels in all' if len(empty) > 1 else ''}")
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
    missing = pd.isna(df.index)
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise InputError(path, "row labels", f"empty or NA label in data row {i + 1} (line {i + 2}; a gene name or spot id is missing)")
    df.index = df.index.astype(str).str.strip()
    if (df.index == "").any():
        i = int(np.flatnonzero(df.index == "")[0])
        raise InputError(path, "row labels", f"empty label '' in data row {i + 1} (line {i + 2}; a gene name or spot id is missing)")
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
        raise InputError(path, field, f"{int(nan.sum())} missing/NaN value(s), e.g. at row {str(df.index[i])!r}, column {str(df.columns[j])!r}")
    bad = _bad_counts(values)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise InputError(path, field, f"{_count_problem(values[i, j], int(bad.sum()))} at row {str(df.index[i])!r}, column {str(df.columns[j])!r}")
    return df


#: largest count the readers accept: a larger value is no count (and its
#: float32 maps, sums and normalisations overflow to inf)
MAX_COUNT = 1e9


def _bad_counts(values: np.ndarray) -> np.ndarray:
    """Mask of values that are no counts: NaN, infinite, negative or above :data:`MAX_COUNT`."""
    values = np.asarray(values)
    return ~np.isfinite(values) | (values < 0) | (values > MAX_COUNT)


def _count_problem(v: float, n: int) -> str:
    """What is wrong with the value ``v`` (one of ``n`` such values)."""
    v = float(v)
    if np.isnan(v):
        what = "missing/NaN count"
    elif np.isinf(v):
        what = f"infinite count {v!r}"
    elif v < 0:
        what = f"negative count {v:g}"
    else:
        what = f"count {v:g} above the limit of {MAX_COUNT:g}"
    return what + (f" ({n} such values)" if n > 1 else "")


def _check_counts(X, path, field: str = "counts", obs_names=None, var_names=None) -> None:
    """Refuse NaN, infinite, negative and too large counts in a (sparse or dense) spots x genes matrix, naming spot and gene."""
    if sp.issparse(X):
        X = X.tocsr()
        data = X.data
        if data.size == 0:
            return
        bad = _bad_counts(data)
        if not bad.any():
            return
        k = int(np.flatnonzero(bad)[0])
        i = int(np.searchsorted(X.indptr, k, side="right") - 1)
        j = int(X.indices[k])
    else:
        data = np.asarray(X)
        if data.size == 0:
            return
        if data.ndim != 2:
            data = data.reshape(data.shape[0], -1) if data.ndim else data.reshape(1, 1)
        bad = _bad_counts(data)
        if not bad.any():
            return
        i, j = (int(x) for x in np.argwhere(bad)[0])
        k = None
    v = data[k] if k is not None else data[i, j]
    spot = f"spot {str(obs_names[i])!r}" if obs_names is not None and i < len(obs_names) else f"row {i}"
    gene = f"gene {str(var_names[j])!r}" if var_names is not None and j < len(var_names) else f"column {j}"
    raise InputError(path, field, f"{_count_problem(v, int(bad.sum()))}, e.g. at {spot}, {gene}")


def _parse_st_ids(ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ok, x, y) for spot ids ``XxY``."""
    ids = pd.Index(ids).astype(str)
    parts = ids.str.extract(_ST_ID)
    ok = parts[0].notna().to_numpy()
    x = pd.to_numeric(parts[0], errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(parts[1], errors="coerce").to_numpy(dtype=float)
    return ok, x, y


def _parse_st_ids_r(ids) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(ok, x, y, prefix) for spot ids ``XxY``, also as R's ``make.names`` writes them.

    R data frames prefix names that start with a digit by ``X`` (``12x5`` ->
    ``X12x5``, ``16.92x9.015`` -> ``X16.92x9.015``). The prefix is removed
    only when every id carries it and more ids parse without it; ``prefix``
    is then ``"X"``, else ``""``.
    """
    ok, x, y = _parse_st_ids(ids)
    ids = pd.Index(ids).astype(str).str.strip()
    if len(ids) and ids.str.startswith("X").all():
        ok2, x2, y2 = _parse_st_ids(ids.str.slice(1))
        if ok2.sum() > ok.sum():
            return ok2, x2, y2, "X"
    return ok, x, y, ""


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
