"""Rule qc: read the sample (any supported format), filter spots and genes."""

from _common import run


def main(snakemake, log):
    import stentrans
    from stentrans.datasets import check_sha256, data_path

    p = snakemake.params
    data = data_path(snakemake.input.data)
    if p.sha256:
        if data.is_file():
            log.info("%s: sha256 %s (as expected)", data, check_sha256(data, p.sha256))
        else:
            log.warning("%s is a folder: its sha256 in the sample table is not checked", data)
    adata = stentrans.pp.qc(stentrans.read(data, lattice=p.lattice), min_counts=p.min_counts, min_spot_fraction=p.min_spot_fraction, min_spots=p.min_spots)
    stentrans.tl.write_h5ad(adata, snakemake.output[0])
    log.info("qc: %d spots x %d genes -> %s", adata.n_obs, adata.n_vars, snakemake.output[0])
    log.info("%s", stentrans.pp.gene_filter_note(adata, how="workflow"))


run(snakemake, main)  # noqa: F821
