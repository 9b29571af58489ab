"""Methods: the paper's network, the default method (``robust``) and the baselines, behind one
interface (:mod:`~stentrans.models.base`) and one registry
(:mod:`~stentrans.models.registry`). Importing this package loads no PyTorch."""

from . import registry
from .base import Enhancer, Fitted
from .registry import METHODS, get, make

__all__ = ["registry", "Enhancer", "Fitted", "METHODS", "get", "make"]
