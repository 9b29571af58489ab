"""QC figure of a sample's lattice mapping: spots M, down-sampling D and the enhanced positions H(M).

Three panels on the sample's physical layout: the measured (in-tissue) spots
among the grid's lattice points, the spots the down-sampling D keeps (the
model's input) and those it removes, and the positions H(M) that
enhancement fills (the measured spots and the new ones between them).
"""

from __future__ import annotations

import numpy as np

from ._panels import _frame, spot_tiles
from ._style import RC, finish, new_figure

__all__ = ["lattice_mapping"]

#: fill of each kind of position (Okabe-Ito colours, grey for empty lattice points)
COLORS = {
    "empty": "white",
    "measured": "#0072B2",
    "kept": "#009E73",
    "removed": "#E69F00",
    "new": "#D55E00",
}


def _tiles(ax, polys, face, edge="none", lw=0.0, zorder=1):
    from matplotlib.collections import PolyCollection

    if len(polys):
        ax.add_collection(PolyCollection(polys, facecolors=face, edgecolors=edge, linewidths=lw, zorder=zorder))


def lattice_mapping(adata, *, title: str | None = None, panel_size: float = 2.6, fig=None, save=None, fill_lost=None):
    """Draw how a sample sits on its lattice, what D keeps and where H(M) puts new spots.

    Parameters
    ----------
    adata
        A measured AnnData (from :func:`stentrans.read`, after QC).
    title
        Figure title (default: lattice and grid shape).
    fig
        Figure to draw into (default: a new one, three panels side by side).
    save
        Path prefix: also write ``save.png`` and ``save.pdf``.
    fill_lost
        Lost positions that join H, as in :func:`stentrans.tl.enhance`
        (None: its default, ``"auto"``).

    Lattice points of the grid without a spot are outlined in grey in every
    panel; a legend below names each fill.

    Returns
    -------
    The :class:`~matplotlib.figure.Figure`.
    """
    import matplotlib as mpl
    from matplotlib.patches import Patch

    from ..grid import to_grid
    from ..lattice import enhanced_mask, kept_mask

    gd = to_grid(adata, genes=[])
    grid, M = gd.grid, gd.mask
    lat = grid.lattice
    K = kept_mask(M, lat)
    if fill_lost is None:
        from ..tl import EnhanceConfig

        fill_lost = EnhanceConfig().fill_lost
    from ..grid import source_of
    from ..lost import resolve

    L = resolve(fill_lost, grid, M, adata=adata, source=source_of(adata))[1]
    H = enhanced_mask(M | L, lat)
    measured_H = np.zeros_like(H)
    measured_H[::2, ::2] = M
    up = grid.up()

    def tiles(mask, g):
        p, q = np.nonzero(mask)
        return spot_tiles(*g.coords(p, q), lat, step=g.step)

    empty = tiles(grid.lattice_mask() & ~M, grid)
    polys_M = tiles(M, grid)
    n_M, n_K, n_H = int(M.sum()), int(K.sum()), int(H.sum())
    ext = np.concatenate([polys_M, empty]) if len(empty) else polys_M
    span = ext.reshape(-1, 2)
    aspect = (np.ptp(span[:, 1]) + 1) / (np.ptp(span[:, 0]) + 1)
    with mpl.rc_context(RC):
        fig = new_figure(fig, (3 * panel_size + 0.4, panel_size * max(aspect, 0.3) + 1.0))
        axes = fig.subplots(1, 3, squeeze=False)[0]
        for ax in axes:
            _tiles(ax, empty, COLORS["empty"], edge="0.75", lw=0.3, zorder=0)
        _tiles(axes[0], polys_M, COLORS["measured"])
        axes[0].set_title(f"measured spots M ({n_M} in tissue)")
        _tiles(axes[1], tiles(K, grid), COLORS["kept"])
        _tiles(axes[1], tiles(M & ~K, grid), COLORS["removed"])
        axes[1].set_title(f"down-sampling D: {n_K} kept, {n_M - n_K} removed")
        _tiles(axes[2], tiles(measured_H, up), COLORS["measured"])
        _tiles(axes[2], tiles(H & ~measured_H, up), COLORS["new"])
        n_L = int(L.sum())
        axes[2].set_title(f"enhanced positions H(M): {n_H} ({n_H - n_M} new" + (f", {n_L} lost filled)" if n_L else ")"))
        for ax in axes:
            _frame(ax, ext)
        labels = {
            "empty": "lattice point, no spot",
            "measured": "measured spot (M)",
            "kept": "kept by D (model input)",
            "removed": "removed by D (scored in evaluation)",
            "new": "new position of H(M)",
        }
        handles = [Patch(facecolor=COLORS[k], edgecolor="0.5" if k == "empty" else "none", linewidth=0.5, label=v) for k, v in labels.items()]
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False)
        u, v = grid.shape
        fig.suptitle(title or f"{lat} lattice, grid {u} x {v} (origin row {grid.row0:g}, col {grid.col0:g}; enhanced {2 * u} x {2 * v})")
    return finish(fig, save)
