"""Rule grid: a sample's lattice mapping (JSON) and its QC figure (spots M, down-sampling D, H(M))."""

from _common import run


def main(snakemake, log):
    import stentrans
    from stentrans.report.mapping import grid_mapping, write_grid_mapping

    adata = stentrans.read(snakemake.input[0])
    mapping = grid_mapping(adata, fill_lost=snakemake.params.fill_lost)
    write_grid_mapping(mapping, snakemake.output.mapping)
    u, v = mapping["grid"]["shape"]
    stentrans.pl.lattice_mapping(adata, title=f"{snakemake.wildcards.sample}: {mapping['lattice']} lattice, grid {u} x {v}", save=snakemake.output.figure, fill_lost=snakemake.params.fill_lost)
    log.info("%s lattice, grid %d x %d: %d spots, D keeps %d, %d lost (%s), H %d positions -> %s", mapping["lattice"], u, v, mapping["n_measured"], mapping["n_kept"], mapping["n_lost"], mapping["fill_lost"], mapping["n_enhanced"], snakemake.output.mapping)


run(snakemake, main)  # noqa: F821
