"""Reading and writing: every supported input becomes one AnnData on a spot lattice.

:func:`read` dispatches on the input:

* ``.h5ad`` (:mod:`.h5ad`) — lattice coordinates from ``obs["array_row"]``/
  ``obs["array_col"]``, else snapped from ``obsm["spatial"]`` (spacing from
  nearest neighbours, square vs hex from the neighbour angles; :mod:`.snap`).
* a Space Ranger ``outs`` folder (or its parent, or the
  ``filtered_feature_bc_matrix`` folder / ``.h5`` file inside it;
  :mod:`.spaceranger`) — counts from ``filtered_feature_bc_matrix.h5`` or the
  ``filtered_feature_bc_matrix/`` mtx folder, positions from
  ``spatial/tissue_positions.csv`` (header) or
  ``spatial/tissue_positions_list.csv`` (no header; :mod:`.positions`), scale
  factors and images from ``spatial/`` where present.
* Visium HD binned outputs (:mod:`.visium_hd`): ``binned_outputs/square_016um/``
  (or ``square_008um/`` ...) with ``filtered_feature_bc_matrix.h5`` and
  ``spatial/tissue_positions.parquet``, given as the bin folder, or as the
  ``outs`` folder (or ``binned_outputs/``) with ``bin_size=16``; always a
  square lattice, ``obsm["spatial"]`` in full-resolution pixels,
  ``uns["stentrans"]["bin_size_um"]``.
* a SpatialData ``.zarr`` store in the layout spatialdata-io writes for Visium
  (:mod:`stentrans.io.spatialdata`): the table annotating a shapes element
  (circles or bins), read as an ``.h5ad`` would be, ``obsm["spatial"]`` the
  shapes' centres; ``library_id`` / ``bin_size`` pick a table where several
  annotate shapes.
* Spatial Transcriptomics count tables ``.tsv``/``.csv`` (optionally
  gzipped; :mod:`.st`) with spot ids ``XxY`` on the rows (or on the columns:
  the axis holding the ids is detected). ``array_col = X``, ``array_row =
  Y``; centroids such as ``16.92x9.015`` are snapped to the nearest integer.
* a counts table plus a coordinates table: ``read(counts, coords=coords)``,
  or a positions source plus a separate matrix: ``read(positions,
  counts=matrix)`` (:mod:`._pair`).

Cell-level and subcellular tables are binned into pseudo-spots by
:func:`bin_cells` (:mod:`.cells`).

Every result has ``obs["array_row"]``, ``obs["array_col"]`` (integers),
``obs["in_tissue"]`` (1; only in-tissue spots are kept),
``obsm["spatial"]`` (float x, y), ``X`` (raw counts, float32 CSR),
unique ``obs_names``/``var_names`` and ``uns["stentrans"]`` with ``lattice``,
``source``, ``format``, ``input_sha256`` and ``grid``
(:meth:`stentrans.lattice.Grid.to_dict`). Space Ranger inputs also carry
``uns["spatial"][library_id]`` in scanpy's layout.

Where no pixel coordinates exist, ``obsm["spatial"]`` is the lattice position
in micrometres (:func:`stentrans.lattice.physical` with
:data:`stentrans.lattice.SPACING_UM`): square (ST) ``x = 200 * array_col``,
``y = 200 * array_row`` (200 um spot pitch); hex (Visium) ``x = 50 *
array_col``, ``y = 50 * sqrt(3) * array_row`` (100 um spot pitch). The units
are stated in ``uns["stentrans"]["spatial_units"]``.

Bad input raises :class:`~stentrans.InputError` naming file, field and value.

Finer data (molecules, Stereo-seq GEM, Slide-seq beads, cells) are read
into :class:`.points.Points` by :func:`read_finer` (:mod:`.formats`) and binned
into pseudo-spots by :mod:`.binning`; SpatialData stores are read and
written by :mod:`.spatialdata`.
"""

from __future__ import annotations

from pathlib import Path

from .._errors import InputError
from ..lattice import LATTICES
from ._assemble import summary
from ._pair import _pair
from ._text import _check_exists, _is_table_name, _strip_gz
from .cells import BinConfig, bin_cells, read_cells
from .h5ad import _read_h5ad
from .positions import read_positions
from .snap import DEFAULT_SNAP_TOL, snap_to_lattice
from .spaceranger import _find_outs, _matrix_source, _positions_file
from .st import _read_st
from .visium_hd import _bin_info, _bin_size_value, _find_bin_folder, _library_id

from .binning import PseudoSpotConfig, binomial_split, noise_ceiling, pseudospots, write_pseudospots
from .formats import read_finer
from .points import Points
from .spatialdata import is_spatialdata_path, to_spatialdata, write_spatialdata

__all__ = [
    "read",
    "read_positions",
    "snap_to_lattice",
    "summary",
    "DEFAULT_SNAP_TOL",
    "read_finer",
    "Points",
    "bin_cells",
    "read_cells",
    "BinConfig",
    "pseudospots",
    "write_pseudospots",
    "PseudoSpotConfig",
    "binomial_split",
    "noise_ceiling",
    "is_spatialdata_path",
    "to_spatialdata",
    "write_spatialdata",
]


def _spaceranger(matrix: Path, outs: Path, *, path: Path, lattice: str, snap_tol: float, library_id, bin_size):
    """Read a Space Ranger folder's counts and positions; Visium HD bin folders as square lattices."""
    hd = _bin_info(outs)
    if hd is None:
        if bin_size is not None:
            raise InputError(path, "bin_size", "only Visium HD binned outputs (binned_outputs/square_XXXum/) have a bin size")
        return _pair(matrix, outs, lattice=lattice, snap_tol=snap_tol, fmt="spaceranger", source=path, library_id=library_id)
    want = _bin_size_value(bin_size, path)
    if want is not None and want != hd["bin_size_um"]:
        raise InputError(path, "bin_size", f"{want} um asked for, but {outs.name} holds the {hd['bin_size_um']:g} um bins")
    if lattice == "hex":
        raise InputError(path, "lattice", "'hex' contradicts the data: Visium HD bins form a square lattice")
    # "auto" without hex: square even where the in-tissue bins form a checkerboard
    return _pair(matrix, outs, lattice="auto", snap_tol=snap_tol, fmt="visium_hd", source=path, library_id=library_id or _library_id(outs), auto_hex=False, extra=hd)


def read(path, lattice: str = "auto", counts=None, *, coords=None, snap_tol: float = DEFAULT_SNAP_TOL, layer: str | None = None, library_id: str | None = None, bin_size: float | None = None):
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

    name = path.name.lower()
    sr = {"path": path, "lattice": lattice, "snap_tol": snap_tol, "library_id": library_id, "bin_size": bin_size}
    if path.is_dir() and name.endswith(".zarr"):  # SpatialData (stentrans.spatialdata)
        from .spatialdata import read_table

        table, main_file, extra = read_table(path, library_id=library_id, bin_size=bin_size)
        return _read_h5ad(path, lattice, snap_tol, layer, adata=table, fmt="spatialdata", main_file=main_file, extra=extra)
    if path.is_dir():
        outs = _find_bin_folder(path, bin_size) or _find_outs(path)
        if outs is None:
            raise InputError(path, "format", "folder is not a Space Ranger outs folder (no spatial/, filtered_feature_bc_matrix.h5, filtered_feature_bc_matrix/ or binned_outputs/)")
        m = path if (path / "matrix.mtx.gz").exists() or (path / "matrix.mtx").exists() else _matrix_source(outs)
        pf = _positions_file(outs)
        if m is None:
            raise InputError(outs, "filtered_feature_bc_matrix", "no count matrix (positions without counts): expected filtered_feature_bc_matrix.h5 or filtered_feature_bc_matrix/; give the count matrix too (--counts FILE; read(..., counts=FILE))")
        if pf is None:
            expected = "spatial/tissue_positions.parquet" if _bin_info(outs) else "spatial/tissue_positions.csv"
            raise InputError(outs, expected, "no positions file (counts without positions)")
        return _spaceranger(m, outs, **sr)
    if bin_size is not None and not name.endswith(".h5"):
        raise InputError(path, "bin_size", "only Visium HD binned outputs (binned_outputs/square_XXXum/) have a bin size")
    if name.endswith(".h5ad"):
        return _read_h5ad(path, lattice, snap_tol, layer)
    if name.endswith(".h5"):
        outs = path.parent
        if _positions_file(outs) is None:
            raise InputError(path, "positions", "10x HDF5 matrix without spatial/tissue_positions.csv (or .parquet) beside it (counts without positions); give the positions too (--coords FILE; read(..., coords=FILE))")
        return _spaceranger(path, outs, **sr)
    if _is_table_name(path):
        if _strip_gz(name).startswith("tissue_positions"):
            raise InputError(path, "counts", "a positions file without counts (positions without counts); give the count matrix too (--counts FILE; read(..., counts=FILE))")
        return _read_st(path, lattice, snap_tol)
    raise InputError(path, "format", f"unknown input format {path.suffix or path.name!r}: expected .h5ad, a Space Ranger outs folder, a 10x .h5, or a .tsv/.csv[.gz] count table")
