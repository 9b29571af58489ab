"""The default method, ``robust``, behind the :class:`~stentrans.models.base.Enhancer` interface."""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from ..._errors import InputError
from ..base import Enhancer, Fitted, genes_of
from .config import RobustConfig
from .fit import fit_robust

_FIELDS = tuple(f.name for f in fields(RobustConfig) if f.name != "seed")


class RobustFitted(Fitted):
    """A fitted robust model (wraps :class:`RobustResult` as ``result``)."""

    def __init__(self, result, method: str = "robust"):
        self.result = result
        self.method = method
        self.lattice = result.lattice
        self.seconds = float(result.seconds)

    @property
    def final_loss(self) -> float:
        return self.result.final_loss

    @property
    def epochs_run(self) -> int:
        return int(self.result.epochs_run)

    def predict(self, maps: np.ndarray, mask: np.ndarray, out_mask: np.ndarray | None = None, *, genes=None, chunk: int = 512, progress: bool = False, self_weight: float | None = None) -> np.ndarray:
        """Enhanced maps ``(len(genes), 2u, 2v)``; the spot context comes from all genes of ``maps``.

        ``self_weight``: see :func:`~.result.predict_counts` (None: the fitted configuration's behaviour).
        """
        res = self.result
        # the context reads the in-tissue pixels only (maps * mask there is maps): no masked copy of all genes per call
        ctx = res.context_for(maps, mask)
        gi_all = genes_of(maps, genes)
        u, v = maps.shape[1:]
        out = np.empty((len(gi_all), 2 * u, 2 * v), dtype=np.float32)
        for s in range(0, len(gi_all), chunk):
            gi = gi_all[s : s + chunk]
            out[s : s + len(gi)] = res.predict(maps[gi] * mask, mask, context=ctx, chunk=chunk, self_weight=self_weight)[:, : 2 * u, : 2 * v]
        return out

    def estimate(self, maps: np.ndarray, mask: np.ndarray, out_mask: np.ndarray | None = None, *, genes=None, chunk: int = 512, progress: bool = False) -> np.ndarray:
        """The model's estimate at every position: measured spots weigh their own counts by ``measured_weight``."""
        return self.predict(maps, mask, out_mask, genes=genes, chunk=chunk, progress=progress, self_weight=self.result.config.measured_weight)

    def predict_held_out(self, maps: np.ndarray, mask: np.ndarray, *, genes=None, chunk: int = 512) -> np.ndarray:
        """Every measured spot estimated from its neighbours alone (exact leave-one-out of the kernel; same fit, same context)."""
        mask = np.asarray(mask, dtype=bool)
        p, q = np.nonzero(mask)
        return np.ascontiguousarray(self.predict(maps, mask, genes=genes, chunk=chunk, self_weight=0.0)[:, 2 * p, 2 * q])

    def provenance(self) -> dict:
        return {"method": self.method, **self.result.provenance()}


class RobustEnhancer(Enhancer):
    """The default method, ``robust``; settings are :class:`RobustConfig` fields (the seed comes with ``fit``)."""

    def __init__(self, name: str = "robust", **settings):
        bad = sorted(set(settings) - set(_FIELDS))
        if bad:
            raise InputError(None, "settings", f"{name}: unknown setting(s) {', '.join(bad)}")
        self.name = name
        self.settings = dict(settings)

    def config(self, seed: int = 0) -> RobustConfig:
        """The configuration of a fit with ``seed``."""
        return RobustConfig(**self.settings, seed=int(seed))

    def fit(self, maps: np.ndarray, mask: np.ndarray, lattice: str, *, seed: int = 0, device="auto", progress: bool = False) -> RobustFitted:
        return RobustFitted(fit_robust(maps, mask, lattice, self.config(seed), device=device, progress=progress), method=self.name)
