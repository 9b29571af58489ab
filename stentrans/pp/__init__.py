"""Pre-processing: QC filters and the lattice mapping (AnnData <-> gene maps)."""

from ._qc import MIN_SPOTS, SCORED_SPOT_FRACTION, QCConfig, filter_genes, filter_spots, gene_filter_note, qc, scored_genes
from ..grid import GridData, from_grid, grid_of, to_grid
from ..lattice import downsample, enhanced_mask, kept_mask

__all__ = ["QCConfig", "MIN_SPOTS", "SCORED_SPOT_FRACTION", "filter_spots", "filter_genes", "qc", "gene_filter_note", "scored_genes", "to_grid", "from_grid", "grid_of", "GridData", "downsample", "enhanced_mask", "kept_mask"]
