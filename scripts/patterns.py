"""Rule patterns: Sepal ranking, pattern families, enrichment; measured vs enhanced, and Fig. 4's control."""

from pathlib import Path

from _common import run


def main(snakemake, log):
    import anndata as ad

    import stentrans
    from stentrans.run import patterns_to

    p = snakemake.params
    i = snakemake.input
    measured = stentrans.read(i.measured)  # what the enhance rule enhanced (the control fits on it again)
    enhanced = ad.read_h5ad(i.enhanced)
    enhanced.uns["stentrans"].setdefault("source", str(i.enhanced))  # errors name the file
    adata = stentrans.pp.qc(measured, min_spot_fraction=p.min_spot_fraction)
    patterns_to(adata, Path(snakemake.output.summary).parent, enhanced=enhanced, gmt=i.gmt, measured=measured, top=p.top, species=p.species, device=p.device, seeds=p.seeds, control=p.control)


run(snakemake, main)  # noqa: F821
