"""Compatibility shim: moved to stentrans.models.paper (train, tiles, checkpoint); removed at the end of the refactor.

``train(adata, ...)`` (AnnData-level training) stays here until it moves to
:mod:`stentrans.tl`.
"""

from __future__ import annotations

from ._errors import InputError
from .models.paper.checkpoint import CHECKPOINT_FORMAT, checkpoint_sha256, load_checkpoint, model_from_checkpoint, save_checkpoint
from .models.paper.config import CROP_TOKENS, MAX_TRAIN_TOKENS, ModelConfig, TrainConfig
from .models.paper.network import StEnTrans
from .models.paper.tiles import MAX_TOKENS, crop_side, crop_starts, grid_unit, patch_tokens, predict, tiles
from .models.paper.train import ACTIVATION_BUDGET, CPU_SHARDS, TrainResult, fit, make_pairs, micro_batch

__all__ = [
    "CHECKPOINT_FORMAT", "checkpoint_sha256", "load_checkpoint", "model_from_checkpoint", "save_checkpoint",
    "CROP_TOKENS", "MAX_TRAIN_TOKENS", "ModelConfig", "TrainConfig", "StEnTrans",
    "MAX_TOKENS", "crop_side", "crop_starts", "grid_unit", "patch_tokens", "predict", "tiles",
    "ACTIVATION_BUDGET", "CPU_SHARDS", "TrainResult", "fit", "make_pairs", "micro_batch", "train",
]


def train(
    adata,
    genes=None,
    layer: str | None = None,
    epochs: int = TrainConfig.epochs,
    batch_size: int = TrainConfig.batch_size,
    lr: float = TrainConfig.lr,
    betas=TrainConfig.betas,
    eps: float = TrainConfig.eps,
    patch_size: int = ModelConfig.patch_size,
    depth: int = ModelConfig.depth,
    heads: int = ModelConfig.heads,
    mlp_ratio: float = ModelConfig.mlp_ratio,
    use_pos: bool = ModelConfig.use_pos,
    use_res: bool = ModelConfig.use_res,
    seed: int = TrainConfig.seed,
    device="auto",
    checkpoint=None,
    checkpoint_every: int = TrainConfig.checkpoint_every,
    resume: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
    variant: str = "paper",
    robust_kwargs: dict | None = None,
    crop: int | None = TrainConfig.crop,
):
    """Self-supervised pretraining on an AnnData's genes (``tl.train``).

    ``variant="paper"`` (default) is the paper-faithful network; ``"robust"``
    fits :func:`stentrans.models.robust.fit.fit_robust` instead (better on spots never
    seen, see the README) and returns its result, which
    :func:`stentrans.tl.enhance` accepts the same way.

    Pairs ``(D(G), G)`` of all (selected) genes; see :func:`fit`. Defaults:
    :class:`ModelConfig` and :class:`TrainConfig` (the authors' code).

    ``crop``: side (pixels of the half-resolution input D(G)) of random training
    windows, one per batch, each with the whole map's position encoding. The
    default (None) trains on whole maps, as the paper does, unless they exceed
    ``MAX_TRAIN_TOKENS`` patch tokens (Visium HD), then on windows of about
    ``CROP_TOKENS`` tokens; 0 always trains on whole maps.
    """
    from .grid import to_grid

    if variant not in ("paper", "robust"):
        raise InputError(None, "variant", f"{variant!r}: must be 'paper' or 'robust'")
    gd = to_grid(adata, genes=genes, layer=layer)
    if variant == "robust":
        from .models.robust.config import RobustConfig
        from .models.robust.fit import fit_robust

        return fit_robust(gd.maps, gd.mask, gd.grid.lattice, RobustConfig(seed=seed, **(robust_kwargs or {})), device=device, progress=progress)
    mc = ModelConfig(patch_size=patch_size, depth=depth, heads=heads, mlp_ratio=mlp_ratio, use_pos=use_pos, use_res=use_res)
    tc = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, betas=tuple(betas), eps=eps, seed=seed, checkpoint_every=checkpoint_every, crop=crop)
    return fit(gd.maps, gd.mask, gd.grid.lattice, mc, tc, device=device, checkpoint=checkpoint, resume=resume, progress=progress, stop_after=stop_after)
