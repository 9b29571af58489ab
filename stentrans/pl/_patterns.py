"""Figures of the spatial-pattern analysis (paper Fig. 4B-D).

* :func:`ranked_genes`: maps of top Sepal genes, measured vs enhanced;
* :func:`family_summary`: genes and significant GO:BP terms per family;
* :func:`new_terms`: GO:BP terms significant only after enhancement.

Each takes the axes to draw into (``axes=``) or a figure (``fig=``), else
makes a new figure; returns the figure; writes ``save.png`` and
``save.pdf`` only when ``save=`` (a path without extension) is given, and
closes the figure then. Spots are drawn as the lattice's tiles
(:func:`stentrans.lattice.spot_polygons`). Colours: Okabe & Ito.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..grid import lattice_of, layer_matrix
from ..lattice import physical, spot_polygons
from ..models.registry import OKABE_ITO as _PALETTE
from ..tl import family_counts, lattice_coords, normalize_profiles, top_genes
from ._style import save_figure

__all__ = ["ranked_genes", "family_summary", "new_terms", "figure_files", "FORMATS", "OKABE_ITO", "COLOR_ORIGINAL", "COLOR_ENHANCED", "MAP_CMAP"]

#: Okabe & Ito (2008) colour-blind-safe palette for categories (families)
OKABE_ITO = list(_PALETTE.values())
COLOR_ORIGINAL = _PALETTE["blue"]
COLOR_ENHANCED = _PALETTE["orange"]
MAP_CMAP = "viridis"
#: formats :func:`figure_files` names and ``save=`` writes
FORMATS = ("png", "pdf")
_DPI = 200


def figure_files(stem) -> list[str]:
    """The files ``save=stem`` writes: ``stem.png``, ``stem.pdf``."""
    stem = Path(stem)
    if stem.suffix.lower() in tuple(f".{f}" for f in FORMATS):
        stem = stem.with_suffix("")
    return [str(stem.parent / f"{stem.name}.{fmt}") for fmt in FORMATS]


def _save(fig, stem) -> None:
    """Write ``stem.png`` and ``stem.pdf`` atomically and close the figure."""
    import matplotlib.pyplot as plt

    save_figure(fig, stem, formats=FORMATS, dpi=_DPI)
    plt.close(fig)


# --------------------------------------------------------------------------
# Fig. 4B: gene maps
# --------------------------------------------------------------------------
def _spot_patches(adata):
    """Tiles of the spots (squares or pointy-top hexagons) in measured-spot units, rows downwards."""
    lattice = lattice_of(adata)
    row, col, f = lattice_coords(adata)
    a = 1.0 / f  # centre-to-centre distance of neighbours
    x, y = physical(row, col, lattice, spacing=a)
    y = -y  # rows grow downwards, as on the slide
    return spot_polygons(x, y, lattice, spacing=a), np.column_stack([x, y])


def _draw_map(ax, adata, values, cmap=MAP_CMAP, vmin=None, vmax=None):
    from matplotlib.collections import PolyCollection

    polys, xy = _spot_patches(adata)
    pc = PolyCollection(polys, array=np.asarray(values, float), cmap=cmap, edgecolors="none", linewidths=0)
    if vmin is not None or vmax is not None:
        pc.set_clim(vmin, vmax)
    ax.add_collection(pc)
    pad = 1.0
    ax.set_xlim(xy[:, 0].min() - pad, xy[:, 0].max() + pad)
    ax.set_ylim(xy[:, 1].min() - pad, xy[:, 1].max() + pad)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)
    return pc


def _gene_values(adata, gene, layer=None):
    X = layer_matrix(adata, layer)
    j = adata.var_names.get_loc(gene)
    x = X[:, j]
    x = x.toarray().ravel() if sp.issparse(x) else np.asarray(x).ravel()
    return normalize_profiles(x[:, None])[:, 0]


def _ranks(ranking) -> pd.Series:
    if isinstance(ranking, pd.DataFrame):
        return ranking["rank"]
    return pd.Series(np.arange(1, len(ranking) + 1), index=list(ranking))


def ranked_genes(adata, ranking, *, enhanced=None, ranking_enhanced=None, genes=None, n: int = 6, layer=None, enhanced_layer=None, axes=None, save=None):
    """Paper Fig. 4B: maps of top-ranked genes, original vs enhanced, with ranks.

    Each panel shows Sepal's input ``log2(x + 2) / max`` of one gene, drawn
    as squares (ST) or hexagons (Visium) of the lattice spacing (half of it
    for enhanced data), colour map viridis; the title gives the gene's Sepal
    rank in that data set.

    Parameters
    ----------
    adata, ranking
        Measured data and its ranking (:func:`~stentrans.tl.sepal_scores`
        or a list of genes, best first).
    enhanced, ranking_enhanced
        Enhanced data and its ranking (a second column of maps).
    genes
        Genes to draw; default the top ``n`` of the original ranking.
    layer, enhanced_layer
        Layers holding counts (default ``X``).
    axes
        ``(len(genes), 1 or 2)`` axes to draw into; default a new figure.
    save
        Path without extension: writes ``.png`` and ``.pdf`` and closes the figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    if genes is None:
        genes = top_genes(ranking, n, adata=adata)
        if enhanced is not None:
            genes = [g for g in genes if g in enhanced.var_names][:n]
    genes = list(genes)
    ncol = 2 if enhanced is not None else 1
    if axes is None:
        fig, axes = plt.subplots(len(genes), ncol, figsize=(2.6 * ncol + 0.6, 2.4 * len(genes)), squeeze=False)
    else:
        axes = np.asarray(axes, dtype=object).reshape(len(genes), ncol)
        fig = axes[0, 0].figure
    rk_o = _ranks(ranking)
    rk_e = _ranks(ranking_enhanced) if ranking_enhanced is not None else None
    for i, g in enumerate(genes):
        pc = _draw_map(axes[i, 0], adata, _gene_values(adata, g, layer), vmin=0, vmax=1)
        r = rk_o.get(g, np.nan)
        axes[i, 0].set_title(f"{g}  (original rank {int(r) if pd.notna(r) else '-'})", fontsize=9)
        if enhanced is not None:
            if g in enhanced.var_names:
                _draw_map(axes[i, 1], enhanced, _gene_values(enhanced, g, enhanced_layer), vmin=0, vmax=1)
            r = rk_e.get(g, np.nan) if rk_e is not None else np.nan
            axes[i, 1].set_title(f"{g}  (enhanced rank {int(r) if pd.notna(r) else '-'})", fontsize=9)
    fig.colorbar(pc, ax=axes.ravel().tolist(), shrink=0.5, label="log2(x + 2) / max")
    if save is not None:
        _save(fig, save)
    return fig


# --------------------------------------------------------------------------
# Fig. 4C: families
# --------------------------------------------------------------------------
def family_summary(fam_orig, *, fam_enh=None, enr_orig=None, enr_enh=None, pairs=None, axes=None, save=None):
    """Paper Fig. 4C: genes and significant GO terms per family, original vs enhanced.

    With ``pairs`` (from :func:`~stentrans.tl.pair_families`) paired families
    share an x position (label ``O<i>/E<j>``); otherwise families are placed
    by number. Okabe-Ito blue = original, orange = enhanced.

    Parameters
    ----------
    fam_orig, fam_enh
        Families (:func:`~stentrans.tl.pattern_families`) of the measured
        and (optionally) the enhanced data.
    enr_orig, enr_enh
        Their enrichment (:func:`~stentrans.tl.enrich_families`); without,
        the right panel shows no terms.
    pairs
        Family pairs (:func:`~stentrans.tl.pair_families`).
    axes
        Two axes (genes, terms) to draw into; default a new figure.
    save
        Path without extension: writes ``.png`` and ``.pdf`` and closes the figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    so, to = family_counts(fam_orig, enr_orig)
    if fam_enh is not None:
        se, te = family_counts(fam_enh, enr_enh)
    else:
        se, te = pd.Series(dtype=int), pd.Series(dtype=int)
    if pairs is not None and len(pairs):
        slots = [(r.family_original if pd.notna(r.family_original) else None, r.family_enhanced if pd.notna(r.family_enhanced) else None) for r in pairs.itertuples()]
        slots.sort(key=lambda s: (s[0] is None, s[0] if s[0] is not None else 0, s[1] if s[1] is not None else 0))
    else:
        ks = sorted(set(so.index) | set(se.index))
        slots = [(k if k in so.index else None, k if k in se.index else None) for k in ks]
    labels = [f"O{a if a is not None else '-'}/E{b if b is not None else '-'}" if fam_enh is not None else f"F{a}" for a, b in slots]
    x = np.arange(len(slots))
    w = 0.38 if fam_enh is not None else 0.6
    own = axes is None
    if own:
        fig, axes = plt.subplots(1, 2, figsize=(max(6, 1.1 * len(slots) * 2), 3.4))
    else:
        axes = list(axes)
        fig = axes[0].figure
    for ax, (vo, ve), ttl in zip(axes, [(so, se), (to, te)], ["genes per family", "significant GO:BP terms"]):
        yo = [vo.get(a, 0) if a is not None else 0 for a, _ in slots]
        ax.bar(x - (w / 2 if fam_enh is not None else 0), yo, w, color=COLOR_ORIGINAL, label="original")
        if fam_enh is not None:
            ye = [ve.get(b, 0) if b is not None else 0 for _, b in slots]
            ax.bar(x + w / 2, ye, w, color=COLOR_ENHANCED, label="enhanced")
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=45 if len(slots) > 6 else 0, ha="right" if len(slots) > 6 else "center")
        ax.set_title(ttl, fontsize=10)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].set_ylabel("count")
    axes[0].legend(frameon=False, fontsize=8)
    if own:
        fig.tight_layout()
    if save is not None:
        _save(fig, save)
    return fig


# --------------------------------------------------------------------------
# Fig. 4D: new terms
# --------------------------------------------------------------------------
def new_terms(new: pd.DataFrame, *, top: int = 10, scope: str = "paired", fig=None, save=None):
    """Paper Fig. 4D: top ``top`` GO terms found only in the enhanced data, per family.

    Bars: ``-log10`` adjusted p in the enhanced family, one panel per family
    (their number depends on the data, hence ``fig=`` rather than axes).

    Parameters
    ----------
    new
        Output of :func:`~stentrans.tl.new_terms`.
    top
        Terms per family.
    scope
        Rows of ``new`` to show (``"paired"``; falls back to ``"overall"``
        when there are none).
    fig
        Empty figure to draw into; default a new one.
    save
        Path without extension: writes ``.png`` and ``.pdf`` and closes the figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import textwrap

    import matplotlib.pyplot as plt

    d = new[new["scope"] == scope] if len(new) else new
    if not len(d) and len(new):
        d = new[new["scope"] == "overall"]
    fams = sorted(d["family_enhanced"].dropna().unique()) if len(d) else []
    own = fig is None
    if not fams:
        if own:
            fig, ax = plt.subplots(figsize=(5, 1.5))
        else:
            ax = fig.subplots()
        ax.text(0.5, 0.5, "no GO:BP term significant only in the enhanced data", ha="center", va="center", fontsize=9)
        ax.axis("off")
    else:
        heights = [min(top, (d["family_enhanced"] == f).sum()) for f in fams]
        grid = dict(squeeze=False, gridspec_kw={"height_ratios": [max(1, h) for h in heights]})
        if own:
            fig, axes = plt.subplots(len(fams), 1, figsize=(7.5, 0.9 + 0.32 * sum(heights) + 0.5 * len(fams)), **grid)
        else:
            axes = fig.subplots(len(fams), 1, **grid)
        for ax, f in zip(axes[:, 0], fams):
            col = OKABE_ITO[(int(f) - 1) % len(OKABE_ITO)]
            s = d[d["family_enhanced"] == f].nsmallest(top, "adj_p")
            y = np.arange(len(s))[::-1]
            ax.barh(y, -np.log10(s["adj_p"].clip(lower=1e-300)), color=col)
            ax.set_yticks(y)
            ax.set_yticklabels(["\n".join(textwrap.wrap(t, 60)) for t in s["term"]], fontsize=7)
            ax.set_title(f"enhanced family {f}", fontsize=9, loc="left")
            ax.spines[["top", "right"]].set_visible(False)
        axes[-1, 0].set_xlabel("-log10 adjusted p")
        if own:
            fig.tight_layout()
    if save is not None:
        _save(fig, save)
    return fig
