"""Tools: training, enhancement, baselines, evaluation, spatial patterns.

Names are imported on first use, so ``import stentrans`` (and the CLI) start
without loading PyTorch.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "train": "stentrans.train",
    "fit": "stentrans.train",
    "predict": "stentrans.train",
    "load_checkpoint": "stentrans.train",
    "model_from_checkpoint": "stentrans.train",
    "enhance": "stentrans.enhance",
    "write_h5ad": "stentrans.enhance",
    "upsample": "stentrans.baselines",
    "train_dist": "stentrans.baselines",
    "evaluate": "stentrans.evaluate",
    "pcc": "stentrans.metrics",
    "summarize": "stentrans.evaluate",
    "ablation_table": "stentrans.evaluate",
    "write_results": "stentrans.evaluate",
    "sepal": "stentrans.sepal",
    "spot_graph": "stentrans.sepal",
    "pattern_families": "stentrans.patterns",
    "family_representative": "stentrans.patterns",
    "pair_families": "stentrans.patterns",
    "enrich_families": "stentrans.patterns",
    "new_terms": "stentrans.patterns",
    "run_patterns": "stentrans.patterns",
}

__all__ = sorted(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'stentrans.tl' has no attribute {name!r}")


def __dir__():
    return __all__
