"""Settings of the default method, ``robust`` (torch-free: the command line builds arguments from them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..._errors import InputError

__all__ = ["RobustConfig", "SCALES", "BASES", "POS", "LOSS_ON", "member_scales"]

#: working scales of the genes; ``"norm+counts"`` fits both and averages them (:mod:`.mixture`)
SCALES = ("norm+counts", "lognorm", "norm", "counts")
#: base predictors
BASES = ("nc", "nn", "zero")
#: position encodings of the optional network
POS = ("none", "absolute")
#: where the network's loss is taken
LOSS_ON = ("removed", "all")


@dataclass
class RobustConfig:
    """Settings of the default method, ``robust`` (see :mod:`stentrans.models.robust`).

    Data and base
    -------------
    scale : ``"norm"`` (counts per ``target_sum``: library-size normalised),
        ``"lognorm"`` (log1p of those) or ``"counts"`` (raw). Predictions
        on the normalised scales are multiplied back by a library size
        interpolated at every output position (raw counts out). The
        default ``"norm+counts"`` fits ``norm`` and ``counts`` separately
        (each with its own self-supervised rank and bandwidth) and averages
        their predictions per gene (:mod:`.mixture`): which of the two is
        better depends on the data and is not told apart by the
        self-supervised task (benchmarks/realtruth_ablation.py).
    standardize : divide every gene by its sd (multiplied back afterwards).
    rank : spot factors used to denoise each gene (0: none), or ``"auto"``:
        ``k`` = the Gavish-Donoho hard threshold for singular values with
        unknown noise (``omega(beta) * median singular value``) of the
        standardised log1p-normalised spots x genes matrix of the maps given
        to :func:`fit_robust` (at most ``rank_max``), then 0 or ``k``,
        whichever the self-supervised task prefers (with ``sigma``).
    rank_genes : at most this many genes (the most variable) define the factors.
    signal_fraction : only genes detected in more than this fraction of the
        input's spots define the spot factors and score the self-supervised
        choices (all genes are enhanced). Genes seen in a few spots are
        mostly counting noise: with every gene QC keeps (detected in at least
        3 spots) and no such rule, the factors and choices followed them and
        the nested score of the well-detected genes fell (Visium mouse 0.657
        -> 0.648, melanoma 0.178 -> 0.175). The authors' 10 %; 0: every gene.
    base : ``"nc"`` normalised convolution, ``"nn"`` the paper's input copies,
        ``"zero"`` no base.
    sigma : Gaussian bandwidth of the base and of the library-size
        interpolation, in lattice spacings of the input, or ``"auto"``.
    sigma_grid, select_genes : ``sigma="auto"`` picks the bandwidth of the
        grid whose base predicts best on the self-supervised task inside the
        input (the four phases of ``D``: median PCC over ``select_genes``
        random genes, raw counts, positions ``D`` removed), see
        :func:`select_base`. Rank and bandwidth are chosen jointly.
    net : train the transformer (False: the base alone, no training).

    Network (stEnTrans blocks)
    --------------------------
    patch_size, depth, heads, mlp_ratio; pos : ``"none"`` or ``"absolute"``
    (the paper's sinusoidal encoding over the token index).

    Training
    --------
    phases : all four cosets of the down-sampling (else only offset (0, 0)).
    flips : lattice symmetries (square: dihedral group; hex: row/column flips).
    loss_on : ``"removed"`` (positions the down-sampling removed) or ``"all"``
        in-tissue target positions.
    epochs, steps_per_epoch, batch_size, lr, weight_decay.
    max_genes : at most this many genes are used as training samples.
    val_fraction, val_block, val_genes, patience : spatial-block validation.
        The input's spots are cut into blocks of ``val_block`` x ``val_block``
        lattice spacings; a ``val_fraction`` of the blocks is never a training
        target. The self-supervised median PCC (raw counts, ``val_genes``
        random genes) on those spots decides when to stop: after
        ``patience`` epochs without improvement the best epoch's weights are
        kept; epoch 0 is the base alone. Held-out *spots*, not genes: all
        genes share the spots, so a network can memorise spot-level
        structure of its training targets, which a gene hold-out would
        reward.
    seed : one seed for everything random.
    keep_measured : measured spots keep their measured values in the
        predictions (the protocols' view: a method is exact at its inputs).
        ``stentrans.tl.enhance`` asks for the model's own estimate there
        instead (``measured="estimate"``, its default).
    measured_weight : the weight a measured spot gives its own value (and
        library size) in the model's estimate at that spot, relative to the
        kernel's weight 1 at distance 0 (0: estimated from the neighbours
        alone). Measured on five slides (docs/method.md section 3): at 1
        measured spots stay apart from new positions in the standard
        scanpy kNN graph (mixing -0.053 to -0.082), at 0.5 they mix
        (-0.028 to -0.049).
    """

    scale: str = field(default="norm+counts", metadata={"help": "working scale: counts per target_sum (norm), log1p of those (lognorm), raw counts, or norm+counts (both fitted, averaged per gene)", "choices": SCALES})
    target_sum: float = field(default=1e4, metadata={"help": "library size of the normalised scales"})
    standardize: bool = field(default=True, metadata={"help": "divide every gene by its sd (multiplied back afterwards)"})
    rank: int | str = field(default="auto", metadata={"help": "spot factors that denoise each gene (0: none), or auto (Gavish-Donoho rank, then 0 or k by self-supervision)"})
    rank_genes: int = field(default=3000, metadata={"help": "at most this many genes (the most variable) define the factors"})
    signal_fraction: float = field(default=0.1, metadata={"help": "genes detected in more than this fraction of the spots define the factors and score the rank/sigma choice (every gene is enhanced; 0: all genes)"})
    base: str = field(default="nc", metadata={"help": "base predictor: normalised convolution (nc), the paper's input copies (nn) or none (zero)", "choices": BASES})
    sigma: float | str = field(default="auto", metadata={"help": "Gaussian bandwidth of the base and the library-size interpolation (lattice spacings), or auto"})
    rank_max: int = field(default=20, metadata={"help": "at most this many spot factors"})
    sigma_grid: tuple = field(default=(0.5, 0.75, 1.0, 1.25), metadata={"help": "bandwidths tried by sigma=auto"})
    select_genes: int = field(default=1000, metadata={"help": "random genes that score the rank/sigma candidates"})
    net: bool = field(default=False, metadata={"help": "add the transformer correction (off by default: it did not help under the nested protocol)"})
    patch_size: int = field(default=3, metadata={"help": "network: patch side"})
    depth: int = field(default=4, metadata={"help": "network: transformer blocks"})
    heads: int = field(default=4, metadata={"help": "network: attention heads"})
    mlp_ratio: float = field(default=2.0, metadata={"help": "network: MLP hidden width / token width"})
    pos: str = field(default="none", metadata={"help": "network: position encoding", "choices": POS})
    phases: bool = field(default=True, metadata={"help": "training pairs from all four cosets of the down-sampling"})
    flips: bool = field(default=True, metadata={"help": "training pairs from the lattice symmetries"})
    loss_on: str = field(default="removed", metadata={"help": "loss on the positions the down-sampling removed, or on all in-tissue targets", "choices": LOSS_ON})
    epochs: int = field(default=40, metadata={"help": "network: at most this many epochs"})
    steps_per_epoch: int = field(default=20, metadata={"help": "network: optimiser steps per epoch"})
    batch_size: int = field(default=64, metadata={"help": "network: genes per step"})
    lr: float = field(default=1e-3, metadata={"help": "network: AdamW learning rate"})
    weight_decay: float = field(default=0.0, metadata={"help": "network: AdamW weight decay"})
    max_genes: int = field(default=1000, metadata={"help": "network: at most this many genes are training samples"})
    val_fraction: float = field(default=0.25, metadata={"help": "network: fraction of spatial blocks held out for early stopping"})
    val_block: int = field(default=3, metadata={"help": "network: side of the validation blocks (lattice spacings)"})
    val_genes: int = field(default=500, metadata={"help": "network: random genes that score the validation"})
    patience: int = field(default=8, metadata={"help": "network: epochs without improvement before stopping"})
    seed: int = field(default=0, metadata={"help": "one seed for everything random"})
    keep_measured: bool = field(default=True, metadata={"help": "measured spots keep their measured values in the model's predictions (tl.enhance asks for the model's estimate there instead unless measured='counts')"})
    measured_weight: float = field(default=0.5, metadata={"help": "weight of a measured spot's own value in the model's estimate at that spot (1: the kernel's weight at distance 0; 0: from its neighbours alone); 0.5 puts measured and new positions on one footing"})

    def __post_init__(self):
        if self.scale not in SCALES:
            raise InputError(None, "scale", f"{self.scale!r}: must be one of {SCALES}")
        if self.base not in BASES:
            raise InputError(None, "base", f"{self.base!r}: must be one of {BASES}")
        if self.pos not in POS:
            raise InputError(None, "pos", f"{self.pos!r}: must be one of {POS}")
        if self.loss_on not in LOSS_ON:
            raise InputError(None, "loss_on", f"{self.loss_on!r}: must be 'removed' or 'all'")
        if self.rank != "auto" and not (isinstance(self.rank, (int, np.integer)) and int(self.rank) >= 0):
            raise InputError(None, "rank", f"{self.rank!r}: must be an integer >= 0 or 'auto'")
        if self.sigma != "auto" and not (isinstance(self.sigma, (int, float, np.number)) and float(self.sigma) > 0):
            raise InputError(None, "sigma", f"{self.sigma!r}: must be > 0 or 'auto'")
        if not (isinstance(self.measured_weight, (int, float, np.number)) and 0.0 <= float(self.measured_weight) <= 1.0):
            raise InputError(None, "measured_weight", f"{self.measured_weight!r}: must be between 0 and 1")
        if not self.sigma_grid:
            raise InputError(None, "sigma_grid", "must not be empty")
        if not 0 <= float(self.signal_fraction) < 1:
            raise InputError(None, "signal_fraction", f"{self.signal_fraction!r}: must be in [0, 1)")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sigma_grid"] = list(self.sigma_grid)
        return d


def member_scales(scale: str) -> tuple[str, ...]:
    """The single working scales a ``scale`` setting fits (``"norm+counts"`` -> ``("norm", "counts")``)."""
    if scale not in SCALES:
        raise InputError(None, "scale", f"{scale!r}: must be one of {SCALES}")
    return tuple(scale.split("+"))
