"""Patch-grid geometry of the paper's network: training windows, tiles and tiled prediction.

Windows and tiles start on multiples of ``lcm(patch_size, 2)``, so they keep
the patch grid and the hex parity (``p + q`` even) of the whole map; a tile
gets the whole map's position encoding.
"""

from __future__ import annotations

import numpy as np
import torch

from ..._errors import InputError
from ..._utils import pick_device
from .config import CROP_TOKENS, MAX_TRAIN_TOKENS
from .network import StEnTrans

__all__ = ["patch_tokens", "grid_unit", "crop_side", "crop_starts", "tiles", "predict", "MAX_TOKENS", "MAX_TRAIN_TOKENS", "CROP_TOKENS"]

#: maps with more patch tokens than this are enhanced in overlapping tiles
MAX_TOKENS = 2048


def patch_tokens(shape, patch_size: int) -> int:
    """Patch tokens of a ``shape`` map once padded to whole patches."""
    u, v = (int(d) for d in shape)
    return -(-u // patch_size) * -(-v // patch_size)


def grid_unit(patch_size: int) -> int:
    """``lcm(patch_size, 2)``: windows and tiles starting on multiples of it keep the
    patch grid and hex parity (``p + q`` even) of the whole map."""
    return patch_size * 2 // int(np.gcd(patch_size, 2))


def crop_side(crop: int | None, shape, patch_size: int) -> int | None:
    """Side of the training windows (pixels of D(G)), or None for whole maps.

    Sides are multiples of ``lcm(patch_size, 2)`` so windows keep the patch
    grid and hex parity of the whole map.
    """
    u, v = (int(d) for d in shape)
    P = patch_size
    unit = grid_unit(P)
    if crop is None:
        if patch_tokens((u, v), P) <= MAX_TRAIN_TOKENS:
            return None
        crop = int(np.sqrt(CROP_TOKENS)) * P
    crop = int(crop)
    if crop < 0:
        raise InputError(None, "crop", f"{crop}: must be >= 0 (0 = whole maps)")
    if crop == 0 or (crop >= u and crop >= v):
        return None
    return max(unit, crop // unit * unit)


def crop_starts(mask_hr: np.ndarray, shape, side: int, patch_size: int) -> np.ndarray:
    """Top-left corners ``(r0, c0)`` (pixels of D(G)) of the windows that hold tissue.

    Corners are multiples of ``lcm(patch_size, 2)``; where the far edge does not
    fall on that grid, one more corner past ``n - side`` gives a shorter last
    window, so every pixel lies in some window.
    """
    u, v = (int(d) for d in shape)
    unit = grid_unit(patch_size)

    def starts(n):
        last = max(0, n - side)
        return list(range(0, last + 1, unit)) + ([last - last % unit + unit] if last % unit else [])

    m = np.asarray(mask_hr, dtype=bool)
    out = [(r, c) for r in starts(u) for c in starts(v) if m[2 * r : 2 * (r + side), 2 * c : 2 * (c + side)].any()]
    if not out:
        raise InputError(None, "mask", "no training window holds an in-tissue spot")
    return np.asarray(out, dtype=np.int64)


def _tile_starts(n: int, tile: int, step: int) -> list[int]:
    if n <= tile:
        return [0]
    starts = list(range(0, n - tile, step)) + [n - tile]
    return sorted(set(starts))


def _ramp(n: int, ov: int, lead: bool, trail: bool) -> np.ndarray:
    """Blending weights along one axis of a tile: linear ramps over the overlaps."""
    w = np.ones(n, dtype=np.float32)
    if ov > 0:
        up = (np.arange(ov, dtype=np.float32) + 0.5) / ov
        if lead:
            w[:ov] = np.minimum(w[:ov], up)
        if trail:
            w[n - ov :] = np.minimum(w[n - ov :], up[::-1])
    return w


def tiles(shape, patch_size: int, max_tokens: int = MAX_TOKENS, overlap: int | None = None):
    """Overlapping tiles ``(r0, c0, h, w)`` covering a ``shape`` map, or one tile if it fits.

    Tile sides and starts are multiples of ``lcm(patch_size, 2)``, so patches
    line up with the untiled patch grid and hex parity (``p + q`` even) is
    kept inside every tile. ``overlap`` (pixels) defaults to a quarter tile.
    """
    u, v = shape
    P = patch_size
    unit = grid_unit(P)
    if patch_tokens((u, v), P) <= max_tokens:
        return [(0, 0, u, v)], 0
    side = max(unit * 2, (int(np.sqrt(max_tokens)) * P) // unit * unit)
    ov = overlap if overlap is not None else max(unit, side // 4 // unit * unit)
    ov = min(ov, side - unit)
    step = side - ov
    th, tw = min(side, u), min(side, v)

    def spans(n, t):
        # the last start may break the unit alignment: snap it down and let that tile run to the end
        starts = sorted({int(r - r % unit) for r in _tile_starts(n, t, step)})
        return [(r, (n - r) if i == len(starts) - 1 else min(t, n - r)) for i, r in enumerate(starts)]

    return [(r, c, h, w) for r, h in spans(u, th) for c, w in spans(v, tw)], int(ov)


def predict(model: StEnTrans, maps: np.ndarray, batch_size: int = 512, device=None, max_tokens: int = MAX_TOKENS, overlap: int | None = None, progress: bool = False) -> np.ndarray:
    """Phi(maps): ``(n_genes, u, v) -> (n_genes, 2u, 2v)`` float32, in gene chunks.

    Maps with more than ``max_tokens`` patch tokens are predicted in
    overlapping tiles (sides and starts aligned to the patch grid, each tile
    with the whole map's position encoding) and blended with linear ramps over
    the overlaps, so memory stays bounded on any grid size.
    """
    dev = next(model.parameters()).device if device is None else pick_device(device)
    model.to(dev).eval()
    maps = np.asarray(maps, dtype=np.float32)
    n, u, v = maps.shape
    c = model.config
    P = c.patch_size
    tile_list, ov = tiles((u, v), P, max_tokens, overlap)
    out = np.zeros((n, 2 * u, 2 * v), dtype=np.float32)
    weight = np.zeros((2 * u, 2 * v), dtype=np.float32)
    from tqdm.auto import tqdm

    for r0, c0, h, w in tqdm(tile_list, desc="tiles", unit="tile", disable=not progress or len(tile_list) == 1):
        bs = batch_size
        if len(tile_list) == 1:
            wt = np.ones((2 * h, 2 * w), dtype=np.float32)
        else:
            wt = np.outer(_ramp(2 * h, 2 * ov, r0 > 0, r0 + h < u), _ramp(2 * w, 2 * ov, c0 > 0, c0 + w < v))
        for s in range(0, n, bs):
            xb = torch.from_numpy(np.ascontiguousarray(maps[s : s + bs, r0 : r0 + h, c0 : c0 + w])).to(dev)
            with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                yb = model(xb, offset=(r0 // P, c0 // P, -(-v // P)))  # one tile: the default positions
            yb = yb.float().cpu().numpy()[:, : 2 * h, : 2 * w]
            out[s : s + bs, 2 * r0 : 2 * (r0 + h), 2 * c0 : 2 * (c0 + w)] += yb * wt
        weight[2 * r0 : 2 * (r0 + h), 2 * c0 : 2 * (c0 + w)] += wt
    if len(tile_list) > 1:
        out /= weight
    return out
