"""Rule plot_intervals: a gene's enhanced map beside its interval-width map, low-confidence positions marked."""

from _common import run


def main(snakemake, log):
    import anndata as ad

    import stentrans

    enhanced = ad.read_h5ad(snakemake.input.enhanced)
    genes = [g for g in snakemake.params.genes if g in enhanced.var_names]
    stentrans.pl.interval_map(enhanced, gene=genes[0] if genes else None, dataset=snakemake.wildcards.sample, save=snakemake.output[0])
    log.info("-> %s", snakemake.output[0])


run(snakemake, main)  # noqa: F821
