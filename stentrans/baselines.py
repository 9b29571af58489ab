"""Compatibility shim: moved to stentrans.models.baselines; removed at the end of the refactor."""

from .models.baselines.config import DISTConfig, NEDIConfig
from .models.baselines.dispatch import METHODS, upsample
from .models.baselines.dist import DISTNet, predict_dist, train_dist
from .models.baselines.nedi import nedi

__all__ = ["METHODS", "upsample", "nedi", "train_dist", "predict_dist", "DISTNet", "NEDIConfig", "DISTConfig"]
