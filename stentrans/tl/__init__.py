"""Tools: fitting and enhancement, evaluation, spatial patterns; they compute, and return or store into AnnData.

Names are imported on first use, so ``import stentrans`` (and the CLI) start
without loading PyTorch. Nothing here writes result files or draws: that is
:mod:`stentrans.run` (files) and :mod:`stentrans.pl` (figures).
"""

from __future__ import annotations

import importlib

_WHERE = {
    # fitting and enhancement
    "train": "stentrans.tl._train",
    "enhance": "stentrans.tl._enhance",
    "enhance_chunks": "stentrans.tl._enhance",
    "EnhancedChunks": "stentrans.tl._enhance",
    "EnhanceConfig": "stentrans.tl._enhance",
    "build_enhanced": "stentrans.tl._anndata",
    "write_h5ad": "stentrans.tl._anndata",
    # evaluation
    "evaluate": "stentrans.tl._evaluate",
    "EvaluateConfig": "stentrans.tl._evaluate",
    "PROTOCOLS": "stentrans.tl._protocols",
    "ProtocolData": "stentrans.tl._protocols",
    "FinerTruth": "stentrans.tl._realtruth",
    "SCORES": "stentrans.tl._protocols",
    "summarize": "stentrans.tl._summary",
    "add_ceiling_fraction": "stentrans.tl._summary",
    "summarize_coverage": "stentrans.tl._summary",
    # predictive intervals
    "calibrate": "stentrans.tl._intervals",
    # spatial patterns (paper Fig. 4)
    "patterns": "stentrans.tl._patterns",
    "control_enhancements": "stentrans.tl._patterns",
    "PatternsConfig": "stentrans.tl._patterns_config",
    "sepal": "stentrans.tl._sepal",
    "sepal_scores": "stentrans.tl._sepal",
    "spot_graph": "stentrans.tl._sepal",
    "lattice_coords": "stentrans.tl._sepal",
    "normalize_profiles": "stentrans.tl._diffusion",
    "pattern_families": "stentrans.tl._families",
    "family_representative": "stentrans.tl._families",
    "pair_families": "stentrans.tl._families",
    "top_genes": "stentrans.tl._families",
    "read_gmt": "stentrans.tl._enrich",
    "enrich_families": "stentrans.tl._enrich",
    "new_terms": "stentrans.tl._enrich",
    # downstream analysis against a reference (issue 28)
    "downstream": "stentrans.tl._downstream",
    "downstream_reference": "stentrans.tl._downstream",
    "downstream_outputs": "stentrans.tl._downstream",
    "DOWNSTREAM_OUTPUTS": "stentrans.tl._downstream",
    "mixing": "stentrans.tl._downstream",
    "mixing_shares": "stentrans.tl._downstream",
    "domains": "stentrans.tl._downstream",
    "domain_ceiling": "stentrans.tl._downstream",
    "ari": "stentrans.tl._downstream",
    "morans_i": "stentrans.tl._downstream",
    "svg_agreement": "stentrans.tl._downstream",
    "go_terms": "stentrans.tl._downstream",
    "term_agreement": "stentrans.tl._downstream",
    "nearest_measured": "stentrans.tl._downstream",
    "match_positions": "stentrans.tl._downstream",
    "common_positions": "stentrans.tl._downstream",
    "align_positions": "stentrans.tl._downstream",
    "downsample_spots": "stentrans.tl._downstream",
    "upsampled_coords": "stentrans.tl._downstream",
    "MIXING_BOUND": "stentrans.tl._downstream",
    "DOMAIN_METHODS": "stentrans.tl._downstream",
    "family_counts": "stentrans.tl._enrich",
}

__all__ = sorted(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'stentrans.tl' has no attribute {name!r}")


def __dir__():
    return __all__
