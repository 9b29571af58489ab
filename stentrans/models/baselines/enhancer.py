"""The baselines behind the :class:`~stentrans.models.base.Enhancer` interface."""

from __future__ import annotations

import time
from dataclasses import fields

import numpy as np

from ..._errors import InputError
from ..base import Enhancer, Fitted, genes_of
from .config import DISTConfig, NEDIConfig
from .dispatch import upsample
from .dist import train_dist

#: interpolation methods (no training)
INTERPOLATIONS = ("linear", "cubic", "nn", "nedi")
_SETTINGS = {"linear": (), "cubic": (), "nn": (), "nedi": tuple(f.name for f in fields(NEDIConfig))}
_DIST_SETTINGS = tuple(f.name for f in fields(DISTConfig))


class InterpolationFitted(Fitted):
    """An interpolation method: nothing is learnt, only the lattice is kept."""

    def __init__(self, method: str, interp: str, lattice: str, settings: dict):
        self.method = method
        self.interp = interp
        self.lattice = lattice
        self.settings = dict(settings)

    def predict(self, maps: np.ndarray, mask: np.ndarray, out_mask: np.ndarray | None = None, *, genes=None, chunk: int = 512, progress: bool = False) -> np.ndarray:
        """Interpolated ``(len(genes), 2u, 2v)``; positions outside ``out_mask`` (default H(M)) are 0.

        All requested genes go through one call (the numbers do not depend on
        the gene set; one call shares the triangulation).
        """
        gi = genes_of(maps, genes)
        sel = maps if genes is None else maps[gi]
        return upsample(sel, mask, self.lattice, self.interp, out_mask=out_mask, **self.settings)

    def provenance(self) -> dict:
        return {**super().provenance(), "settings": dict(self.settings)}


class InterpolationEnhancer(Enhancer):
    """Linear, Cubic, NN or NEDI (``method``); ``settings``: NEDI's, the fields of :class:`NEDIConfig`."""

    def __init__(self, name: str = "linear", method: str = "linear", **settings):
        if method not in INTERPOLATIONS:
            raise InputError(None, "method", f"{method!r}: must be one of {', '.join(INTERPOLATIONS)}")
        bad = sorted(set(settings) - set(_SETTINGS[method]))
        if bad:
            raise InputError(None, "settings", f"{name}: unknown setting(s) {', '.join(bad)}")
        self.name = name
        self.interp = method
        self.settings = dict(settings)

    def fit(self, maps: np.ndarray, mask: np.ndarray, lattice: str, *, seed: int = 0, device="auto", progress: bool = False) -> InterpolationFitted:
        return InterpolationFitted(self.name, self.interp, lattice, self.settings)


class DISTFitted(Fitted):
    """A trained DIST network (``model``: :class:`DISTNet`)."""

    def __init__(self, model, lattice: str, method: str = "dist", clip_negative=None, seconds: float = 0.0):
        self.model = model
        self.method = method
        self.lattice = lattice
        self.clip_negative = clip_negative
        self.seconds = float(seconds)

    @property
    def final_loss(self) -> float:
        h = self.model.loss_history
        return float(h[-1]) if h else float("nan")

    @property
    def epochs_run(self) -> int:
        return len(self.model.loss_history)

    def predict(self, maps: np.ndarray, mask: np.ndarray, out_mask: np.ndarray | None = None, *, genes=None, chunk: int = 512, progress: bool = False) -> np.ndarray:
        """DIST's ``(len(genes), 2u, 2v)``; clipped at 0 for non-negative data, 0 outside ``out_mask`` (default H(M))."""
        gi = genes_of(maps, genes)
        sel = maps if genes is None else maps[gi]
        return upsample(sel, mask, self.lattice, "dist", out_mask=out_mask, model=self.model, clip_negative=self.clip_negative)

    def provenance(self) -> dict:
        return {**super().provenance(), "train_config": dict(getattr(self.model, "train_config", {})), "final_loss": self.final_loss}


class DISTEnhancer(Enhancer):
    """DIST: trained self-supervised on ``(D(G), G)`` of the maps given to ``fit``.

    ``settings``: the fields of :class:`DISTConfig` (``epochs``,
    ``batch_size``, ``lr``, ...) and ``clip_negative`` (default: clip at 0
    when the data are non-negative).

    As :func:`~.dispatch.upsample` does, DIST learns from the maps it
    enhances: to reproduce ``upsample(maps, ..., "dist")``, fit on the maps
    that are then predicted.
    """

    def __init__(self, name: str = "dist", *, clip_negative=None, **settings):
        bad = sorted(set(settings) - set(_DIST_SETTINGS))
        if bad:
            raise InputError(None, "settings", f"{name}: unknown setting(s) {', '.join(bad)}")
        self.name = name
        self.clip_negative = clip_negative
        self.settings = dict(settings)

    def fit(self, maps: np.ndarray, mask: np.ndarray, lattice: str, *, seed: int = 0, device="auto", progress: bool = False) -> DISTFitted:
        t0 = time.perf_counter()
        model = train_dist(maps, mask, lattice, seed=int(seed), device=device, **self.settings)
        return DISTFitted(model, lattice, self.name, self.clip_negative, time.perf_counter() - t0)
