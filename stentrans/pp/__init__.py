"""Pre-processing: QC filters and the lattice mapping (AnnData <-> gene maps)."""

from ._qc import QCConfig, filter_genes, filter_spots, qc
from ..grid import GridData, from_grid, grid_of, to_grid
from ..lattice import downsample, enhanced_mask, kept_mask

__all__ = ["QCConfig", "filter_spots", "filter_genes", "qc", "to_grid", "from_grid", "grid_of", "GridData", "downsample", "enhanced_mask", "kept_mask"]
