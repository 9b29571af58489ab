"""Expression maps: gene panels of the evaluation (paper Fig. 2) and measured vs enhanced maps.

Spots are drawn as tiles at their physical positions
(:func:`stentrans.lattice.physical`, :func:`stentrans.lattice.spot_polygons`):
squares on square lattices, hexagons on Visium. Expression uses viridis, one
colour scale per gene.
"""

from __future__ import annotations

import numpy as np

from ..lattice import physical, spot_polygons
from ._style import RC, finish, method_label, new_figure

__all__ = ["gene_panels", "enhanced_genes", "spot_tiles", "top_variance_genes"]

#: ``spacing`` of :func:`stentrans.lattice.physical` in the figures: neighbouring
#: spots 1 (square) or 2 (hex) units apart, so that ``x`` equals ``array_col``
#: on both lattices (hex neighbours sit two columns apart)
_SPACING = {"square": 1.0, "hex": 2.0}


def spot_tiles(array_row, array_col, lattice: str, *, step: float = 1.0) -> np.ndarray:
    """Vertices ``(n, k, 2)`` of the tiles of spots at lattice coordinates.

    ``x = array_col`` and ``y`` the physical row position in the same unit
    (``array_row * sqrt(3)`` on hex). ``step`` is the grid's lattice units
    per pixel: 1 measured, 0.5 enhanced (half-size tiles that again tile).
    """
    s = _SPACING[lattice]
    x, y = physical(array_row, array_col, lattice, spacing=s)
    return spot_polygons(x, y, lattice, spacing=s * step)


def top_variance_genes(adata, n: int, *, layer: str | None = None, among=None) -> list[str]:
    """The ``n`` genes of highest variance of ``log1p`` expression (ties: ``var_names`` order).

    ``among``: only these genes (in ``var_names`` order).
    """
    from ..grid import dense

    genes = np.asarray(adata.var_names)
    if among is not None:
        keep = set(map(str, among))
        genes = np.asarray([g for g in genes if str(g) in keep])
        adata = adata[:, list(genes)]
    X = dense(adata.layers[layer] if layer else adata.X).astype(np.float64)
    X = np.log1p(np.maximum(X, 0))
    var = X.var(0)
    return [str(g) for g in genes[np.argsort(-var, kind="stable")[:n]]]


def _draw(ax, polys, values, cmap, norm, background=None):
    from matplotlib.collections import PolyCollection

    if background is not None and len(background):
        ax.add_collection(PolyCollection(background, facecolors="0.88", edgecolors="none", linewidths=0))
    pc = PolyCollection(polys, array=np.asarray(values, float), cmap=cmap, norm=norm, edgecolors="face", linewidths=0.15)
    ax.add_collection(pc)
    return pc


def _frame(ax, polys, pad: float = 0.5) -> None:
    """Axis limits around the tiles ``polys`` (row 0 at the top), equal aspect, no ticks."""
    allv = polys.reshape(-1, 2)
    ax.set_xlim(allv[:, 0].min() - pad, allv[:, 0].max() + pad)
    ax.set_ylim(allv[:, 1].max() + pad, allv[:, 1].min() - pad)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)


def gene_panels(adata, genes, preds: dict, *, title: str | None = None, layer: str | None = None, vmax_quantile: float = 0.99, panel_size: float = 1.6, fig=None, save=None):
    """Gene panels: one row per gene; ground truth, down-sampled input, each method.

    Parameters
    ----------
    adata
        The measured AnnData (the ground truth).
    genes
        Genes, one row each.
    preds
        ``{method: maps}`` with maps ``(len(genes), u, v)`` on the measured
        grid (predictions of the measured spots, drawn at the in-tissue spots)
        or ``(len(genes), 2u, 2v)`` on the doubled grid (drawn at H(M) with
        half-size spots). ``maps`` of :func:`stentrans.tl.evaluate` holds
        them per protocol.
    vmax_quantile
        One colour scale per gene: from the truth's minimum to this quantile
        of the truth (values above are clipped, the colour bar says so).
    fig
        Figure to draw into (default: a new one sized to the panels).
    save
        Path prefix: also write ``save.png`` and ``save.pdf``.

    In the input column the spots removed by down-sampling are grey.
    Measured-grid method panels give the gene's PCC over the removed spots.

    Returns
    -------
    The :class:`~matplotlib.figure.Figure`.
    """
    import matplotlib as mpl
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    from ..grid import to_grid
    from ..lattice import enhanced_mask, kept_mask
    from ..metrics import pcc

    genes = [str(g) for g in genes]
    gd = to_grid(adata, genes=genes, layer=layer)
    lat, grid, M = gd.grid.lattice, gd.grid, gd.mask
    K = kept_mask(M, lat)
    P, Q = np.nonzero(M)
    rem = ~K[P, Q]
    pk, qk = np.nonzero(K)
    polys_M = spot_tiles(*grid.coords(P, Q), lat, step=grid.step)
    polys_K = spot_tiles(*grid.coords(pk, qk), lat, step=grid.step)
    H = enhanced_mask(M, lat)
    PH, QH = np.nonzero(H)
    up = grid.up()
    polys_H = spot_tiles(*up.coords(PH, QH), lat, step=up.step)
    cols = [("truth", "Ground truth"), ("input", "Down-sampled input")] + [(m, method_label(m)) for m in preds]
    for m, arr in preds.items():
        arr = np.asarray(arr)
        if arr.shape[0] != len(genes) or arr.shape[1:] not in (M.shape, H.shape):
            raise ValueError(f"preds[{m!r}] has shape {arr.shape}; expected ({len(genes)}, {M.shape[0]}, {M.shape[1]}) or ({len(genes)}, {H.shape[0]}, {H.shape[1]})")
    cmap = mpl.colormaps["viridis"]
    aspect = (polys_M[..., 1].max() - polys_M[..., 1].min() + 1) / (polys_M[..., 0].max() - polys_M[..., 0].min() + 1)
    with mpl.rc_context(RC):
        fig = new_figure(fig, (panel_size * len(cols) + 0.8, panel_size * max(aspect, 0.4) * len(genes) + (0.5 if title else 0.3)))
        axes = np.atleast_2d(fig.subplots(len(genes), len(cols), squeeze=False))
        for i, g in enumerate(genes):
            truth = gd.maps[i, P, Q]
            lo = float(truth.min())
            hi = float(np.quantile(truth, vmax_quantile)) if truth.size else 1.0
            if not hi > lo:
                hi = lo + 1.0
            norm = Normalize(lo, hi)
            for j, (key, label) in enumerate(cols):
                ax = axes[i, j]
                if key == "truth":
                    _draw(ax, polys_M, truth, cmap, norm)
                elif key == "input":
                    _draw(ax, polys_K, gd.maps[i, pk, qk], cmap, norm, background=polys_M[rem])
                else:
                    arr = np.asarray(preds[key])[i]
                    if arr.shape == M.shape:
                        vals = arr[P, Q]
                        _draw(ax, polys_M, vals, cmap, norm)
                        r = pcc(vals[rem], truth[rem])
                        txt = "r = NA" if not np.isfinite(r) else f"r = {float(r):.2f}"
                        ax.text(0.02, 0.02, txt, transform=ax.transAxes, fontsize=6, ha="left", va="bottom", bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.0})
                    else:
                        _draw(ax, polys_H, arr[PH, QH], cmap, norm)
                _frame(ax, polys_M)
                if i == 0:
                    ax.set_title(label)
                if j == 0:
                    ax.set_ylabel(g, rotation=90, fontstyle="italic")
            cb = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=list(axes[i]), shrink=0.8, aspect=12, pad=0.01, extend="max" if float(truth.max(initial=lo)) > hi else "neither")
            cb.ax.tick_params(labelsize=6, width=0.5, length=2)
            cb.outline.set_linewidth(0.5)
        if title:
            fig.suptitle(title)
    return finish(fig, save)


def enhanced_genes(measured, enhanced, *, genes=None, n_genes: int = 4, title: str | None = None, dataset: str | None = None, panel_size: float = 2.4, fig=None, save=None):
    """Measured (top row) and enhanced (bottom row) maps of a few genes, one column each.

    Parameters
    ----------
    measured
        The measured AnnData the enhancement started from.
    enhanced
        Output of :func:`stentrans.tl.enhance` (half-step lattice coordinates).
    genes
        Genes to show (those not in ``enhanced`` are skipped); default, or
        when none is left: the ``n_genes`` top-variance genes both hold.
    title
        Figure title (default: which enhancement, on which lattice).
    dataset
        Name put in front of the default title.
    fig
        Figure to draw into (default: a new one).
    save
        Path prefix: also write ``save.png`` and ``save.pdf``.

    One colour scale per gene, from 0 to the 99th percentile of both maps.
    Enhanced spots are drawn as half-size tiles.

    Returns
    -------
    The :class:`~matplotlib.figure.Figure`.
    """
    import matplotlib as mpl
    from matplotlib.colors import Normalize

    from ..grid import dense, lattice_of

    lattice = lattice_of(enhanced)
    genes = [str(g) for g in (genes or []) if g in enhanced.var_names]
    if not genes:
        genes = top_variance_genes(measured, n_genes, among=[g for g in measured.var_names if g in enhanced.var_names])
    rows = [(measured, "measured", 1.0), (enhanced, "enhanced", 0.5)]
    polys = [spot_tiles(a.obs["array_row"].to_numpy(float), a.obs["array_col"].to_numpy(float), lattice, step=step) for a, _, step in rows]
    cmap = mpl.colormaps["viridis"]
    ext = polys[0].reshape(-1, 2)
    aspect = (np.ptp(ext[:, 1]) + 1) / (np.ptp(ext[:, 0]) + 1)
    with mpl.rc_context(RC):
        fig = new_figure(fig, (panel_size * len(genes) + 0.6, 2 * panel_size * max(aspect, 0.4) + 0.6))
        axes = fig.subplots(2, len(genes), squeeze=False)
        for j, gene in enumerate(genes):
            vals = [dense(a[:, gene].X).ravel() for a, _, _ in rows]
            vmax = float(np.percentile(np.concatenate(vals), 99)) or 1.0
            norm = Normalize(0.0, vmax)
            for i, ((a, label, _), v, pl) in enumerate(zip(rows, vals, polys)):
                ax = axes[i, j]
                _draw(ax, pl, v, cmap, norm)
                _frame(ax, polys[0])
                ax.set_title(f"{gene}\n{label} ({a.n_obs} spots)" if i == 0 else f"{label} ({a.n_obs} spots)")
        if title is None:
            st = enhanced.uns.get("stentrans", {})
            method = str(st.get("method", "?"))
            title = f"measured vs {method_label(method)} 2x enhanced ({lattice} lattice)"
            title = f"{dataset}: {title}" if dataset else title
        fig.suptitle(title)
    return finish(fig, save)
