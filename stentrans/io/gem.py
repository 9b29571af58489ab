"""Stereo-seq GEM files: ``geneID, x, y, MIDCounts`` (or ``UMICount``), tab-separated, often gzipped.

A GEM file may start with ``#`` comment lines (``#FileFormat=GEMv0.1``,
``#OffsetX=...``); they are skipped. Coordinates are DNB indices (bin1, the
chip's 0.5 um pitch): the points carry ``unit="DNB"`` and ``um_per_unit=0.5``.
Each row becomes one point carrying its count (:func:`~.points.points_from_long`).
"""

from __future__ import annotations

from pathlib import Path

from .._errors import InputError
from ._text import _IO_ERRORS, _io_error, _open_text
from .molecules import detect_columns, read_columns, table_columns
from .points import Points, find_column, points_from_long

__all__ = ["GEM_DNB_UM", "read_gem", "gem_comment_lines"]

#: micrometres between neighbouring DNBs of a Stereo-seq chip (bin1)
GEM_DNB_UM = 0.5
_GEM_COUNTS = ("MIDCounts", "MIDCount", "UMICount", "UMICounts")


def gem_comment_lines(path: Path, limit: int = 1000) -> int:
    """Number of leading ``#`` lines."""
    n = 0
    try:
        with _open_text(path) as fh:
            for line in fh:
                if not line.startswith("#") or n >= limit:
                    break
                n += 1
    except _IO_ERRORS as err:
        raise _io_error(path, err) from None
    return n


def read_gem(path, *, x: str | None = None, y: str | None = None, gene: str | None = None, count: str | None = None) -> Points:
    """Read a GEM file into :class:`~.points.Points`.

    ``gene`` defaults to ``geneID``, ``x``/``y`` to ``x``/``y``, ``count`` to
    ``MIDCounts``, ``MIDCount``, ``UMICount`` or ``UMICounts`` (the first
    present; every name in any case); a GEM file without a count column is
    an error.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "path", "file not found")
    skip = gem_comment_lines(path)
    have, sep = table_columns(path, skip=skip)
    if count is None:
        count = find_column(have, *_GEM_COUNTS, source=path, role="count")
        if count is None:
            raise InputError(path, "columns", f"no count column ({', '.join(_GEM_COUNTS)}; any case) in the GEM header ({', '.join(have[:8])}); name it with --count")
    gene = gene or find_column(have, "geneID", source=path, role="gene")
    cols, _ = detect_columns(have, x=x or "x", y=y or "y", gene=gene, count=count, source=path)
    df = read_columns(path, cols, sep, skip=skip)
    pts = points_from_long(df, x=cols["x"], y=cols["y"], gene=cols["gene"], count=cols["count"], source=path, kind="gem", unit="DNB", um_per_unit=GEM_DNB_UM)
    pts.columns["comment_lines"] = skip
    return pts
