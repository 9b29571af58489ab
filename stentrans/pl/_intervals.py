"""Where enhancement is unsure: a gene's enhanced map beside its interval-width map, low-confidence positions marked."""

from __future__ import annotations

import numpy as np

from ._panels import _draw, _frame, spot_tiles, top_variance_genes
from ._style import RC, finish, new_figure

__all__ = ["interval_map"]


def interval_map(enhanced, *, gene: str | None = None, dataset: str | None = None, panel_size: float = 3.0, fig=None, save=None):
    """A gene's enhanced values, its predictive-interval width and the positions flagged low-confidence.

    Parameters
    ----------
    enhanced
        Output of :func:`stentrans.tl.enhance` with intervals
        (``layers["lower"]``/``["upper"]``, ``obs["low_confidence"]``).
    gene
        The gene (default: the top-variance gene).
    dataset
        Name put in front of the title.
    save
        Path prefix: also write ``save.png`` and ``save.pdf``.

    Left: ``X``. Middle: ``upper - lower`` over the gene's trivial width
    (its 5-95 % range at the measured spots, ``var["trivial_width"]``).
    Right: ``obs["interval_scale"]`` (predictive variance over the slide's
    average) with the low-confidence positions (``obs["low_confidence"]``)
    outlined in black.

    Returns
    -------
    The :class:`~matplotlib.figure.Figure`.
    """
    import matplotlib as mpl
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import Normalize

    from .._errors import InputError
    from ..grid import dense, lattice_of

    for key, where in (("lower", "layers"), ("upper", "layers")):
        if key not in enhanced.layers:
            raise InputError(None, f'{where}["{key}"]', "missing: enhance with intervals (interval > 0)")
    gene = str(gene) if gene is not None else top_variance_genes(enhanced, 1)[0]
    if gene not in enhanced.var_names:
        raise InputError(None, "gene", f"{gene!r} is not among the {enhanced.n_vars} enhanced genes")
    lattice = lattice_of(enhanced)
    polys = spot_tiles(enhanced.obs["array_row"].to_numpy(float), enhanced.obs["array_col"].to_numpy(float), lattice, step=0.5)
    j = enhanced.var_names.get_loc(gene)
    x = dense(enhanced.X[:, j]).ravel()
    width = dense(enhanced.layers["upper"][:, j]).ravel() - dense(enhanced.layers["lower"][:, j]).ravel()
    triv = float(enhanced.var["trivial_width"].iloc[j]) if "trivial_width" in enhanced.var else 0.0
    rel = width / triv if triv > 0 else width
    scale = enhanced.obs["interval_scale"].to_numpy(float) if "interval_scale" in enhanced.obs else np.ones(enhanced.n_obs)
    low = enhanced.obs["low_confidence"].to_numpy(bool) if "low_confidence" in enhanced.obs else np.zeros(enhanced.n_obs, bool)
    level = enhanced.uns.get("stentrans", {}).get("interval", {}).get("level", float("nan"))
    panels = [
        (x, mpl.colormaps["viridis"], Normalize(0.0, float(np.percentile(x, 99)) or 1.0), f"{gene}: enhanced"),
        (rel, mpl.colormaps["magma"], Normalize(0.0, float(np.percentile(rel, 99)) or 1.0), f"{level:g} interval width" + (" / trivial" if triv > 0 else "")),
        (scale, mpl.colormaps["cividis"], Normalize(float(np.min(scale)), float(np.max(scale))), f"uncertainty scale ({int(low.sum())} low-confidence)"),
    ]
    ext = polys.reshape(-1, 2)
    aspect = (np.ptp(ext[:, 1]) + 1) / (np.ptp(ext[:, 0]) + 1)
    with mpl.rc_context(RC):
        fig = new_figure(fig, (panel_size * 3 + 1.2, panel_size * max(aspect, 0.4) + 0.8))
        axes = fig.subplots(1, 3, squeeze=False)[0]
        for ax, (v, cmap, norm, title) in zip(axes, panels):
            pc = _draw(ax, polys, v, cmap, norm)
            _frame(ax, polys)
            ax.set_title(title)
            fig.colorbar(pc, ax=ax, shrink=0.7)
        if low.any():
            axes[2].add_collection(PolyCollection(polys[low], facecolors="none", edgecolors="black", linewidths=0.6))
        head = f"{dataset}: " if dataset else ""
        fig.suptitle(f"{head}where enhancement is unsure ({enhanced.n_obs} positions)")
    return finish(fig, save)
