"""Reading and writing: every supported input becomes one AnnData on a spot lattice.

:func:`read` dispatches on the input (:mod:`.formats` tells the formats apart):

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

Cell-level and subcellular data are binned into pseudo-spots by
:mod:`.binning` (:func:`square_bins`, :func:`pseudospots`; :func:`bin_cells`
for tables in memory).

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

from ._assemble import summary
from .binning import PseudoSpotConfig, binomial_split, noise_ceiling, pseudospots, square_bins, write_pseudospots
from .cells import BinConfig, bin_cells, read_cells
from .formats import POINT_FORMATS, SPOT_FORMATS, detect, detect_format, read, read_finer
from .points import Points
from .positions import read_positions
from .snap import DEFAULT_SNAP_TOL, snap_to_lattice
from .spatialdata import is_spatialdata_path, to_spatialdata, write_spatialdata

__all__ = [
    "read",
    "detect",
    "SPOT_FORMATS",
    "read_finer",
    "detect_format",
    "POINT_FORMATS",
    "read_positions",
    "snap_to_lattice",
    "summary",
    "DEFAULT_SNAP_TOL",
    "Points",
    "bin_cells",
    "read_cells",
    "BinConfig",
    "pseudospots",
    "square_bins",
    "write_pseudospots",
    "PseudoSpotConfig",
    "binomial_split",
    "noise_ceiling",
    "is_spatialdata_path",
    "to_spatialdata",
    "write_spatialdata",
]
