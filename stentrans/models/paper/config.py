"""Settings of the paper's network and of its training (defaults: the authors' code).

Torch-free, so the command line can build its arguments from these fields
without loading PyTorch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

#: training maps with more patch tokens than this are trained on random windows (crop=None)
MAX_TRAIN_TOKENS = 2048
#: about this many tokens per automatic training window
CROP_TOKENS = 1024


@dataclass
class ModelConfig:
    """Hyper-parameters of the network Phi (defaults: the authors' code)."""

    patch_size: int = field(default=3, metadata={"help": "patch side P (pixels); tokens have 4 P^2 features"})
    depth: int = field(default=12, metadata={"help": "transformer blocks"})
    heads: int = field(default=4, metadata={"help": "attention heads"})
    mlp_ratio: float = field(default=2.0, metadata={"help": "MLP hidden width / token width"})
    use_pos: bool = field(default=True, metadata={"help": "the position encoding of the tokens (paper Table 1: w/o Pos)", "flag": "--no-pos"})
    use_res: bool = field(default=True, metadata={"help": "the residual add of the up-sampled input (paper Table 1: w/o Res)", "flag": "--no-res"})

    @property
    def dim(self) -> int:
        """Token dimension ``D = 4 P^2``."""
        return 4 * self.patch_size**2

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainConfig:
    """Optimisation settings of the self-supervised pretraining (defaults: the authors' code)."""

    epochs: int = field(default=500, metadata={"help": "training epochs"})
    batch_size: int = field(default=512, metadata={"help": "genes per batch"})
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate"})
    betas: tuple[float, float] = field(default=(0.5, 0.6), metadata={"help": "Adam betas"})
    eps: float = field(default=1e-6, metadata={"help": "Adam epsilon"})
    seed: int = field(default=0, metadata={"help": "seed of the initialisation and the batch order"})
    checkpoint_every: int = field(default=10, metadata={"help": "write the checkpoint every this many epochs"})
    #: side (pixels of the D(G) input) of the random training windows; None: whole
    #: maps up to MAX_TRAIN_TOKENS patch tokens, windows of CROP_TOKENS beyond
    #: (Visium HD); 0: always whole maps
    crop: int | None = field(
        default=None,
        metadata={"help": f"train on random windows of this side (pixels of the half-resolution input); default: whole maps up to {MAX_TRAIN_TOKENS:,} patch tokens, ~{CROP_TOKENS:,}-token windows beyond (Visium HD); 0: always whole maps"},
    )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d
