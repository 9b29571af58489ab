"""Rule downstream: what clustering and spatially variable genes see on each output, against the truth at every position."""

from pathlib import Path

from _common import run


def main(snakemake, log):
    import stentrans
    from stentrans.run import downstream_to

    p = snakemake.params
    downstream_to(
        stentrans.read(snakemake.input.data),
        Path(snakemake.output.table).parent,
        truth=snakemake.input.get("truth"),
        outputs=p.outputs,
        max_genes=p.max_genes,
        dataset=snakemake.wildcards.sample,
        device=p.device,
    )


run(snakemake, main)  # noqa: F821
