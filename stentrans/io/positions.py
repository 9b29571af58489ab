"""Spot positions tables: Space Ranger ``tissue_positions[_list].csv`` / ``tissue_positions.parquet`` and ``spot id, row, col`` coordinates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .._errors import InputError
from ._text import _IO_ERRORS, _check_exists, _check_unique_ids, _first_lines, _io_error, _is_gzip, _is_number, _sniff_sep, _split
from .spaceranger import _find_outs, _positions_file

__all__ = ["read_positions"]

_POS_COLUMNS = ["barcode", "in_tissue", "array_row", "array_col", "pxl_row_in_fullres", "pxl_col_in_fullres"]


#: largest pixel coordinate accepted (far beyond any image; keeps affine fits finite)
MAX_PIXEL = 1e12


def _read_text_positions(path: Path) -> tuple[pd.DataFrame, bool]:
    """A positions ``.csv``/``.tsv`` (gzipped or not), with or without a header."""
    lines = _first_lines(path, 2)
    if not lines or not lines[0].strip():
        raise InputError(path, "positions", "empty file")
    sep = _sniff_sep(path, lines[0])
    first = _split(lines[0], sep)
    has_header = not (len(first) >= 3 and all(_is_number(v) for v in first[1:]))
    kw = {"header": 0 if has_header else None, "dtype": {0: str} if not has_header else None}
    if has_header and len(lines) > 1 and len(_split(lines[1], sep)) == len(first) + 1:
        # a header without the id column's label (as R's write.csv writes it)
        kw = {"header": None, "skiprows": 1, "names": ["barcode", *[f.strip() for f in first]], "dtype": {"barcode": str}}
    try:
        df = pd.read_csv(path, sep=sep, index_col=False, engine="c", compression="gzip" if _is_gzip(path) else None, **kw)
    except pd.errors.EmptyDataError:
        raise InputError(path, "positions", "empty file") from None
    except pd.errors.ParserError as err:
        raise InputError(path, "rows", f"malformed table ({str(err).strip()})") from None
    except _IO_ERRORS as err:
        raise _io_error(path, err) from None
    return df, has_header


def _read_parquet(path: Path) -> pd.DataFrame:
    """Space Ranger's ``tissue_positions.parquet`` (Visium HD): the columns of ``tissue_positions.csv``."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(path, "file", "reading .parquet needs pyarrow (pip install pyarrow)") from None
    try:
        df = pq.read_table(path).to_pandas()
    except (*_IO_ERRORS, ValueError, TypeError) as err:  # pyarrow.ArrowInvalid is a ValueError
        msg = str(err).splitlines()[0] if str(err) else ""
        raise InputError(path, "file", f"cannot be read as parquet ({type(err).__name__}: {msg})") from None
    if df.shape[1] < 3:
        raise InputError(path, "columns", f"{df.shape[1]} column(s) {list(map(str, df.columns))}; expected barcode, in_tissue, array_row, array_col, pxl_row_in_fullres, pxl_col_in_fullres")
    return df


def read_positions(path) -> pd.DataFrame:
    """Spot positions as a DataFrame indexed by spot id (all spots, in and out of tissue).

    ``path`` is a Space Ranger ``outs`` folder (or its parent, or its
    ``spatial`` folder), a ``tissue_positions.csv`` (header),
    ``tissue_positions_list.csv`` (no header) or ``tissue_positions.parquet``
    (Visium HD bins; the same columns) file, or a coordinates table
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
        for name in ("tissue_positions_list.csv", "tissue_positions.parquet"):
            if pf is None and (path / name).exists():
                pf = path / name
        if pf is None:
            raise InputError(path, "spatial/tissue_positions.csv", "no positions file found (counts without positions)")
        path = pf
    if path.name.lower().endswith(".parquet"):
        df, has_header = _read_parquet(path), True
    else:
        df, has_header = _read_text_positions(path)
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
        if len({idcol, rcol, ccol}) < 3 or len(set(names)) < len(names):
            raise InputError(path, "header", f"columns {names}: need distinct spot id, row and column columns")
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
            raise InputError(path, col, f"non-numeric or missing value {str(df[col].iloc[i])!r} for spot {str(df['barcode'].iloc[i])!r}")
        vals = v.to_numpy(dtype=float)
        bad = ~np.isfinite(vals)
        if col.startswith("pxl_"):  # array_row/array_col: bounded by the grid (stentrans.lattice.check_extent)
            bad |= np.abs(vals) > MAX_PIXEL
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(path, col, f"value {float(vals[i])!r} for spot {str(df['barcode'].iloc[i])!r} is not a finite coordinate" + (f" of at most {MAX_PIXEL:g} in magnitude" if col.startswith("pxl_") else ""))
        out[col] = v.to_numpy()
    it = out["in_tissue"].to_numpy()
    if not np.isin(it, (0, 1)).all():
        i = int(np.flatnonzero(~np.isin(it, (0, 1)))[0])
        raise InputError(path, "in_tissue", f"value {float(it[i]):g} for spot {str(out.index[i])!r} is not 0 or 1")
    out["in_tissue"] = it.astype(np.int64)
    return out
