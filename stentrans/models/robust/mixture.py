"""Two working scales at once: the robust fits on library-normalised and on raw counts, averaged per gene.

Why (benchmarks/realtruth_ablation.py, docs/realtruth.md): which working
scale predicts the real 2x truth best depends on the data. Library
normalisation (``norm``) wins where library size is technical (Visium, ST);
raw counts (``counts``) win on per-cell data, where library size follows
cell density and is itself signal (MERSCOPE, Stereo-seq). The
self-supervised task inside the data (``2a -> a``) does not tell them apart
reliably at the real task's scale (``a -> a/2``), so the default does not
choose: each scale is fitted with its own self-supervised rank and
bandwidth, and their predictions are averaged per gene.

The average (:func:`combine`): for every gene, each member's prediction is
standardised by its own mean and sd over the in-tissue positions of the
enhanced lattice ``H(M)`` (the same positions whichever output positions are
read, so ``enhance`` and ``evaluate`` get the same numbers), the z-scores
are averaged, and the result is put back on the raw-count scale with the
members' mean mean and mean sd, clipped at 0. Measured spots keep their
measured values when ``keep_measured``. Equal weight per member in
correlation terms: a smoother member (smaller sd) is not drowned by a
rougher one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...lattice import enhanced_mask
from .config import RobustConfig
from .result import measured_self_weight

__all__ = ["MixtureResult", "combine"]


def combine(preds: list[np.ndarray], positions: np.ndarray) -> np.ndarray:
    """Per-gene z-score average of member predictions ``(n, U, V)``, stats over ``positions`` (``(U, V)`` bool).

    float32 throughout (statistics accumulated in float64), one temporary the size of a member.
    """
    if len(preds) == 1:
        return preds[0]
    n = preds[0].shape[0]
    out = np.zeros(preds[0].shape, dtype=np.float32)
    tmp = np.empty_like(out)
    mu_mean, sd_mean = np.zeros(n), np.zeros(n)
    for p in preds:
        vals = p[:, positions]
        mu = vals.mean(axis=1, dtype=np.float64) if vals.shape[1] else np.zeros(n)
        sd = vals.std(axis=1, dtype=np.float64) if vals.shape[1] else np.zeros(n)
        # a member constant over the positions carries no pattern: it adds z = 0
        inv = np.divide(1.0, sd, out=np.zeros(n), where=sd > 0)
        np.subtract(p, mu.astype(np.float32)[:, None, None], out=tmp)
        tmp *= inv.astype(np.float32)[:, None, None]
        out += tmp
        mu_mean += mu
        sd_mean += sd
    k = len(preds)
    out *= (sd_mean / k / k).astype(np.float32)[:, None, None]
    out += (mu_mean / k).astype(np.float32)[:, None, None]
    return np.maximum(out, 0.0, out=out)


#: genes per combined block in :meth:`MixtureResult.predict` (bounds the members' temporaries)
BLOCK_GENES = 128


@dataclass
class MixtureResult:
    """Robust fits of one input at several working scales (:class:`~.result.RobustResult` each); predicts their average."""

    config: RobustConfig
    lattice: str
    members: list
    seconds: float = 0.0
    device: str = "cpu"

    @property
    def net(self):
        return self.members[0].net

    @property
    def final_loss(self) -> float:
        losses = [m.final_loss for m in self.members if np.isfinite(m.final_loss)]
        return float(np.mean(losses)) if losses else float("nan")

    @property
    def epochs_run(self) -> int:
        return int(max(m.epochs_run for m in self.members))

    @property
    def history(self) -> list:
        """Every member's training history (empty without the network), rows tagged with the member's scale."""
        return [{"scale": m.config.scale, **row} for m in self.members for row in m.history]

    @property
    def selection(self) -> list:
        """Every member's self-supervised score table, rows tagged with the member's scale."""
        return [{"scale": m.config.scale, **row} for m in self.members for row in m.selection]

    def provenance(self) -> dict:
        first = self.members[0].provenance()
        return {
            **first,
            "robust_config": self.config.to_dict(),
            "selection": self.selection,
            "final_loss": self.final_loss,
            "epochs_run": self.epochs_run,
            "train_seconds": float(self.seconds),
            "combine": "per-gene z-score average over the enhanced in-tissue positions (stentrans.models.robust.mixture)",
            "members": [m.provenance() for m in self.members],
        }

    def context_for(self, maps: np.ndarray, mask: np.ndarray):
        return [m.context_for(maps, mask) for m in self.members]

    def predict(self, maps: np.ndarray, mask: np.ndarray, context=None, chunk: int = 512, self_weight: float | None = None) -> np.ndarray:
        """Enhanced maps ``(n, 2u, 2v)``, raw counts: the members' per-gene average (:func:`combine`).

        ``self_weight``: as :func:`~.result.predict_counts` (the members' own
        estimates at the measured spots, each spot weighing its own value so).
        """
        maps = np.asarray(maps, dtype=np.float32)
        mask = np.asarray(mask, dtype=bool)
        ctx = context if context is not None else self.context_for(maps, mask)
        H = enhanced_mask(mask, self.lattice)
        u, v = mask.shape
        out = np.empty((maps.shape[0], 2 * u, 2 * v), dtype=np.float32)
        step = max(1, min(int(chunk), BLOCK_GENES))
        # the members' own estimates at measured spots (the mixture keeps the counts itself when asked)
        sw = measured_self_weight(self.config, self_weight)
        for s in range(0, maps.shape[0], step):  # per gene: blocks of genes give the same numbers
            preds = [m.predict(maps[s : s + step], mask, context=c, chunk=step, self_weight=sw) for m, c in zip(self.members, ctx)]
            out[s : s + step] = combine(preds, H)
            del preds
        if self.config.keep_measured and self_weight is None:
            p, q = np.nonzero(mask)
            out[:, 2 * p, 2 * q] = (maps * mask)[:, p, q]
        return out
