"""Tools: training, enhancement, baselines, evaluation, spatial patterns."""

from __future__ import annotations

from .enhance import enhance, write_h5ad
from .train import fit, predict, train, load_checkpoint, model_from_checkpoint

__all__ = ["train", "fit", "predict", "enhance", "write_h5ad", "load_checkpoint", "model_from_checkpoint"]
