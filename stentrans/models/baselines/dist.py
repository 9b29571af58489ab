"""DIST (Zhao, Wang & Hu, Brief. Bioinform. 24(2):bbad013, 2023): network, self-supervised training, prediction."""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import torch

from ..._errors import InputError
from ..._utils import configure_threads, pick_device, set_seed
from ...lattice import downsample
from .config import DISTConfig
from .interp import _check

log = logging.getLogger("stentrans.baselines")

__all__ = ["DISTNet", "train_dist", "predict_dist"]

_D = DISTConfig()


class DISTNet(torch.nn.Module):
    """DIST's network (Zhao, Wang & Hu, Brief. Bioinform. 24(2):bbad013, 2023).

    A VDSR-like residual CNN that maps a ``(h, w)`` map to 4 channels, one per
    position of each 2x2 output block, merged into ``(2h, 2w)`` (channels 0,
    1, 2, 3 = top-left, top-right, bottom-left, bottom-right). Per block:
    ``a = conv(x)``; ``z = conv(conv(relu(a)))``; ``x = relu(z + a)``. Then a
    last conv to 4 channels, plus the input added to every channel. All
    convolutions are 3x3, stride 1, zero "same" padding, ``width`` channels;
    weights ~ N(0, init_variance / fan_in), biases 0. The defaults (2 blocks,
    width 64, variance 0.1) are those of the authors' code
    (github.com/zhaoyp1997/DIST, ``configs.py`` and ``network.py``): it
    declares 11 filter banks, but through its index arithmetic only these 7
    convolutions enter the graph, and the two inner convolutions of a block
    have no nonlinearity between them.
    """

    def __init__(self, width: int = _D.width, n_blocks: int = _D.n_blocks, init_variance: float = _D.init_variance):
        super().__init__()
        self.config = {"width": int(width), "n_blocks": int(n_blocks), "init_variance": float(init_variance)}
        nn = torch.nn
        blocks = []
        cin = 1
        for _ in range(n_blocks):
            blocks.append(nn.ModuleList([nn.Conv2d(cin, width, 3, padding=1), nn.Conv2d(width, width, 3, padding=1), nn.Conv2d(width, width, 3, padding=1)]))
            cin = width
        self.blocks = nn.ModuleList(blocks)
        self.last = nn.Conv2d(cin, 4, 3, padding=1)  # the "reconstruction layer"
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                fan_in = mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1]
                nn.init.normal_(mod.weight, 0.0, math.sqrt(init_variance / fan_in))
                nn.init.zeros_(mod.bias)
        self.loss_history: list[float] = []

    def forward(self, x):
        """``(B, h, w) -> (B, 2h, 2w)``."""
        x1 = x.unsqueeze(1)
        h = x1
        for conv_in, conv_a, conv_b in self.blocks:
            a = conv_in(h)
            h = torch.relu(conv_b(conv_a(torch.relu(a))) + a)
        y = self.last(h) + x1  # residual: the input added to each of the 4 channels
        return torch.nn.functional.pixel_shuffle(y, 2).squeeze(1)


def train_dist(
    maps,
    mask,
    lattice,
    epochs: int = _D.epochs,
    seed: int = 0,
    device="auto",
    batch_size: int = _D.batch_size,
    lr: float = _D.lr,
    width: int = _D.width,
    n_blocks: int = _D.n_blocks,
    init_variance: float = _D.init_variance,
    last_lr_scale: float = _D.last_lr_scale,
):
    """Train DIST self-supervised on the pairs ``(D(G), G)`` of the given maps.

    Exactly stEnTrans's pretext task (docs/method.md section 1): input
    ``D(G)`` from :func:`stentrans.lattice.downsample`, target ``G``, loss the
    mean squared error over the in-tissue pixels ``M`` (output cropped to the
    target's shape). Genes are the samples; a fresh random order each epoch.
    Adam (lr ``lr``; the reconstruction layer at ``lr * last_lr_scale``, as in
    the authors' code); defaults: the authors' 200 epochs, batches of 128.
    The model sees the same ``(u, v)`` maps as stEnTrans (on hex the
    checkerboard, zeros at ``p + q`` odd) rather than DIST's own re-indexing
    of Visium rows, so both models get identical inputs and targets.
    Seeded through :func:`stentrans._utils.set_seed` plus a dedicated
    generator for the gene order: the same seed gives the same model on CPU.

    Returns the trained :class:`DISTNet` (eval mode) with ``loss_history``
    (mean loss per epoch), ``lattice`` and ``train_config``.
    """
    maps, mask, _ = _check(maps, mask, lattice, None)
    dev = pick_device(device)
    configure_threads(dev)
    set_seed(seed)
    model = DISTNet(width=width, n_blocks=n_blocks, init_variance=init_variance).to(dev)
    last = set(id(p) for p in model.last.parameters())
    body = [p for p in model.parameters() if id(p) not in last]
    opt = torch.optim.Adam([{"params": body, "lr": lr}, {"params": list(model.last.parameters()), "lr": lr * last_lr_scale}])
    target = (maps * mask).astype(np.float32)
    x_lr, _ = downsample(target, mask, lattice)
    x_all = torch.from_numpy(np.ascontiguousarray(x_lr, dtype=np.float32)).to(dev)
    y_all = torch.from_numpy(np.ascontiguousarray(target)).to(dev)
    m = torch.from_numpy(mask.astype(np.float32)).to(dev)
    n_in = float(mask.sum())
    n = x_all.shape[0]
    if n == 0:
        raise InputError(None, "genes", "no gene maps to train DIST on")
    u, v = mask.shape
    gen = torch.Generator().manual_seed(int(seed))
    t0 = time.perf_counter()
    model.train()
    for _ in range(int(epochs)):
        perm = torch.randperm(n, generator=gen).to(dev)
        tot = 0.0
        for s in range(0, n, batch_size):
            idx = perm[s : s + batch_size]
            out = model(x_all[idx])[:, :u, :v]
            loss = (((out - y_all[idx]) * m) ** 2).sum() / (len(idx) * n_in)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(idx)
        model.loss_history.append(tot / n)
    model.eval()
    model.lattice = lattice
    model.train_config = {
        "epochs": int(epochs),
        "seed": int(seed),
        "batch_size": int(batch_size),
        "lr": float(lr),
        "last_lr_scale": float(last_lr_scale),
        "device": str(dev),
        "seconds": time.perf_counter() - t0,
    }
    log.info("DIST trained %d epochs on %d genes in %.1fs, final loss %.4g", epochs, n, model.train_config["seconds"], model.loss_history[-1] if model.loss_history else float("nan"))
    return model


def predict_dist(model, maps, batch_size: int = 256) -> np.ndarray:
    """DIST's raw prediction ``(n_genes, u, v) -> (n_genes, 2u, 2v)`` float32."""
    dev = next(model.parameters()).device
    model.eval()
    maps = np.ascontiguousarray(maps, dtype=np.float32)
    n, u, v = maps.shape
    out = np.empty((n, 2 * u, 2 * v), dtype=np.float32)
    with torch.no_grad():
        for s in range(0, n, batch_size):
            out[s : s + batch_size] = model(torch.from_numpy(maps[s : s + batch_size]).to(dev)).cpu().numpy()
    return out


def _upsample_dist(maps, mask, lattice, out_mask, model=None, clip_negative=None, **train_kw):
    """DIST's prediction of checked inputs (see :func:`~.dispatch.upsample`), training a model first when none is given."""
    if model is None:
        model = train_dist(maps, mask, lattice, **train_kw)
    elif train_kw:
        raise TypeError(f"training arguments {sorted(train_kw)} given together with a trained model")
    out = predict_dist(model, maps * mask)
    if clip_negative is None:  # as the authors' code: clip when the data are non-negative
        clip_negative = bool((maps[:, mask] >= 0).all())
    if clip_negative:
        np.maximum(out, 0, out=out)
    out *= out_mask[None]
    return out
