"""Evaluation figures: per-gene PCC boxplots (paper Fig. 3) and gene panels (Fig. 2).

matplotlib's object API only (:class:`matplotlib.figure.Figure`, no pyplot),
so nothing here changes the caller's backend and it runs headless. Every
figure is written as PNG (300 dpi) and PDF (vector, embedded TrueType fonts),
atomically. Methods have fixed Okabe-Ito colours (colour-blind safe);
expression maps use viridis.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["plot_pcc_boxplots", "plot_gene_panels", "METHOD_COLORS", "METHOD_LABELS", "save_figure"]

#: Okabe & Ito (2008) palette
OKABE_ITO = {
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "black": "#000000",
}
METHOD_COLORS = {
    "stentrans": OKABE_ITO["vermillion"],
    "dist": OKABE_ITO["blue"],
    "linear": OKABE_ITO["bluish_green"],
    "cubic": OKABE_ITO["sky_blue"],
    "nn": OKABE_ITO["orange"],
    "nedi": OKABE_ITO["reddish_purple"],
    "stentrans-nopos": OKABE_ITO["yellow"],
    "stentrans-nores": "#999999",
    "stentrans-noposres": OKABE_ITO["black"],
    "robust": "#6a3d9a",
    "robust+net": "#cab2d6",
}
METHOD_LABELS = {
    "stentrans": "stEnTrans",
    "dist": "DIST",
    "linear": "Linear",
    "cubic": "Cubic",
    "nn": "NN",
    "nedi": "NEDI",
    "stentrans-nopos": "w/o Pos",
    "stentrans-nores": "w/o Res",
    "stentrans-noposres": "w/o Pos&Res",
    "robust": "stEnTrans robust",
    "robust+net": "robust + net",
}
PROTOCOL_LABELS = {
    "paper": "paper (all spots)",
    "paper-removed": "paper (removed spots)",
    "nested": "nested (removed spots)",
    "heldout-genes": "held-out genes (all spots)",
    "heldout-genes-removed": "held-out genes (removed spots)",
    "truth": "2x truth (mean)",
    "truth-counts": "2x truth (counts)",
}
_METHOD_ORDER = list(METHOD_COLORS)
_PROTOCOL_ORDER = list(PROTOCOL_LABELS)
_DARK = {"stentrans-noposres", "dist"}

_RC = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "svg.fonttype": "none",
}


def _label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def _color(method: str, i: int = 0) -> str:
    if method in METHOD_COLORS:
        return METHOD_COLORS[method]
    spare = list(OKABE_ITO.values())
    return spare[i % len(spare)]


def _order(values, order) -> list:
    seen = list(dict.fromkeys(values))
    rank = {v: i for i, v in enumerate(order)}
    return sorted(seen, key=lambda v: (rank.get(v, len(rank)), seen.index(v)))


def save_figure(fig, out_prefix, formats=("png", "pdf"), dpi: int = 300) -> list[Path]:
    """Write ``fig`` as ``out_prefix.png`` and ``.pdf`` (atomic: temp file + rename)."""
    import logging

    from ._utils import atomic_path

    logging.getLogger("fontTools").setLevel(logging.WARNING)  # PDF font subsetting chatter
    prefix = Path(out_prefix)
    if prefix.suffix.lower() in (".png", ".pdf"):
        prefix = prefix.with_suffix("")
    paths = []
    for fmt in formats:
        path = prefix.parent / f"{prefix.name}.{fmt}"
        with atomic_path(path, suffix=f".{fmt}") as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight", metadata={"Creator": "stentrans"} if fmt in ("png", "pdf") else None)
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------
# Fig. 3: per-gene PCC boxplots
# ---------------------------------------------------------------------------
def plot_pcc_boxplots(per_gene: pd.DataFrame, out_prefix, methods=None, protocols=None, title: str | None = None, annotate: bool = True) -> list[Path]:
    """Boxplots of per-gene PCC per method, one panel per (data set and) protocol.

    Parameters
    ----------
    per_gene
        Table of :func:`stentrans.evaluate.evaluate` (``gene, method,
        protocol, seed, pcc``; optional ``dataset``). With several seeds each
        gene's PCC is averaged over the seeds it was scored in; genes without
        a PCC (zero variance) are left out.
    out_prefix
        Writes ``out_prefix.png`` and ``out_prefix.pdf``.
    methods, protocols
        Subsets and order (default: all, in the package's order).
    annotate
        Write each box's median above it.

    Returns
    -------
    The written paths.
    """
    import matplotlib as mpl
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    df = per_gene[np.isfinite(per_gene["pcc"].to_numpy(dtype=float))]
    if "dataset" not in df.columns:
        df = df.assign(dataset="")
    methods = list(methods) if methods is not None else _order(per_gene["method"], _METHOD_ORDER)
    protocols = list(protocols) if protocols is not None else _order(per_gene["protocol"], _PROTOCOL_ORDER)
    datasets = list(dict.fromkeys(per_gene["dataset"])) if "dataset" in per_gene.columns else [""]
    gene_mean = df.groupby(["dataset", "protocol", "method", "gene"])["pcc"].mean().sort_index()
    if len(datasets) == 1:  # one data set: wrap the protocols, at most 4 panels a row
        nc = min(4, len(protocols))
        nr = -(-len(protocols) // nc)
        facets = [(0, ds, proto, divmod(j, nc)) for ds in datasets for j, proto in enumerate(protocols)]
    else:  # a row per data set, a column per protocol
        nr, nc = len(datasets), len(protocols)
        facets = [(i, ds, proto, (i, j)) for i, ds in enumerate(datasets) for j, proto in enumerate(protocols)]
    width = 0.34 * len(methods) + 0.6
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(max(2.4, width) * nc, 2.4 * nr + 0.5), layout="constrained")
        axes = np.atleast_2d(fig.subplots(nr, nc, sharey=True, squeeze=False))
        for ax in axes.ravel()[len(facets):]:
            ax.set_visible(False)
        for _, ds, proto, (i, j) in facets:
            ax = axes[i, j]
            data, pos, cols, meds = [], [], [], []
            for k, m in enumerate(methods):
                try:
                    vals = gene_mean.loc[(ds, proto, m)].to_numpy(dtype=float)
                except KeyError:
                    vals = np.array([])
                if vals.size:
                    data.append(vals)
                    pos.append(k)
                    cols.append(_color(m, k))
                    meds.append(float(np.median(vals)))
            if data:
                bp = ax.boxplot(
                    data,
                    positions=pos,
                    widths=0.65,
                    patch_artist=True,
                    showfliers=False,
                    whis=1.5,
                    medianprops={"color": "black", "linewidth": 1.0},
                    whiskerprops={"linewidth": 0.6},
                    capprops={"linewidth": 0.6},
                    boxprops={"linewidth": 0.6},
                )
                for box, c, k in zip(bp["boxes"], cols, pos):
                    box.set_facecolor(c)
                    box.set_alpha(0.9)
                    if methods[k] in _DARK:
                        bp["medians"][pos.index(k)].set_color("white")
                if annotate:
                    for k, med in zip(pos, meds):
                        ax.annotate(f"{med:.2f}", (k, 1.0), xycoords=("data", "axes fraction"), xytext=(0, 1), textcoords="offset points", ha="center", va="bottom", fontsize=6)
            else:
                ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="0.5")
            ax.set_xticks(range(len(methods)))
            ax.set_xticklabels([_label(m) for m in methods], rotation=45, ha="right")
            ax.set_xlim(-0.6, len(methods) - 0.4)
            ax.axhline(0, color="0.6", linewidth=0.5, zorder=0)
            ax.grid(axis="y", color="0.9", linewidth=0.5)
            ax.set_axisbelow(True)
            for side in ("top", "right"):
                ax.spines[side].set_visible(False)
            head = PROTOCOL_LABELS.get(proto, proto)
            ax.set_title((f"{ds}\n" if ds and len(datasets) > 1 else "") + head, pad=10 if annotate else 4)
            if j == 0:
                ax.set_ylabel("per-gene PCC")
        ymin = min(-0.1, float(np.nanmin(df["pcc"])) - 0.02) if len(df) else -0.1
        axes[0, 0].set_ylim(max(-1.0, ymin), 1.0)
        if title or (len(datasets) == 1 and datasets[0]):
            fig.suptitle(title or datasets[0])
        handles = [Patch(facecolor=_color(m, k), edgecolor="black", linewidth=0.5, label=_label(m)) for k, m in enumerate(methods)]
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(methods), 6), frameon=False)
        return save_figure(fig, out_prefix)


# ---------------------------------------------------------------------------
# Fig. 2: gene panels
# ---------------------------------------------------------------------------
def _xy(rows, cols, lattice):
    """Physical positions: square x = col, y = row; hex x = col, y = row * sqrt(3)."""
    y = np.asarray(rows, float) * (math.sqrt(3.0) if lattice == "hex" else 1.0)
    return np.asarray(cols, float), y


def spot_polygons(rows, cols, lattice: str, step: float = 1.0) -> np.ndarray:
    """Vertices ``(n, k, 2)`` of the spot tiles: squares of side ``step`` or hexagons.

    Hexagons are pointy-topped with inradius ``step`` (neighbours lie at
    distance ``2 step`` horizontally and at +-60 degrees), so the measured
    lattice (``step`` 1) and the enhanced one (``step`` 0.5) both tile.
    """
    x, y = _xy(rows, cols, lattice)
    if lattice == "hex":
        R = 2.0 * step / math.sqrt(3.0)
        ang = np.deg2rad(90.0 + 60.0 * np.arange(6))
        off = np.column_stack([R * np.cos(ang), R * np.sin(ang)])
    else:
        h = step / 2.0
        off = np.array([[-h, -h], [h, -h], [h, h], [-h, h]])
    return np.stack([x, y], axis=1)[:, None, :] + off[None]


def _draw(ax, polys, values, cmap, norm, background=None):
    from matplotlib.collections import PolyCollection

    if background is not None and len(background):
        ax.add_collection(PolyCollection(background, facecolors="0.88", edgecolors="none", linewidths=0))
    pc = PolyCollection(polys, array=np.asarray(values, float), cmap=cmap, norm=norm, edgecolors="face", linewidths=0.15)
    ax.add_collection(pc)
    return pc


def _limits(ax, polys, lattice):
    allv = polys.reshape(-1, 2)
    pad = 0.5
    ax.set_xlim(allv[:, 0].min() - pad, allv[:, 0].max() + pad)
    ax.set_ylim(allv[:, 1].max() + pad, allv[:, 1].min() - pad)  # row 0 at the top
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)


def plot_gene_panels(adata, genes, preds: dict, out_prefix, title: str | None = None, layer: str | None = None, vmax_quantile: float = 0.99, panel_size: float = 1.6) -> list[Path]:
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
        half-size spots). ``maps`` of :func:`stentrans.evaluate.evaluate`
        holds them per protocol.
    out_prefix
        Writes ``out_prefix.png`` and ``.pdf``.
    vmax_quantile
        One colour scale per gene: from the truth's minimum to this quantile
        of the truth (values above are clipped, the colour bar says so).

    Spots are drawn at their physical positions: squares on square lattices,
    hexagons on Visium (x = col, y = row * sqrt(3)). In the input column the
    spots removed by down-sampling are grey. Measured-grid method panels give
    the gene's PCC over the removed spots.

    Returns
    -------
    The written paths.
    """
    import matplotlib as mpl
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    from .metrics import pcc
    from .grid import to_grid
    from .lattice import enhanced_mask, kept_mask

    genes = [str(g) for g in genes]
    gd = to_grid(adata, genes=genes, layer=layer)
    lat, grid, M = gd.grid.lattice, gd.grid, gd.mask
    K = kept_mask(M, lat)
    P, Q = np.nonzero(M)
    rem = ~K[P, Q]
    pk, qk = np.nonzero(K)
    polys_M = spot_polygons(*grid.coords(P, Q), lat, grid.step)
    polys_K = spot_polygons(*grid.coords(pk, qk), lat, grid.step)
    H = enhanced_mask(M, lat)
    PH, QH = np.nonzero(H)
    up = grid.up()
    polys_H = spot_polygons(*up.coords(PH, QH), lat, up.step)
    cols = [("truth", "Ground truth"), ("input", "Down-sampled input")] + [(m, _label(m)) for m in preds]
    for m, arr in preds.items():
        arr = np.asarray(arr)
        if arr.shape[0] != len(genes) or arr.shape[1:] not in (M.shape, H.shape):
            raise ValueError(f"preds[{m!r}] has shape {arr.shape}; expected ({len(genes)}, {M.shape[0]}, {M.shape[1]}) or ({len(genes)}, {H.shape[0]}, {H.shape[1]})")
    cmap = mpl.colormaps["viridis"]
    aspect = (polys_M[..., 1].max() - polys_M[..., 1].min() + 1) / (polys_M[..., 0].max() - polys_M[..., 0].min() + 1)
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(panel_size * len(cols) + 0.8, panel_size * max(aspect, 0.4) * len(genes) + (0.5 if title else 0.3)), layout="constrained")
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
                _limits(ax, polys_M, lat)
                if i == 0:
                    ax.set_title(label)
                if j == 0:
                    ax.set_ylabel(g, rotation=90, fontstyle="italic")
            cb = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=list(axes[i]), shrink=0.8, aspect=12, pad=0.01, extend="max" if float(truth.max(initial=lo)) > hi else "neither")
            cb.ax.tick_params(labelsize=6, width=0.5, length=2)
            cb.outline.set_linewidth(0.5)
        if title:
            fig.suptitle(title)
        return save_figure(fig, out_prefix)
