"""Rules evaluate and ablation: `stentrans evaluate` into the outputs' folder."""

from pathlib import Path

from _common import run_cli, start

start(snakemake)  # noqa: F821
p = snakemake.params  # noqa: F821
outdir = Path(snakemake.output.summary).parent  # noqa: F821
argv = ["evaluate", snakemake.input[0], "-o", outdir, "--no-filter", "--no-progress"]  # noqa: F821
argv += ["--dataset", snakemake.wildcards.sample, "--protocol", p.protocols, "--methods", p.methods]  # noqa: F821
argv += ["--seeds", p.seeds, "--epochs", p.epochs, "--heldout-fraction", p.heldout_fraction]
argv += ["--depth", p.model["depth"], "--patch-size", p.model["patch_size"], "--heads", p.model["heads"]]
argv += ["--batch-size", p.batch_size, "--lr", p.lr, "--device", p.device, "--n-panel-genes", p.n_panel_genes]
if p.genes:
    argv += ["--genes", p.genes]
if p.dist_epochs is not None:
    argv += ["--dist-epochs", p.dist_epochs]
if p.get("ablation", False):
    argv.append("--ablation")
run_cli(argv)
