"""A fitted robust model and its prediction on the raw-count scale."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..._errors import InputError
from .config import RobustConfig
from .context import Context, library_fine, prepare, spot_context
from .net import RobustNet, net_channels
from .ops import base_prediction

__all__ = ["RobustResult", "predict_counts"]


@dataclass
class RobustResult:
    """A fitted robust model; :meth:`predict` stands in for the stEnTrans model."""

    config: RobustConfig
    lattice: str
    net: RobustNet | None
    context: Context | None = None  # context of the fitted input (all genes)
    input_shape: tuple = ()
    history: list = field(default_factory=list)
    selection: list = field(default_factory=list)
    best_epoch: int = 0
    epochs_run: int = 0
    seconds: float = 0.0
    device: str = "cpu"
    n_pairs: int = 0
    n_train_genes: int = 0
    n_val_genes: int = 0
    n_val_spots: int = 0

    @property
    def final_loss(self) -> float:
        return float(self.history[-1]["loss"]) if self.history else float("nan")

    def provenance(self) -> dict:
        return {
            "robust_config": self.config.to_dict(),
            "seed": int(self.config.seed),
            "selection": list(self.selection),
            "best_epoch": int(self.best_epoch),
            "epochs_run": int(self.epochs_run),
            "final_loss": self.final_loss,
            "train_seconds": float(self.seconds),
            "device": self.device,
            "n_pairs": int(self.n_pairs),
            "n_train_genes": int(self.n_train_genes),
            "n_val_genes": int(self.n_val_genes),
            "n_val_spots": int(self.n_val_spots),
        }

    def context_for(self, maps: np.ndarray, mask: np.ndarray) -> Context:
        """Context of an input: the fitted one for the same grid and mask, else from ``maps``."""
        mask = np.asarray(mask, dtype=bool)
        c = self.context
        if c is not None and c.mask.shape == mask.shape and np.array_equal(c.mask, mask):
            return c
        return spot_context(maps, mask, self.config)

    @torch.no_grad()
    def predict(self, maps: np.ndarray, mask: np.ndarray, context: Context | None = None, chunk: int = 512) -> np.ndarray:
        """Enhanced maps ``(n, 2u, 2v)`` on the raw-count scale of ``maps``.

        ``context``: spot-level context (default :meth:`context_for`); pass the
        context of the full gene set when calling gene chunk by gene chunk on
        an input other than the fitted one.
        """
        maps = np.asarray(maps, dtype=np.float32)
        mask = np.asarray(mask, dtype=bool)
        if maps.ndim != 3 or maps.shape[1:] != mask.shape:
            raise InputError(None, "maps", f"expected (n_genes, u, v) matching mask {mask.shape}, got {maps.shape}")
        ctx = context if context is not None else self.context_for(maps, mask)
        return predict_counts(self.net, maps * mask, ctx, self.lattice, self.config, chunk=chunk)


@torch.no_grad()
def predict_counts(net, maps, ctx: Context, lattice: str, cfg: RobustConfig, chunk: int = 512) -> np.ndarray:
    """Enhanced ``(n, 2u, 2v)`` raw counts of ``maps`` (the base, plus ``net``'s correction when given)."""
    n, u, v = maps.shape
    out = np.zeros((n, 2 * u, 2 * v), dtype=np.float32)
    if n == 0 or not ctx.mask.any():
        return out
    dev = next(net.parameters()).device if net is not None else torch.device("cpu")
    m = torch.from_numpy(ctx.mask).to(dev)
    lib = library_fine(ctx, lattice, cfg) if cfg.scale != "counts" else None
    for s in range(0, n, chunk):
        pr = prepare(maps[s : s + chunk], ctx, cfg)
        z = torch.from_numpy(pr.z).to(dev)
        r = torch.from_numpy(pr.r).to(dev)
        base = base_prediction(z, r, m, lattice, cfg)
        if net is not None:
            net.eval()
            zh = net(net_channels(z, r, m, cfg), base)
        else:
            zh = base
        zh = zh.float().cpu().numpy()
        L = zh * pr.sd[:, None, None] + pr.mu[:, None, None]
        if cfg.scale == "lognorm":
            vals = np.expm1(np.clip(L, 0.0, 30.0)) * (lib / cfg.target_sum)[None]
        elif cfg.scale == "norm":
            vals = np.maximum(L, 0.0) * (lib / cfg.target_sum)[None]
        else:
            vals = np.maximum(L, 0.0)
        out[s : s + chunk] = vals
    if cfg.keep_measured:
        p, q = np.nonzero(ctx.mask)
        out[:, 2 * p, 2 * q] = maps[:, p, q]
    return out
