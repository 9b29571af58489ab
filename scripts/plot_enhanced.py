"""Rule plot_enhanced: a few genes, measured spots above, enhanced spots below."""

from _common import run


def main(snakemake, log):
    import anndata as ad

    import stentrans

    p = snakemake.params
    measured = stentrans.read(snakemake.input.measured)
    enhanced = ad.read_h5ad(snakemake.input.enhanced)
    stentrans.pl.enhanced_genes(measured, enhanced, genes=p.genes, n_genes=p.n_genes, dataset=snakemake.wildcards.sample, save=snakemake.output[0])
    log.info("-> %s", snakemake.output[0])


run(snakemake, main)  # noqa: F821
