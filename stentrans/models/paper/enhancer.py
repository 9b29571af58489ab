"""The paper's stEnTrans behind the :class:`~stentrans.models.base.Enhancer` interface."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np

from ..._errors import InputError
from ..._utils import sha256_file
from ..base import Enhancer, Fitted, genes_of
from .checkpoint import model_from_checkpoint
from .config import ModelConfig, TrainConfig
from .tiles import predict as predict_network
from .train import fit as fit_network

_MODEL_FIELDS = tuple(f.name for f in fields(ModelConfig))
_TRAIN_FIELDS = tuple(f.name for f in fields(TrainConfig) if f.name != "seed")


class PaperFitted(Fitted):
    """A trained stEnTrans network (wraps the training result or a checkpoint).

    Attributes
    ----------
    model
        The :class:`~stentrans.models.paper.network.StEnTrans` network (eval mode).
    losses
        Mean training loss per epoch.
    """

    def __init__(self, model, lattice: str, *, method: str = "stentrans", result=None, checkpoint=None, state: dict | None = None):
        self.model = model
        self.lattice = lattice or ""
        self.method = method
        self.result = result
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        self.state = state
        if result is not None:
            self.losses = list(result.losses)
            self._epochs_run = int(result.epochs_run)
            self.seconds = float(result.seconds)
            self.device = result.device
        else:
            st = state or {}
            self.losses = list(st.get("losses", []))
            self._epochs_run = int(st.get("epoch", 0))
            self.seconds = 0.0
            self.device = str(next(model.parameters()).device)

    @classmethod
    def load(cls, path, device="auto", method: str = "stentrans") -> PaperFitted:
        """A fitted model from a checkpoint written by training."""
        model, state = model_from_checkpoint(path, device=device)
        return cls(model, state.get("lattice"), method=method, checkpoint=path, state=state)

    @property
    def model_config(self) -> ModelConfig:
        """The network's configuration."""
        return self.model.config

    @property
    def train_config(self) -> TrainConfig | None:
        """The training configuration (None for a checkpoint whose settings this version does not know)."""
        if self.result is not None:
            return self.result.train_config
        d = dict(self.state.get("train_config", {}))
        if set(d) - set(_TRAIN_FIELDS) - {"seed"}:
            return None
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return TrainConfig(**d)

    @property
    def final_loss(self) -> float:
        if self.result is not None:
            return self.result.final_loss
        return self.state["losses"][-1] if self.state and self.state["losses"] else float("nan")

    @property
    def epochs_run(self) -> int:
        return self._epochs_run

    def predict(self, maps: np.ndarray, mask: np.ndarray, out_mask: np.ndarray | None = None, *, genes=None, chunk: int = 512, progress: bool = False) -> np.ndarray:
        """``Phi(maps[genes] * mask)``: ``(len(genes), 2u, 2v)`` float32, ``chunk`` genes at a time."""
        gi_all = genes_of(maps, genes)
        u, v = maps.shape[1:]
        out = np.empty((len(gi_all), 2 * u, 2 * v), dtype=np.float32)
        for s in range(0, len(gi_all), chunk):
            gi = gi_all[s : s + chunk]
            out[s : s + len(gi)] = predict_network(self.model, maps[gi] * mask, batch_size=chunk, progress=progress)[:, : 2 * u, : 2 * v]
        return out

    def provenance(self) -> dict:
        """What ``enhance`` records in ``uns["stentrans"]`` for this model."""
        if self.result is None:  # from a checkpoint
            st = self.state
            return {
                "method": self.method,
                "model_config": st["model_config"],
                "train_config": st["train_config"],
                "seed": int(st["train_config"]["seed"]),
                "epochs_run": st["epoch"],
                "final_loss": st["losses"][-1] if st["losses"] else float("nan"),
                "checkpoint_sha256": sha256_file(self.checkpoint),
                **st.get("extra", {}),
            }
        res = self.result
        prov = {"method": self.method, "model_config": res.model_config.to_dict(), "train_config": res.train_config.to_dict(), "seed": int(res.train_config.seed), "epochs_run": res.epochs_run, "final_loss": res.final_loss, "train_seconds": res.seconds, "device": res.device}
        if self.checkpoint is not None and self.checkpoint.is_file():
            prov["checkpoint_sha256"] = sha256_file(self.checkpoint)
        return prov


class PaperEnhancer(Enhancer):
    """stEnTrans (paper): settings are :class:`ModelConfig` and :class:`TrainConfig` fields.

    ``checkpoint``, ``resume`` and ``stop_after`` are passed to training.
    """

    def __init__(self, name: str = "stentrans", *, checkpoint=None, resume: bool = False, stop_after: int | None = None, **settings):
        bad = sorted(set(settings) - set(_MODEL_FIELDS) - set(_TRAIN_FIELDS))
        if bad:
            raise InputError(None, "settings", f"{name}: unknown setting(s) {', '.join(bad)}")
        self.name = name
        self.model_settings = {k: v for k, v in settings.items() if k in _MODEL_FIELDS}
        self.train_settings = {k: v for k, v in settings.items() if k in _TRAIN_FIELDS}
        if "betas" in self.train_settings:
            self.train_settings["betas"] = tuple(self.train_settings["betas"])
        self.checkpoint = checkpoint
        self.resume = resume
        self.stop_after = stop_after

    def configs(self, seed: int = 0) -> tuple[ModelConfig, TrainConfig]:
        """The model and training configuration of a fit with ``seed``."""
        return ModelConfig(**self.model_settings), TrainConfig(**self.train_settings, seed=int(seed))

    def fit(self, maps: np.ndarray, mask: np.ndarray, lattice: str, *, seed: int = 0, device="auto", progress: bool = False) -> PaperFitted:
        mc, tc = self.configs(seed)
        res = fit_network(maps, mask, lattice, mc, tc, device=device, checkpoint=self.checkpoint, resume=self.resume, progress=progress, stop_after=self.stop_after)
        return PaperFitted(res.model, lattice, method=self.name, result=res, checkpoint=self.checkpoint)
