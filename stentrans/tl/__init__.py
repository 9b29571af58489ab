"""Tools: training, enhancement, baselines, evaluation, spatial patterns.

Names are imported on first use, so ``import stentrans`` (and the CLI) start
without loading PyTorch.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "train": "stentrans.tl._train",
    "fit": "stentrans.models.paper.train",
    "predict": "stentrans.models.paper.tiles",
    "load_checkpoint": "stentrans.models.paper.checkpoint",
    "model_from_checkpoint": "stentrans.models.paper.checkpoint",
    "enhance": "stentrans.tl._enhance",
    "build_enhanced": "stentrans.tl._anndata",
    "write_h5ad": "stentrans.tl._anndata",
    "upsample": "stentrans.models.baselines.dispatch",
    "train_dist": "stentrans.models.baselines.dist",
    "evaluate": "stentrans.tl._evaluate",
    "evaluation_genes": "stentrans.tl._evaluate",
    "pcc": "stentrans.metrics",
    "summarize": "stentrans.report.tables",
    "ablation_table": "stentrans.report.tables",
    "write_results": "stentrans.report.tables",
    "sepal": "stentrans.tl._sepal",
    "sepal_scores": "stentrans.tl._sepal",
    "spot_graph": "stentrans.tl._sepal",
    "lattice_coords": "stentrans.tl._sepal",
    "SepalConfig": "stentrans.tl._diffusion",
    "pattern_families": "stentrans.tl._families",
    "family_representative": "stentrans.tl._families",
    "pair_families": "stentrans.tl._families",
    "normalized_profiles": "stentrans.tl._families",
    "read_gmt": "stentrans.tl._enrich",
    "enrich_families": "stentrans.tl._enrich",
    "new_terms": "stentrans.tl._enrich",
    "run_patterns": "stentrans.tl._patterns",
    "control_enhancements": "stentrans.tl._patterns",
    "new_terms_control": "stentrans.tl._patterns",
    "PatternsConfig": "stentrans.tl._patterns_config",
}

__all__ = sorted(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'stentrans.tl' has no attribute {name!r}")


def __dir__():
    return __all__
