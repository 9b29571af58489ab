"""Rule bin_cells: cell-level / subcellular data -> square pseudo-spots (.h5ad)."""

from _common import reader_options, run


def main(snakemake, log):
    import stentrans
    from stentrans.datasets import check_sha256, data_path
    from stentrans.io import BinConfig, read_finer, square_bins

    b = snakemake.params.binning
    src = data_path(snakemake.input.data)
    if snakemake.params.sha256:
        log.info("%s: sha256 %s (as expected)", src, check_sha256(src, snakemake.params.sha256))
    reader, columns = reader_options(b)
    binned = square_bins(read_finer(src, reader, **columns), b["bin_size"], min_cells=b.get("min_cells", BinConfig().min_cells))
    stentrans.tl.write_h5ad(binned, snakemake.output[0])
    log.info("%d pseudo-spots x %d genes -> %s", binned.n_obs, binned.n_vars, snakemake.output[0])


run(snakemake, main)  # noqa: F821
