"""The optional network of the default method, ``robust``: stEnTrans blocks predicting a correction to the base."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..paper.network import Block, merge_2x2, sinusoidal_encoding
from .config import RobustConfig

__all__ = ["RobustNet", "net_channels", "n_channels"]


class RobustNet(nn.Module):
    """stEnTrans backbone on several input channels, output added to a base.

    Input ``(B, C, H, W)``, base ``(B, 2H, 2W)``; output ``(B, 2H, 2W)``.
    The token head is zero-initialised, so training starts from the base.
    """

    def __init__(self, cfg: RobustConfig, in_channels: int):
        super().__init__()
        self.cfg = cfg
        P = cfg.patch_size
        dim = 4 * P * P
        self.dim = dim
        self.embed = nn.ModuleList([nn.Conv2d(in_channels, P * P, kernel_size=P, stride=P) for _ in range(4)])
        self.blocks = nn.ModuleList([Block(dim, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, dim)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        P = self.cfg.patch_size
        Hp, Wp = -(-H // P) * P, -(-W // P) * P
        xp = F.pad(x, (0, Wp - W, 0, Hp - H))
        h, w = Hp // P, Wp // P
        tok = torch.cat([conv(xp) for conv in self.embed], dim=1).flatten(2).transpose(1, 2)
        if self.cfg.pos == "absolute":
            tok = tok + sinusoidal_encoding(h * w, self.dim, tok.device, tok.dtype)
        for blk in self.blocks:
            tok = blk(tok)
        tok = self.head(self.norm(tok))
        out = tok.view(B, h, w, 4, P, P).permute(0, 3, 1, 4, 2, 5).reshape(B, 4, Hp, Wp)
        return merge_2x2(out)[:, : 2 * H, : 2 * W] + base


def net_channels(z: torch.Tensor, r: torch.Tensor, m: torch.Tensor, cfg: RobustConfig) -> torch.Tensor:
    """The network's input channels: the working-scale maps, their denoised version (rank > 0) and the mask."""
    mm = m.to(z.dtype).expand_as(z)
    chans = [z, mm] if cfg.rank == 0 else [z, r, mm]  # rank "auto": always the denoised channel
    return torch.stack(chans, dim=1)


def n_channels(cfg: RobustConfig) -> int:
    """Input channels of the network for ``cfg``."""
    return 2 if cfg.rank == 0 else 3
