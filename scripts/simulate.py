"""Rule simulate: `stentrans simulate` for a sample with source `simulate`."""

from _common import run_cli, start

start(snakemake)  # noqa: F821
spec = snakemake.params.spec  # noqa: F821
argv = ["simulate", "--lattice", spec["lattice"], "--n-genes", spec["n_genes"], "--seed", spec["seed"]]
argv += ["--shape", *spec["shape"]] if spec["shape"] else ["--size", spec["size"]]
run_cli(argv + ["-o", snakemake.output.h5ad, "--gmt", snakemake.output.gmt])  # noqa: F821
