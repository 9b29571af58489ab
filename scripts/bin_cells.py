"""Rule bin_cells: cell-level / subcellular data -> square pseudo-spots (.h5ad)."""

from _common import run

#: config binning.<sample> keys -> stentrans.io.BinConfig fields
FIELDS = {"x": "x", "y": "y", "gene_column": "gene", "min_cells": "min_cells"}


def main(snakemake, log):
    import stentrans
    from stentrans.datasets import check_sha256, data_path
    from stentrans.io import BinConfig, bin_cells, read_cells

    b = snakemake.params.binning
    cfg = BinConfig(**{f: b[k] for k, f in FIELDS.items() if k in b})
    src = data_path(snakemake.input.data)
    if snakemake.params.sha256:
        log.info("%s: sha256 %s (as expected)", src, check_sha256(src, snakemake.params.sha256))
    coords, counts, genes = read_cells(src, x=cfg.x, y=cfg.y, gene=cfg.gene, drop=b.get("drop", []), query=b.get("query") or None)
    binned = bin_cells(coords, counts, b["bin_size"], x=cfg.x, y=cfg.y, gene=cfg.gene, genes=genes, min_cells=cfg.min_cells, source=src)
    stentrans.tl.write_h5ad(binned, snakemake.output[0])
    log.info("%d pseudo-spots x %d genes -> %s", binned.n_obs, binned.n_vars, snakemake.output[0])


run(snakemake, main)  # noqa: F821
