"""Compatibility shim: moved to stentrans.models.paper (network, config); removed at the end of the refactor."""

from .models.paper.config import ModelConfig
from .models.paper.network import SHORT_SEQUENCE, Attention, Block, StEnTrans, count_parameters, merge_2x2, sinusoidal_encoding

__all__ = ["ModelConfig", "StEnTrans", "Attention", "Block", "SHORT_SEQUENCE", "merge_2x2", "sinusoidal_encoding", "count_parameters"]
