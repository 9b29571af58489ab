"""Rule enhance: 2x enhancement of every gene (robust variant, or the pretrained paper model)."""

from _common import run_cli, start

start(snakemake)  # noqa: F821
p = snakemake.params  # noqa: F821
argv = ["enhance", snakemake.input.data, "-o", snakemake.output[0]]  # noqa: F821
argv += ["--no-filter", "--chunk", p.chunk, "--device", p.device]
if p.variant == "paper":
    argv += ["--model", snakemake.input.model]  # noqa: F821
else:
    argv += ["--variant", "robust", "--seed", p.seed] + (["--robust-net"] if p.robust_net else [])
run_cli(argv)
