"""The stEnTrans network Phi (docs/method.md section 1).

``Phi`` maps a batch of gene maps ``(B, H, W)`` to ``(B, 2H, 2W)``:

1. zero-pad to a multiple of the patch size ``P``;
2. four convolutions (kernel = stride = ``P``, ``P**2`` output channels each),
   concatenated and flattened to ``h*w`` tokens of dimension ``D = 4 P**2``;
3. sinusoidal absolute position encoding over the token index ("Pos");
4. ``depth`` pre-LayerNorm transformer blocks: multi-head self-attention, then
   an MLP ``D -> 2D -> D`` with GELU, a residual add after each;
5. reverse embedding: every token's ``D = 4 P**2`` values are laid back out as
   four ``P x P`` patches, giving a 4-channel map ``(4, H, W)`` (the exact
   inverse of the patch layout of step 2);
6. the input map is added to every channel ("Res");
7. the four channels are merged into ``(2H, 2W)``: in each 2x2 block channel
   0 is top-left, 1 top-right, 2 bottom-left, 3 bottom-right.

The output is cropped back to twice the unpadded input size. Any input size
works: the enhance step feeds maps twice as large as training did.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig

__all__ = ["ModelConfig", "StEnTrans", "Attention", "Block", "merge_2x2", "sinusoidal_encoding", "count_parameters"]


def sinusoidal_encoding(n: int, dim: int, device=None, dtype=torch.float32, positions: torch.Tensor | None = None) -> torch.Tensor:
    """Transformer sine/cosine table ``(n, dim)``: sin on even, cos on odd features.

    ``positions`` (``n`` token indices) replaces ``0 .. n-1``, e.g. a tile's
    indices in the whole map.
    """
    pos = (torch.arange(n, device=device, dtype=torch.float64) if positions is None else positions.to(device=device, dtype=torch.float64))[:, None]
    i = torch.arange(dim, device=device, dtype=torch.float64)[None, :]
    angle = pos / torch.pow(10000.0, 2 * torch.div(i, 2, rounding_mode="floor") / dim)
    table = torch.where(i.long() % 2 == 0, torch.sin(angle), torch.cos(angle))
    return table.to(dtype)


#: token counts up to this use explicit attention on the CPU (melanoma training maps: 20)
SHORT_SEQUENCE = 32


class Attention(nn.Module):
    """Multi-head self-attention (``heads`` heads over ``dim`` features)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"token dimension {dim} is not divisible by heads={heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        # unbind: its backward stacks the three gradients (indexing would zero-fill three full copies)
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        if x.is_cuda or n > SHORT_SEQUENCE:
            # fused kernels; on the CPU 2-3x faster than explicit attention from ~64
            # tokens on and never materialising the n x n scores
            out = F.scaled_dot_product_attention(q, k, v)
        else:  # explicit softmax attention: as fast for the short maps of ST training
            att = (q @ k.transpose(-1, -2)) * (q.shape[-1] ** -0.5)
            out = att.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-LayerNorm transformer block."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(round(dim * mlp_ratio))
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class StEnTrans(nn.Module):
    """Phi: ``(B, H, W) -> (B, 2H, 2W)``."""

    def __init__(self, config: ModelConfig | None = None, **kw):
        super().__init__()
        self.config = config or ModelConfig(**kw)
        c = self.config
        P = c.patch_size
        self.embed = nn.ModuleList([nn.Conv2d(1, P * P, kernel_size=P, stride=P) for _ in range(4)])
        self.blocks = nn.ModuleList([Block(c.dim, c.heads, c.mlp_ratio) for _ in range(c.depth)])

    def forward(self, x: torch.Tensor, offset: tuple[int, int, int] | None = None) -> torch.Tensor:
        """``x``: ``(B, H, W)``. ``offset = (row, col, width)`` in patches: ``x`` is a tile
        whose top-left patch sits at (row, col) of a map ``width`` patches wide; the
        position encoding then uses the whole map's token indices."""
        if x.dim() == 4:
            x = x[:, 0]
        B, H, W = x.shape
        P = self.config.patch_size
        Hp, Wp = -(-H // P) * P, -(-W // P) * P
        xp = F.pad(x, (0, Wp - W, 0, Hp - H))[:, None]  # (B, 1, Hp, Wp)
        h, w = Hp // P, Wp // P
        tok = torch.cat([conv(xp) for conv in self.embed], dim=1)  # (B, D, h, w)
        tok = tok.flatten(2).transpose(1, 2)  # (B, h*w, D)
        if self.config.use_pos:
            positions = None
            if offset is not None:
                r0, c0, width = offset
                ii = torch.arange(h, device=tok.device)[:, None] + r0
                jj = torch.arange(w, device=tok.device)[None, :] + c0
                positions = (ii * width + jj).reshape(-1)
            tok = tok + sinusoidal_encoding(h * w, self.config.dim, tok.device, tok.dtype, positions)
        for blk in self.blocks:
            tok = blk(tok)
        # reverse embedding: token (i, j) feature (k, a, b) -> channel k, pixel (i P + a, j P + b)
        out = tok.view(B, h, w, 4, P, P).permute(0, 3, 1, 4, 2, 5).reshape(B, 4, Hp, Wp)
        if self.config.use_res:
            out = out + xp
        return merge_2x2(out)[:, : 2 * H, : 2 * W]


def merge_2x2(ch4: torch.Tensor) -> torch.Tensor:
    """(B, 4, H, W) -> (B, 2H, 2W); channels 0..3 = top-left, top-right, bottom-left, bottom-right."""
    B, _, H, W = ch4.shape
    return ch4.view(B, 2, 2, H, W).permute(0, 3, 1, 4, 2).reshape(B, 2 * H, 2 * W)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())
