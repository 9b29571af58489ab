"""Rule summarize: median PCC of every method on every sample, one table and figure."""

from _common import start

log = start(snakemake)  # noqa: F821

import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from stentrans._utils import atomic_path  # noqa: E402
from stentrans.evaluate import to_markdown  # noqa: E402

frames = []
for sample, path in zip(snakemake.params.samples, snakemake.input):  # noqa: F821
    df = pd.read_csv(path, sep="\t")
    df["dataset"] = sample
    frames.append(df)
long = pd.concat(frames, ignore_index=True)
seed_cols = [c for c in long.columns if c.startswith("median_seed")]
long["n_seeds"] = long[seed_cols].notna().sum(axis=1)
paper = snakemake.params.paper_medians  # noqa: F821
long["paper_median"] = [paper.get(d, np.nan) if m == "stentrans" else np.nan for d, m in zip(long["dataset"], long["method"])]
table = long[["dataset", "protocol", "method", "mean", "sd", "n_seeds", "n_genes", "n_excluded", "n_spots", "paper_median"]]
with atomic_path(snakemake.output.tsv) as tmp:  # noqa: F821
    table.to_csv(tmp, sep="\t", index=False, float_format="%.4f", na_rep="NA")


def pm(mean, sd):
    if not np.isfinite(mean):
        return "NA"
    return f"{mean:.3f}" if not np.isfinite(sd) else f"{mean:.3f} ± {sd:.3f}"


methods = list(dict.fromkeys(table["method"]))
protocols = list(dict.fromkeys(table["protocol"]))
parts = ["# Median per-gene PCC (mean ± sd over seeds)\n"]
for proto in protocols:
    sub = table[table["protocol"] == proto]
    wide = sub.assign(v=[pm(m, s) for m, s in zip(sub["mean"], sub["sd"])]).pivot(index="dataset", columns="method", values="v")
    wide = wide.reindex(columns=[m for m in methods if m in wide.columns]).reset_index()
    if paper:
        wide["paper (stEnTrans)"] = [f"{paper[d]:.3f}" if d in paper else "" for d in wide["dataset"]]
    parts.append(f"\n## protocol `{proto}`\n\n" + to_markdown(wide))
with atomic_path(snakemake.output.md) as tmp:  # noqa: F821
    tmp.write_text("".join(parts), encoding="utf-8")

datasets = list(dict.fromkeys(table["dataset"]))
fig, axes = plt.subplots(len(protocols), 1, figsize=(2.5 + 0.3 * len(datasets) * (len(methods) + 1), 2.8 * len(protocols)), squeeze=False)
colors = plt.get_cmap("tab10").colors
width = 0.8 / max(1, len(methods))
for ax, proto in zip(axes[:, 0], protocols):
    sub = table[table["protocol"] == proto].set_index(["dataset", "method"])
    for k, m in enumerate(methods):
        means = [sub["mean"].get((d, m), np.nan) for d in datasets]
        sds = [sub["sd"].get((d, m), np.nan) for d in datasets]
        xs = np.arange(len(datasets)) + (k - (len(methods) - 1) / 2) * width
        ax.bar(xs, means, width, yerr=np.nan_to_num(sds), label=m, color=colors[k % len(colors)], capsize=2)
    ref = [paper.get(d, np.nan) for d in datasets]
    if np.isfinite(ref).any():
        ax.scatter(np.arange(len(datasets)), ref, marker="_", s=400, color="black", label="paper stEnTrans", zorder=3)
    ax.set_xticks(np.arange(len(datasets)), datasets, rotation=30, ha="right")
    ax.set_ylabel("median PCC")
    ax.set_title(f"protocol {proto}", fontsize=10)
    ax.axhline(0, color="grey", linewidth=0.5)
axes[0, 0].legend(fontsize=7, ncol=min(4, len(methods) + 1), loc="upper left", bbox_to_anchor=(1.0, 1.0))
fig.tight_layout()
with atomic_path(snakemake.output.png, suffix=".png") as tmp:  # noqa: F821
    fig.savefig(tmp, dpi=150, bbox_inches="tight")
log.info("%d rows -> %s", len(table), snakemake.output.tsv)  # noqa: F821
