"""Rule simulate: a simulated section (2x truth in uns) and its planted programs as gene sets."""

from _common import run


def main(snakemake, log):
    import stentrans
    from stentrans.datasets import simulate, write_program_gmt

    spec = snakemake.params.spec
    shape = tuple(spec["shape"]) or None
    adata = simulate(lattice=spec["lattice"], n_genes=spec["n_genes"], seed=spec["seed"], **({"shape": shape} if shape else {"size": spec["size"]}))
    stentrans.tl.write_h5ad(adata, snakemake.output.h5ad)
    write_program_gmt(adata, snakemake.output.gmt)
    log.info("%d spots x %d genes -> %s, planted programs -> %s", adata.n_obs, adata.n_vars, snakemake.output.h5ad, snakemake.output.gmt)


run(snakemake, main)  # noqa: F821
