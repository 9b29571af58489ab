"""Rule plot_enhanced: a few genes, measured spots above, enhanced spots below."""

import math

from _common import start

log = start(snakemake)  # noqa: F821

import anndata as ad  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from stentrans._utils import atomic_path  # noqa: E402
from stentrans.grid import dense  # noqa: E402

measured = ad.read_h5ad(snakemake.input.measured)  # noqa: F821
enhanced = ad.read_h5ad(snakemake.input.enhanced)  # noqa: F821
lattice = str(enhanced.uns.get("stentrans", {}).get("lattice", "square"))


genes = [g for g in snakemake.params.genes if g in enhanced.var_names]  # noqa: F821
if not genes:
    common = [g for g in measured.var_names if g in enhanced.var_names]
    X = np.log1p(np.maximum(dense(measured[:, common].X), 0))
    order = np.argsort(-X.var(axis=0), kind="stable")
    genes = [common[j] for j in order[: snakemake.params.n_genes]]  # noqa: F821


def xy(adata):
    """Plot positions in spot spacings (hex: the Visium honeycomb)."""
    r = adata.obs["array_row"].to_numpy(float)
    c = adata.obs["array_col"].to_numpy(float)
    if lattice == "hex":
        return c / 2.0, -r * math.sqrt(3) / 2.0
    return c, -r


fig, axes = plt.subplots(2, len(genes), figsize=(3.0 * len(genes), 6.4), squeeze=False)
rows = [(measured, "measured", 1.0), (enhanced, "enhanced", 0.5)]
for j, gene in enumerate(genes):
    vals = [dense(a[:, gene].X).ravel() for a, _, _ in rows]
    vmax = float(np.percentile(np.concatenate(vals), 99)) or 1.0
    for i, ((a, label, spacing), v) in enumerate(zip(rows, vals)):
        ax = axes[i, j]
        x, y = xy(a)
        ax.set_aspect("equal")
        ax.set_xlim(x.min() - 1, x.max() + 1)
        ax.set_ylim(y.min() - 1, y.max() + 1)
        width_pt = ax.get_window_extent().width * 72.0 / fig.dpi
        size = (0.9 * spacing * width_pt / (x.max() - x.min() + 2)) ** 2
        ax.scatter(x, y, c=v, s=size, cmap="viridis", vmin=0, vmax=vmax, marker="s" if lattice == "square" else "o", linewidths=0)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{gene}\n{label} ({a.n_obs} spots)" if i == 0 else f"{label} ({a.n_obs} spots)", fontsize=9)
fig.suptitle(f"{snakemake.wildcards.sample}: measured vs stEnTrans 2x enhanced ({lattice} lattice)", fontsize=10)  # noqa: F821
fig.tight_layout()
with atomic_path(snakemake.output[0], suffix=".png") as tmp:  # noqa: F821
    fig.savefig(tmp, dpi=150)
log.info("genes %s -> %s", ", ".join(genes), snakemake.output[0])  # noqa: F821
