"""Rule enhance: 2x enhancement of every gene with the pretrained model."""

from _common import run_cli, start

start(snakemake)  # noqa: F821
p = snakemake.params  # noqa: F821
run_cli(
    ["enhance", snakemake.input.data, "-o", snakemake.output[0], "--model", snakemake.input.model]  # noqa: F821
    + ["--no-filter", "--chunk", p.chunk, "--device", p.device]
)
