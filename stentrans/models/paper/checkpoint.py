"""Checkpoints of the paper's network: weights, optimiser, epoch, RNG states and configs.

Written atomically; loaded with ``weights_only=True`` (no pickled code), with
one-line errors for files that are not stentrans checkpoints.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from ..._errors import InputError
from ..._utils import atomic_path, pick_device, sha256_file
from .config import ModelConfig
from .network import StEnTrans

CHECKPOINT_FORMAT = "stentrans-checkpoint-v1"


def _rng_state(gen: torch.Generator) -> dict:
    """Every RNG state training depends on (torch, the shuffling generator, numpy, Python)."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "shuffle": gen.get_state(),
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "python": list(random.getstate()[1]),
        "python_version": int(random.getstate()[0]),
    }


def _set_rng_state(st: dict, gen: torch.Generator) -> None:
    """Restore the states of :func:`_rng_state`."""
    torch.set_rng_state(st["torch"])
    gen.set_state(st["shuffle"])
    np.random.set_state(("MT19937", st["numpy_keys"].numpy().astype(np.uint32), st["numpy_pos"], 0, 0.0))
    random.setstate((st["python_version"], tuple(st["python"]), None))


def save_checkpoint(path, model, optimizer, epoch, losses, model_config, train_config, lattice, gen, extra=None) -> None:
    """Write weights, optimiser, epoch, RNG states and config atomically."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else {},
        "epoch": int(epoch),
        "losses": [float(x) for x in losses],
        "model_config": model_config.to_dict(),
        "train_config": train_config.to_dict(),
        "lattice": lattice,
        "rng": _rng_state(gen) if gen is not None else {},
        "extra": extra or {},
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path) -> dict:
    """Load a checkpoint safely (``weights_only=True``); one-line errors for bad files."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint", "file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, pickle with code, not a torch file
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(path, "checkpoint", f"not a readable stentrans checkpoint ({type(err).__name__}: {msg[:160]})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        fmt = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise InputError(path, "format", f"expected {CHECKPOINT_FORMAT!r}, found {fmt!r}")
    return state


def model_from_checkpoint(path, device="auto") -> tuple[StEnTrans, dict]:
    """The network stored in a checkpoint (eval mode, on ``device``) and the checkpoint's state."""
    state = load_checkpoint(path)
    cfg = ModelConfig(**state["model_config"])
    model = StEnTrans(cfg)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise InputError(path, "model", f"weights do not fit the stored configuration ({str(err).splitlines()[0][:160]})") from None
    dev = pick_device(device)
    model.to(dev).eval()
    return model, state


def checkpoint_sha256(path) -> str:
    """SHA-256 of a checkpoint file."""
    return sha256_file(path)
