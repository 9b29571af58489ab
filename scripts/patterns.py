"""Rule patterns: Sepal ranking, pattern families, enrichment; measured vs enhanced."""

from pathlib import Path

from _common import run_cli, start

start(snakemake)  # noqa: F821
p = snakemake.params  # noqa: F821
i = snakemake.input  # noqa: F821
outdir = Path(snakemake.output.summary).parent  # noqa: F821
run_cli(
    ["patterns", i.measured, "--enhanced", i.enhanced, "--gmt", i.gmt, "--top", p.top, "--species", p.species]
    + ["--min-spot-fraction", p.min_spot_fraction, "--device", p.device, "-o", outdir]
)
