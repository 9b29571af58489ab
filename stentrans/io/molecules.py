"""Molecule tables: one row per detected molecule (MERSCOPE, Xenium, CosMx or generic), as :class:`~.points.Points`.

Columns are detected from the vendors' names in any case (an exact match
first: ``Gene,x,y`` as ISS / pciSeq write it is the generic layout), first
layout that matches wins:

==========  ==============  ==============  ================  ===========
layout      x               y               gene              units
==========  ==============  ==============  ================  ===========
MERSCOPE    ``global_x``    ``global_y``    ``gene``          um
Xenium      ``x_location``  ``y_location``  ``feature_name``  um
CosMx       ``x_global_px`` ``y_global_px`` ``target``        pixels
generic     ``x``           ``y``           ``gene``          unknown
==========  ==============  ==============  ================  ===========

An optional count column (``count``, ``counts``, ``MIDCounts``,
``MIDCount``, ``UMICount``, ``UMICounts``; any case) gives the molecules per
row, otherwise every row is one molecule. Each of ``x``, ``y``, ``gene`` and
``count`` can be named instead (the rest is still detected). Files:
``.csv``/``.tsv`` (optionally gzipped) or ``.parquet`` (Xenium's
``transcripts.parquet``; needs pyarrow). Every column is kept as it is:
control probes (``Blank-*``, ``NegControl*``, ``NegPrb*``) stay genes.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pandas as pd

from .._errors import InputError
from ._text import _IO_ERRORS, _first_lines, _io_error, _is_gzip, _sniff_sep, _split
from .points import Points, check_columns, file_name, find_column, points_from_long, shown_columns

__all__ = ["LAYOUTS", "COUNT_COLUMNS", "detect_columns", "read_molecules", "table_columns"]


class Layout(NamedTuple):
    """A vendor's column names and coordinate unit."""

    name: str
    x: str
    y: str
    gene: str
    unit: str | None
    um_per_unit: float | None


LAYOUTS = (
    Layout("MERSCOPE", "global_x", "global_y", "gene", "um", 1.0),
    Layout("Xenium", "x_location", "y_location", "feature_name", "um", 1.0),
    Layout("CosMx", "x_global_px", "y_global_px", "target", "px", None),
    Layout("generic", "x", "y", "gene", None, None),
)
COUNT_COLUMNS = ("count", "counts", "MIDCounts", "MIDCount", "UMICount", "UMICounts")


def detect_columns(have, *, x=None, y=None, gene=None, count=None, source=None) -> tuple[dict, Layout | None]:
    """The columns to use (``{"x", "y", "gene", "count"}``) and the layout they came from.

    Names match in any case, an exact match first (:func:`~.points.find_column`:
    ``Gene,x,y`` is the generic layout). Named columns must exist; the
    others are taken from the first layout of :data:`LAYOUTS` whose remaining
    columns all exist. No match is an :class:`InputError` naming the columns
    found, the expected names and the flags that choose them.
    """
    have = [str(h) for h in have]
    named = check_columns(source, have, {"x": x, "y": y, "gene": gene, "count": count})
    chosen = layout = None
    for lay in LAYOUTS:
        cand = {}
        for role in ("x", "y", "gene"):
            cand[role] = named[role] or find_column(have, getattr(lay, role), source=source, role=role)
            if cand[role] is None:
                break
        else:
            chosen, layout = cand, lay
            break
    if chosen is None:
        expected = "; ".join(f"{lay.x}/{lay.y}/{lay.gene} ({lay.name})" for lay in LAYOUTS)
        raise InputError(source, "columns", f"no molecule columns found (have {shown_columns(have)}); expected one of {expected} (any case), or name them with --x/--y/--gene")
    chosen["count"] = named["count"] or find_column(have, *COUNT_COLUMNS, source=source, role="count")
    if x or y:  # units are the layout's only for its own coordinate columns
        layout = layout._replace(unit=None, um_per_unit=None) if layout is not None else None
    return chosen, layout


def _parquet_columns(path: Path) -> list[str]:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a dependency of the environments
        raise InputError(path, "file", "reading .parquet needs the pyarrow package") from None
    try:
        return list(pq.ParquetFile(path).schema_arrow.names)
    except (*_IO_ERRORS, ValueError) as err:
        raise InputError(path, "file", f"cannot be read as parquet ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None


def table_columns(path: Path, skip: int = 0) -> tuple[list[str], str | None]:
    """Header names and separator (``None`` for parquet) of a molecule table; ``skip`` leading lines."""
    if file_name(path).endswith(".parquet"):
        return _parquet_columns(path), None
    lines = _first_lines(path, skip + 1)
    if len(lines) <= skip or not lines[skip].strip():
        raise InputError(path, "header", "empty file (no header)")
    sep = _sniff_sep(path, lines[skip])
    return [c.strip() for c in _split(lines[skip], sep)], sep


def read_columns(path: Path, columns: dict, sep: str | None, skip: int = 0) -> pd.DataFrame:
    """The named columns of a molecule table (text or parquet), as read."""
    use = [c for c in dict.fromkeys(columns.values()) if c is not None]
    if sep is None:
        try:
            return pd.read_parquet(path, columns=use)
        except (*_IO_ERRORS, ValueError) as err:
            raise InputError(path, "file", f"cannot be read as parquet ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None
    try:
        df = pd.read_csv(path, sep=sep, skiprows=skip, usecols=lambda c: str(c).strip() in use, dtype={columns["gene"]: str}, low_memory=False, compression="gzip" if _is_gzip(path) else None)
    except pd.errors.EmptyDataError:
        raise InputError(path, "rows", "no data rows") from None
    except pd.errors.ParserError as err:
        raise InputError(path, "rows", f"malformed table ({str(err).strip()})") from None
    except _IO_ERRORS as err:
        raise _io_error(path, err) from None
    df.columns = [str(c).strip() for c in df.columns]
    return df


def read_molecules(path, *, x: str | None = None, y: str | None = None, gene: str | None = None, count: str | None = None) -> Points:
    """Read a molecule table into :class:`~.points.Points` (one point per row).

    Parameters
    ----------
    path
        ``.csv``/``.tsv`` (``.gz``) or ``.parquet`` with one row per molecule.
    x, y, gene, count
        Column names; ``None`` detects them (:func:`detect_columns`).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "path", "file not found")
    have, sep = table_columns(path)
    cols, layout = detect_columns(have, x=x, y=y, gene=gene, count=count, source=path)
    df = read_columns(path, cols, sep)
    unit = layout.unit if layout else None
    upu = layout.um_per_unit if layout else None
    pts = points_from_long(df, x=cols["x"], y=cols["y"], gene=cols["gene"], count=cols["count"], source=path, kind="molecules", unit=unit, um_per_unit=upu)
    if layout is not None:
        pts.columns["layout"] = layout.name
    return pts
