"""Figures of filled lost spots: the slide's measured, lost and new spots, and gene maps before/after.

Spots are tiles at their physical positions (:func:`stentrans.lattice.physical`,
:func:`stentrans.lattice.spot_polygons` through :func:`._panels.spot_tiles`);
the enhanced AnnData's ``obs["is_imputed"]`` and ``obs["is_lost"]``
(:func:`stentrans.tl.enhance` with ``fill_lost``) say which is which.
"""

from __future__ import annotations

import numpy as np

from ..models.registry import OKABE_ITO
from ._panels import _draw, _frame, spot_tiles
from ._style import RC, finish, method_label, new_figure

__all__ = ["lost_slide", "lost_genes"]

#: colours of the three kinds of spot of a filled slide
KIND_COLORS = {"measured": "0.55", "lost": OKABE_ITO["vermillion"], "new": OKABE_ITO["sky_blue"]}


def _kinds(enhanced) -> dict[str, np.ndarray]:
    imputed = enhanced.obs["is_imputed"].to_numpy(bool)
    lost = enhanced.obs["is_lost"].to_numpy(bool) if "is_lost" in enhanced.obs else np.zeros(enhanced.n_obs, dtype=bool)
    return {"measured": ~imputed, "lost": lost, "new": imputed & ~lost}


def _tiles(adata, lattice: str, step: float) -> np.ndarray:
    return spot_tiles(adata.obs["array_row"].to_numpy(float), adata.obs["array_col"].to_numpy(float), lattice, step=step)


def _outline(ax, polys, color, lw: float = 1.0) -> None:
    from matplotlib.collections import PolyCollection

    if len(polys):
        ax.add_collection(PolyCollection(polys, facecolors="none", edgecolors=color, linewidths=lw))


def lost_slide(enhanced, *, title: str | None = None, ax=None, save=None, panel_size: float = 3.2):
    """A filled slide: measured, lost and new spots of an enhanced AnnData drawn apart.

    Every spot is a half-size tile of the enhanced lattice: measured spots
    grey, lost positions filled by the enhancement vermillion (with the
    outline of a whole measured spot), new spots between them sky blue.

    Parameters
    ----------
    enhanced
        Output of :func:`stentrans.tl.enhance` (``obs["is_lost"]``).
    title
        Axes title (default: the counts of each kind).
    ax
        Axes to draw into (default: a new figure).
    save
        Path prefix: also write ``save.png`` and ``save.pdf``.

    Returns
    -------
    The :class:`~matplotlib.figure.Figure`.
    """
    import matplotlib as mpl
    from matplotlib.collections import PolyCollection
    from matplotlib.patches import Patch

    from ..grid import lattice_of

    lattice = lattice_of(enhanced)
    polys = _tiles(enhanced, lattice, 0.5)
    kinds = _kinds(enhanced)
    with mpl.rc_context(RC):
        if ax is None:
            ext = polys.reshape(-1, 2)
            aspect = (np.ptp(ext[:, 1]) + 1) / (np.ptp(ext[:, 0]) + 1)
            fig = new_figure(None, (panel_size + 1.2, panel_size * max(aspect, 0.3) + 0.4))
            ax = fig.subplots()
        fig = ax.figure
        for kind, sel in kinds.items():
            if sel.any():
                ax.add_collection(PolyCollection(polys[sel], facecolors=KIND_COLORS[kind], edgecolors="white", linewidths=0.2))
        _outline(ax, _tiles(enhanced[kinds["lost"]], lattice, 1.0), KIND_COLORS["lost"], 0.8)
        _frame(ax, polys)
        n = {k: int(v.sum()) for k, v in kinds.items()}
        ax.legend(handles=[Patch(facecolor=KIND_COLORS[k], label=f"{k} ({n[k]})") for k in kinds], loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        ax.set_title(title if title is not None else f"filled slide: {n['measured']} measured, {n['lost']} lost, {n['new']} new spots")
    return finish(fig, save)


def lost_genes(measured, enhanced, genes, *, title: str | None = None, fig=None, save=None, panel_size: float = 2.0):
    """Gene maps before (measured; lost positions empty) and after (enhanced; lost positions filled).

    One column per gene, one colour scale per gene (0 to the 99th percentile
    of both maps); the lost positions are outlined in both rows.

    Parameters
    ----------
    measured
        The measured AnnData the enhancement started from.
    enhanced
        Output of :func:`stentrans.tl.enhance` with lost positions filled.
    genes
        Genes to show (those missing from either AnnData are skipped).
    title
        Figure title (default: the method and the lost positions).
    fig
        Figure to draw into (default: a new one).
    save
        Path prefix: also write ``save.png`` and ``save.pdf``.

    Returns
    -------
    The :class:`~matplotlib.figure.Figure`.
    """
    import matplotlib as mpl
    from matplotlib.colors import Normalize

    from ..grid import dense, lattice_of

    lattice = lattice_of(enhanced)
    genes = [str(g) for g in genes if g in enhanced.var_names and g in measured.var_names]
    if not genes:
        raise ValueError("none of the genes is in both AnnData objects")
    lost_sel = _kinds(enhanced)["lost"]
    lost_polys = _tiles(enhanced[lost_sel], lattice, 1.0)
    rows = [(measured, "before (measured)", _tiles(measured, lattice, 1.0)), (enhanced, "after (enhanced)", _tiles(enhanced, lattice, 0.5))]
    cmap = mpl.colormaps["viridis"]
    ext = rows[0][2].reshape(-1, 2)
    aspect = (np.ptp(ext[:, 1]) + 1) / (np.ptp(ext[:, 0]) + 1)
    with mpl.rc_context(RC):
        fig = new_figure(fig, (panel_size * len(genes) + 0.6, 2 * panel_size * max(aspect, 0.4) + 0.6))
        axes = fig.subplots(2, len(genes), squeeze=False)
        for j, gene in enumerate(genes):
            vals = [dense(a[:, gene].X).ravel().astype(float) for a, _, _ in rows]
            vmax = float(np.percentile(np.concatenate(vals), 99)) or 1.0
            norm = Normalize(0.0, vmax)
            for i, ((a, label, pl), v) in enumerate(zip(rows, vals)):
                ax = axes[i, j]
                pc = _draw(ax, pl, v, cmap, norm)
                _outline(ax, lost_polys, KIND_COLORS["lost"], 1.0)
                _frame(ax, rows[0][2])
                ax.set_title(f"{gene}\n{label}" if i == 0 else label)
            fig.colorbar(pc, ax=axes[:, j], shrink=0.6, location="bottom")
        if title is None:
            st = enhanced.uns.get("stentrans", {})
            pos = np.asarray(st.get("lost", np.zeros((0, 2)))).reshape(-1, 2)
            where = ", ".join(f"({int(r)}, {int(c)})" for r, c in pos[:6]) + (" ..." if len(pos) > 6 else "")
            title = f"{method_label(str(st.get('method', '')))}: {len(pos)} lost position(s) filled (array_row, array_col): {where} (outlined)"
        fig.suptitle(title)
    return finish(fig, save)
