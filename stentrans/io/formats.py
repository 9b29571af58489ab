"""Input formats: what a path holds and which reader reads it, the one place where formats are told apart.

Spot data (:func:`read`: one AnnData on a spot lattice) is one of
:data:`SPOT_FORMATS`, decided by :func:`detect` from the path alone:

* ``spatialdata``: a folder ending in ``.zarr`` (:mod:`.spatialdata`);
* ``spaceranger``: any other folder holding, or inside, a Space Ranger
  ``outs`` (its parent, its ``filtered_feature_bc_matrix`` folder, Visium
  HD's ``binned_outputs/square_XXXum``), or a 10x ``.h5`` matrix with the
  positions beside it (:mod:`._pair`, :mod:`.spaceranger`, :mod:`.visium_hd`);
* ``h5ad``: a file ending in ``.h5ad`` (:mod:`.h5ad`);
* ``st``: a ``.tsv``/``.csv`` table (``.gz`` too) with ``XxY`` spot ids
  (:mod:`.st`); a ``tissue_positions`` file alone is refused (positions
  without counts).

A counts table with a coordinates table (``coords=``), or a positions source
with a count matrix (``counts=``), is paired whatever they are (:mod:`._pair`).

Finer data (:func:`read_finer`: :class:`~.points.Points` to bin into
pseudo-spots, :mod:`.binning`) is one of :data:`POINT_FORMATS`, decided by
:func:`detect_format` from the name and the first lines:

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

A new format is its reader module (one function taking the keywords of the
others in its table) and one :class:`Format` entry here, with its rule in
:func:`detect` or :func:`detect_format`; the command line's choices read the
tables.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from .._errors import InputError
from ..lattice import LATTICES
from ._text import _check_exists, _first_lines, _is_table_name, _parse_st_ids, _sniff_sep, _split, _strip_gz
from .gem import gem_comment_lines
from .molecules import detect_columns
from .points import Points, file_name, find_column
from .snap import DEFAULT_SNAP_TOL
from .spaceranger import _find_outs
from .visium_hd import _find_bin_folder

__all__ = ["Format", "SPOT_FORMATS", "POINT_FORMATS", "detect", "detect_format", "read", "read_finer"]


@dataclass(frozen=True)
class Format:
    """One input format: its name, what it is, its reader and the options the reader takes."""

    name: str
    what: str
    #: ``"module:function"`` of the reader, imported when first used
    reader: str
    #: keyword options the reader takes besides the path (point formats: column names and filters)
    options: tuple[str, ...] = ()

    def load(self):
        mod, fn = self.reader.split(":")
        return getattr(importlib.import_module(mod), fn)


#: spot data, in the order :func:`detect` tries them; every reader takes ``(path, *, lattice, snap_tol, layer, library_id, bin_size)``
SPOT_FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("spatialdata", "a SpatialData .zarr store in spatialdata-io's Visium / Visium HD layout", "stentrans.io.spatialdata:read_spatialdata"),
        Format("spaceranger", "a Space Ranger outs folder (Visium HD: binned_outputs/square_XXXum), its parent or matrix folder, or a 10x .h5", "stentrans.io._pair:read_spaceranger"),
        Format("h5ad", "an .h5ad with array_row/array_col (or pixel positions in obsm['spatial'])", "stentrans.io.h5ad:read_h5ad"),
        Format("st", "an ST count table .tsv/.csv[.gz] with XxY spot ids", "stentrans.io.st:read_st"),
    )
}

#: finer data, each read into :class:`~.points.Points`
POINT_FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("molecules", "one molecule per row (MERSCOPE, Xenium, CosMx, generic x/y/gene)", "stentrans.io.molecules:read_molecules", ("x", "y", "gene", "count")),
        Format("gem", "Stereo-seq GEM (geneID, x, y, MIDCount)", "stentrans.io.gem:read_gem", ("x", "y", "gene", "count")),
        Format("beads", "Slide-seq beads: positions from the bead ids 'XxY', genes from the header", "stentrans.io.beads:read_beads"),
        Format("cells", "cells with centroid columns and one numeric column per gene (table or .h5ad)", "stentrans.io.beads:read_cell_points", ("x", "y", "gene", "count", "drop", "query")),
    )
}
#: the names of :data:`POINT_FORMATS` (``--format`` of ``stentrans bin``)
FORMATS = tuple(POINT_FORMATS)
_GEM_COUNTS = ("MIDCounts", "MIDCount", "UMICount", "UMICounts")


# ---------------------------------------------------------------------------
# spot data
# ---------------------------------------------------------------------------
def detect(path, *, bin_size=None) -> str:
    """The name of the :data:`SPOT_FORMATS` entry that reads ``path`` (rules in the module docstring); else an :class:`InputError`."""
    path = Path(path)
    name = path.name.lower()
    if path.is_dir():
        if name.endswith(".zarr"):
            return "spatialdata"
        if _find_bin_folder(path, bin_size) or _find_outs(path):
            return "spaceranger"
        raise InputError(path, "format", "folder is not a Space Ranger outs folder (no spatial/, filtered_feature_bc_matrix.h5, filtered_feature_bc_matrix/ or binned_outputs/)")
    if bin_size is not None and not name.endswith(".h5"):
        raise InputError(path, "bin_size", "only Visium HD binned outputs (binned_outputs/square_XXXum/) have a bin size")
    if name.endswith(".h5ad"):
        return "h5ad"
    if name.endswith(".h5"):
        return "spaceranger"
    if _is_table_name(path):
        if _strip_gz(name).startswith("tissue_positions"):
            raise InputError(path, "counts", "a positions file without counts (positions without counts); give the count matrix too (--counts FILE; read(..., counts=FILE))")
        return "st"
    raise InputError(path, "format", f"unknown input format {path.suffix or path.name!r}: expected .h5ad, a Space Ranger outs folder, a 10x .h5, a SpatialData .zarr, or a .tsv/.csv[.gz] count table")


def read(path, *, lattice: str = "auto", counts=None, coords=None, snap_tol: float = DEFAULT_SNAP_TOL, layer: str | None = None, library_id: str | None = None, bin_size: float | None = None):
    """Read spatial counts onto a spot lattice.

    Parameters
    ----------
    path
        ``.h5ad``; a SpatialData ``.zarr`` store; Space Ranger ``outs`` folder (or its parent, its
        ``filtered_feature_bc_matrix`` folder or ``.h5``); a Visium HD bin
        folder ``binned_outputs/square_XXXum`` (or ``outs`` with
        ``bin_size``); ST count table
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
        library id in the HDF5 file, else the sample folder name; Visium HD:
        ``<sample>_square_XXXum``); for a SpatialData store, the table or
        region to read where several tables annotate shapes.
    bin_size
        Visium HD only: the bin side in micrometres (``16`` reads
        ``binned_outputs/square_016um/``) when ``path`` holds several bin
        sizes (default: 8 um when present, else the only one); for a
        SpatialData store, its ``square_XXXum`` table.

    Returns
    -------
    AnnData with in-tissue spots only, raw counts in ``X`` (float32 CSR).
    """
    from ._pair import _pair

    path = Path(path)
    _check_exists(path)
    if lattice not in ("auto",) + LATTICES:
        raise InputError(path, "lattice", f"{lattice!r} is not one of auto, square, hex")
    snap_tol = float(snap_tol)
    if not (0 <= snap_tol < 0.5):
        raise InputError(path, "snap_tol", f"{snap_tol:g} must be in [0, 0.5)")
    if counts is not None and coords is not None:
        raise InputError(path, "counts/coords", "give either counts= (path holds positions) or coords= (path holds counts), not both")
    if bin_size is not None and (counts is not None or coords is not None):
        raise InputError(path, "bin_size", "only Visium HD binned outputs (binned_outputs/square_XXXum/) have a bin size, not a counts + coordinates pair")
    if counts is not None:
        counts = Path(counts)
        _check_exists(counts)
        return _pair(counts, path, lattice=lattice, snap_tol=snap_tol, fmt="positions+counts", source=path, library_id=library_id)
    if coords is not None:
        coords = Path(coords)
        _check_exists(coords)
        return _pair(path, coords, lattice=lattice, snap_tol=snap_tol, fmt="counts+coords", source=path, library_id=library_id)
    fmt = SPOT_FORMATS[detect(path, bin_size=bin_size)]
    return fmt.load()(path, lattice=lattice, snap_tol=snap_tol, layer=layer, library_id=library_id, bin_size=bin_size)


# ---------------------------------------------------------------------------
# finer data
# ---------------------------------------------------------------------------
def detect_format(path, *, x: str | None = None, y: str | None = None, gene: str | None = None) -> str:
    """One of :data:`POINT_FORMATS` for ``path`` (rules in the module docstring); named columns count for molecules."""
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
        ``"auto"`` (:func:`detect_format`) or one of :data:`POINT_FORMATS`.
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
    fmt = POINT_FORMATS[detect_format(path, x=x, y=y, gene=gene) if format == "auto" else format]
    given = {k: v for k, v in {"x": x, "y": y, "gene": gene, "count": count, "drop": tuple(drop or ()), "query": query}.items() if v}
    refused = [k for k in given if k not in fmt.options]
    if refused:
        raise InputError(path, "/".join(f"--{k}" for k in refused), f"not for {fmt.name} ({fmt.what})")
    return fmt.load()(path, **given)
