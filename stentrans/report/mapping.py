"""A sample's lattice mapping as a small JSON-able record (the workflow's ``grid`` rule).

Where the spots sit on the dense grid (lattice, shape, origin, step), how many
the down-sampling D keeps and how many positions H(M) enhancement will fill.
The same masks drive enhancement and evaluation (:mod:`stentrans.lattice`);
:func:`stentrans.pl.lattice_mapping` draws them.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["grid_mapping", "write_grid_mapping"]


def grid_mapping(adata, fill_lost=None) -> dict:
    """The lattice mapping of a measured AnnData.

    ``fill_lost`` as in :func:`stentrans.tl.enhance` (None: its default,
    ``"auto"``): lost positions join the measured ones in ``H`` (``n_lost``
    of the ``n_new`` positions).

    Returns
    -------
    ``{"lattice", "grid": {"shape", "origin": {"array_row", "array_col"},
    "step"}, "enhanced_grid": {"shape", "step"}, "n_lattice_points",
    "n_measured", "occupied", "n_kept", "n_removed", "n_enhanced", "n_new"}``:
    ``n_measured`` in-tissue spots (M) of ``n_lattice_points`` lattice points
    of the grid; D keeps ``n_kept`` (the model's input); H(M) holds
    ``n_enhanced`` positions, ``n_new`` of them between measured spots.
    """
    from ..grid import source_of, to_grid
    from ..lattice import enhanced_mask, kept_mask
    from ..lost import positions_of, resolve

    if fill_lost is None:
        from ..tl import EnhanceConfig

        fill_lost = EnhanceConfig().fill_lost
    gd = to_grid(adata, genes=[])
    grid, M = gd.grid, gd.mask
    K = kept_mask(M, grid.lattice)
    mode, L = resolve(fill_lost, grid, M, adata=adata, source=source_of(adata))
    H = enhanced_mask(M | L, grid.lattice)
    up = grid.up()
    n_lattice = int(grid.lattice_mask().sum())
    n_M, n_K, n_H = int(M.sum()), int(K.sum()), int(H.sum())
    return {
        "lattice": grid.lattice,
        "grid": {"shape": [int(s) for s in grid.shape], "origin": {"array_row": float(grid.row0), "array_col": float(grid.col0)}, "step": float(grid.step)},
        "enhanced_grid": {"shape": [int(s) for s in up.shape], "step": float(up.step)},
        "n_lattice_points": n_lattice,
        "n_measured": n_M,
        "occupied": n_M / n_lattice if n_lattice else 0.0,
        "n_kept": n_K,
        "n_removed": n_M - n_K,
        "n_enhanced": n_H,
        "n_new": n_H - n_M,  # H(M) holds every measured spot
        "fill_lost": mode,
        "n_lost": int(L.sum()),
        "lost": positions_of(L, grid).tolist(),
    }


def write_grid_mapping(mapping: dict, path) -> Path:
    """Write ``mapping`` as indented JSON, atomically; returns ``path``."""
    from .._utils import atomic_path

    path = Path(path)
    with atomic_path(path, suffix=".json") as tmp:
        Path(tmp).write_text(json.dumps(mapping, indent=2) + "\n", encoding="utf-8")
    return path
