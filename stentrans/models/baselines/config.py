"""Settings of the trained and the tunable baselines (torch-free: the command line builds arguments from them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["NEDIConfig", "DISTConfig"]


@dataclass
class NEDIConfig:
    """NEDI's settings (see :func:`stentrans.models.baselines.nedi.nedi`)."""

    window: int = field(default=4, metadata={"help": "side M of the training window (even, >= 2)"})
    ridge: float = field(default=1e-3, metadata={"help": "ridge added to the 4x4 systems, relative to their trace (0: plain NEDI)"})
    flat_tol: float = field(default=1e-4, metadata={"help": "windows with variance <= this x the gene's variance use the plain average"})
    chunk_pixels: int = field(default=1 << 18, metadata={"help": "genes are processed in chunks of about this many output pixels"})

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DISTConfig:
    """DIST's network and training settings (defaults: the authors' code, github.com/zhaoyp1997/DIST)."""

    epochs: int = field(default=200, metadata={"help": "training epochs"})
    batch_size: int = field(default=128, metadata={"help": "genes per batch"})
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate"})
    width: int = field(default=64, metadata={"help": "channels of every convolution"})
    n_blocks: int = field(default=2, metadata={"help": "residual blocks"})
    init_variance: float = field(default=0.1, metadata={"help": "weights ~ N(0, init_variance / fan_in)"})
    last_lr_scale: float = field(default=1e-3, metadata={"help": "learning rate of the reconstruction layer, relative to lr"})

    def to_dict(self) -> dict:
        return asdict(self)
