"""PCC figures: per-gene PCC boxplots (paper Fig. 3) and the median PCC of every sample.

Methods have the registry's colours (Okabe-Ito, colour-blind safe) and labels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._style import RC, finish, is_dark, method_color, method_label, method_order, new_figure, protocol_label, protocol_order

__all__ = ["pcc_boxplots", "median_pcc_bars"]


def _panel(ax, gene_mean, ds, proto, methods, annotate: bool) -> None:
    """One protocol's boxes (one per method) on ``ax``."""
    data, pos, cols, meds = [], [], [], []
    for k, m in enumerate(methods):
        try:
            vals = gene_mean.loc[(ds, proto, m)].to_numpy(dtype=float)
        except KeyError:
            vals = np.array([])
        if vals.size:
            data.append(vals)
            pos.append(k)
            cols.append(method_color(m, k))
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
            if is_dark(methods[k]):
                bp["medians"][pos.index(k)].set_color("white")
        if annotate:
            for k, med in zip(pos, meds):
                ax.annotate(f"{med:.2f}", (k, 1.0), xycoords=("data", "axes fraction"), xytext=(0, 1), textcoords="offset points", ha="center", va="bottom", fontsize=6)
    else:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="0.5")
    ax.set_xticks(range(len(methods)))
    ax.set_xticklabels([method_label(m) for m in methods], rotation=45, ha="right")
    ax.set_xlim(-0.6, len(methods) - 0.4)
    ax.axhline(0, color="0.6", linewidth=0.5, zorder=0)
    ax.grid(axis="y", color="0.9", linewidth=0.5)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def pcc_boxplots(per_gene: pd.DataFrame, *, methods=None, protocols=None, title: str | None = None, annotate: bool = True, fig=None, save=None):
    """Boxplots of per-gene PCC per method, one panel per (data set and) protocol.

    Parameters
    ----------
    per_gene
        Table of :func:`stentrans.tl.evaluate` (``gene, method, protocol,
        seed, pcc``; optional ``dataset``). With several seeds each gene's PCC
        is averaged over the seeds it was scored in; genes without a PCC (zero
        variance) are left out.
    methods, protocols
        Subsets and order (default: all, methods in registry order).
    title
        Figure title (default: the data set's name when there is one).
    annotate
        Write each box's median above it.
    fig
        Figure to draw into (default: a new one sized to the panels).
    save
        Path prefix: also write ``save.png`` and ``save.pdf``.

    Returns
    -------
    The :class:`~matplotlib.figure.Figure`.
    """
    import matplotlib as mpl
    from matplotlib.patches import Patch

    df = per_gene[np.isfinite(per_gene["pcc"].to_numpy(dtype=float))]
    if "dataset" not in df.columns:
        df = df.assign(dataset="")
    methods = list(methods) if methods is not None else method_order(per_gene["method"])
    protocols = list(protocols) if protocols is not None else protocol_order(per_gene["protocol"])
    datasets = list(dict.fromkeys(per_gene["dataset"])) if "dataset" in per_gene.columns else [""]
    gene_mean = df.groupby(["dataset", "protocol", "method", "gene"])["pcc"].mean().sort_index()
    if len(datasets) == 1:  # one data set: wrap the protocols, at most 4 panels a row
        nc = min(4, len(protocols))
        nr = -(-len(protocols) // nc)
        facets = [(ds, proto, divmod(j, nc)) for ds in datasets for j, proto in enumerate(protocols)]
    else:  # a row per data set, a column per protocol
        nr, nc = len(datasets), len(protocols)
        facets = [(ds, proto, (i, j)) for i, ds in enumerate(datasets) for j, proto in enumerate(protocols)]
    width = 0.34 * len(methods) + 0.6
    with mpl.rc_context(RC):
        fig = new_figure(fig, (max(2.4, width) * nc, 2.4 * nr + 0.5))
        axes = np.atleast_2d(fig.subplots(nr, nc, sharey=True, squeeze=False))
        for ax in axes.ravel()[len(facets) :]:
            ax.set_visible(False)
        for ds, proto, (i, j) in facets:
            ax = axes[i, j]
            _panel(ax, gene_mean, ds, proto, methods, annotate)
            head = protocol_label(proto)
            ax.set_title((f"{ds}\n" if ds and len(datasets) > 1 else "") + head, pad=10 if annotate else 4)
            if j == 0:
                ax.set_ylabel("per-gene PCC")
        ymin = min(-0.1, float(np.nanmin(df["pcc"])) - 0.02) if len(df) else -0.1
        axes[0, 0].set_ylim(max(-1.0, ymin), 1.0)
        if title or (len(datasets) == 1 and datasets[0]):
            fig.suptitle(title or datasets[0])
        handles = [Patch(facecolor=method_color(m, k), edgecolor="black", linewidth=0.5, label=method_label(m)) for k, m in enumerate(methods)]
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(methods), 6), frameon=False)
    return finish(fig, save)


def median_pcc_bars(table: pd.DataFrame, *, paper_medians=None, fig=None, save=None):
    """Median PCC (mean ± sd over seeds) of every method on every data set, a panel per protocol.

    Parameters
    ----------
    table
        :func:`stentrans.report.summary.median_pcc_table` (``dataset,
        protocol, method, mean, sd``); methods and protocols in its order.
    paper_medians
        ``{dataset: value}``: the paper's stEnTrans median, drawn as a black tick.
    fig
        Figure to draw into (default: a new one).
    save
        Path prefix: also write ``save.png`` and ``save.pdf``.

    Returns
    -------
    The :class:`~matplotlib.figure.Figure`.
    """
    import matplotlib as mpl

    paper = dict(paper_medians or {})
    methods = list(dict.fromkeys(table["method"]))
    protocols = list(dict.fromkeys(table["protocol"]))
    datasets = list(dict.fromkeys(table["dataset"]))
    width = 0.8 / max(1, len(methods))
    with mpl.rc_context(RC):
        fig = new_figure(fig, (2.5 + 0.3 * len(datasets) * (len(methods) + 1), 2.8 * len(protocols)))
        axes = fig.subplots(len(protocols), 1, squeeze=False)
        for ax, proto in zip(axes[:, 0], protocols):
            sub = table[table["protocol"] == proto].set_index(["dataset", "method"])
            for k, m in enumerate(methods):
                means = [sub["mean"].get((d, m), np.nan) for d in datasets]
                sds = [sub["sd"].get((d, m), np.nan) for d in datasets]
                xs = np.arange(len(datasets)) + (k - (len(methods) - 1) / 2) * width
                ax.bar(xs, means, width, yerr=np.nan_to_num(sds), label=method_label(m), color=method_color(m, k), edgecolor="black", linewidth=0.4, capsize=2, error_kw={"linewidth": 0.6})
            ref = [paper.get(d, np.nan) for d in datasets]
            if np.isfinite(ref).any():
                ax.scatter(np.arange(len(datasets)), ref, marker="_", s=400, color="black", label=f"paper {method_label('stentrans')}", zorder=3)
            ax.set_xticks(np.arange(len(datasets)), datasets, rotation=30, ha="right")
            ax.set_ylabel("median PCC")
            ax.set_title(f"protocol {protocol_label(proto)}")
            ax.axhline(0, color="0.6", linewidth=0.5)
            for side in ("top", "right"):
                ax.spines[side].set_visible(False)
        axes[0, 0].legend(ncol=min(4, len(methods) + 1), loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return finish(fig, save)
