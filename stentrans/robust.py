"""Compatibility shim: moved to stentrans.models.robust; removed at the end of the refactor."""

from .models.robust.augment import augment_pairs, transforms
from .models.robust.config import BASES, LOSS_ON, POS, SCALES, RobustConfig
from .models.robust.context import Context, Prepared, gavish_donoho_rank, prepare, spot_context, target_scale
from .models.robust.fit import fit_robust, select_base
from .models.robust.net import RobustNet
from .models.robust.ops import nc_upsample
from .models.robust.result import RobustResult

__all__ = [
    "RobustConfig",
    "RobustResult",
    "RobustNet",
    "fit_robust",
    "nc_upsample",
    "spot_context",
    "augment_pairs",
    "select_base",
    "transforms",
    "gavish_donoho_rank",
    "Context",
    "Prepared",
    "prepare",
    "target_scale",
    "SCALES",
    "BASES",
    "POS",
    "LOSS_ON",
]
