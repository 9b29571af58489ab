"""Finer technologies' files (molecules, GEM, beads, cells) -> :class:`~.points.Points`: format detection and dispatch.

``format="auto"`` decides from the name and the first lines:

* ``.h5ad`` -> cells; ``.parquet`` -> molecules (Xenium);
* ``*.gem[.gz]``, leading ``#`` lines, or a header with ``geneID`` and
  ``MIDCounts``/``UMICount`` -> GEM (:mod:`.gem`);
* a first field ``XxY`` on the first data row (or ``XxY`` column labels) ->
  bead table (:mod:`.beads`);
* a header with molecule columns (:data:`.molecules.LAYOUTS`) -> molecules
  (:mod:`.molecules`);
* any other table -> cells (centroid columns plus one numeric column per gene).

Column names match in any case (an exact match first). A table that fits
no layout is an error naming the columns found and the flags that choose
them (``--format``, ``--x``, ``--y``, ``--gene``).
"""

from __future__ import annotations

from pathlib import Path

from .._errors import InputError
from ._text import _first_lines, _is_table_name, _parse_st_ids, _sniff_sep, _split
from .beads import read_beads, read_cell_points
from .gem import gem_comment_lines, read_gem
from .molecules import detect_columns, read_molecules
from .points import Points, file_name, find_column

__all__ = ["FORMATS", "detect_format", "read_finer"]

FORMATS = ("molecules", "gem", "beads", "cells")
_GEM_COUNTS = ("MIDCounts", "MIDCount", "UMICount", "UMICounts")


def detect_format(path, *, x: str | None = None, y: str | None = None, gene: str | None = None) -> str:
    """One of :data:`FORMATS` for ``path`` (rules in the module docstring); named columns count for molecules."""
    path = Path(path)
    name = file_name(path)
    if name.endswith(".h5ad"):
        return "cells"
    if name.endswith(".parquet"):
        return "molecules"
    if name.endswith(".gem"):
        return "gem"
    if not _is_table_name(path):
        raise InputError(path, "format", f"unknown input format {path.name!r}: expected .csv/.tsv[.gz], .gem[.gz], .parquet or .h5ad; or give --format")
    if gem_comment_lines(path):
        return "gem"
    lines = _first_lines(path, 2)
    if not lines or not lines[0].strip():
        raise InputError(path, "header", "empty file (no header)")
    sep = _sniff_sep(path, lines[0])
    header = [h.strip() for h in _split(lines[0], sep)]
    if find_column(header, "geneID", source=path, role="gene") and find_column(header, *_GEM_COUNTS, source=path, role="count"):
        return "gem"
    if len(lines) > 1 and _parse_st_ids([_split(lines[1], sep)[0] if lines[1] else ""])[0][0]:
        return "beads"
    if len(header) > 2 and _parse_st_ids(header[1:])[0].mean() >= 0.5:
        return "beads"
    named = {k: v if v is not None and find_column(header, v) else None for k, v in (("x", x), ("y", y), ("gene", gene))}
    try:
        detect_columns(header, **named, source=path)
    except InputError:
        return "cells"
    return "molecules"


def read_finer(path, format: str = "auto", *, x: str | None = None, y: str | None = None, gene: str | None = None, count: str | None = None, drop=(), query: str | None = None) -> Points:
    """Read molecules, a GEM file, beads or cells into :class:`~.points.Points`.

    Parameters
    ----------
    path
        The file.
    format
        ``"auto"`` (:func:`detect_format`) or one of :data:`FORMATS`.
    x, y, gene, count
        Column names overriding the detected ones (molecules, GEM, cells).
    drop, query
        Cell tables only: numeric columns that are not genes, and a
        :meth:`pandas.DataFrame.query` selecting cells first.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "path", "file not found")
    if format not in ("auto",) + FORMATS:
        raise InputError(path, "format", f"{format!r} is not one of auto, {', '.join(FORMATS)}")
    fmt = detect_format(path, x=x, y=y, gene=gene) if format == "auto" else format
    if fmt != "cells" and (query or drop):
        raise InputError(path, "--query/--drop", f"only for cell tables, not for {fmt}")
    if fmt == "molecules":
        return read_molecules(path, x=x, y=y, gene=gene, count=count)
    if fmt == "gem":
        return read_gem(path, x=x, y=y, gene=gene, count=count)
    if fmt == "beads":
        if x or y or gene or count:
            raise InputError(path, "--x/--y/--gene/--count", "bead tables take their positions from the bead ids 'XxY' and their genes from the header")
        return read_beads(path)
    return read_cell_points(path, x=x, y=y, gene=gene, count=count, drop=drop, query=query)
