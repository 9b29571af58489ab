"""Rule enhance: 2x enhancement of every gene (robust variant, or the pretrained paper network)."""

import json

from _common import run


def main(snakemake, log):
    import anndata as ad

    import stentrans

    p = snakemake.params
    adata = stentrans.read(snakemake.input.data)
    if p.variant == "paper":
        model = snakemake.input.model
    else:
        model = stentrans.tl.train(adata, "robust+net" if p.robust_net else "robust", seed=p.seed, device=p.device)
    out = snakemake.output[0]
    stentrans.tl.enhance(adata, model, chunk=p.chunk, device=p.device, fill_lost=p.fill_lost, out_path=out)
    enh = ad.read_h5ad(out, backed="r")
    st = enh.uns["stentrans"]
    log.info("enhanced %d genes: %d measured + %d new spots (%d of them lost spots, fill_lost %s) -> %s", enh.n_vars, st["n_measured"], st["n_imputed"], st.get("n_lost", 0), st.get("fill_lost", "none"), out)
    mapping = json.loads(open(snakemake.input.grid).read())
    if (st["n_measured"], st["n_imputed"]) != (mapping["n_measured"], mapping["n_new"]):
        raise RuntimeError(f"{out}: {st['n_measured']} + {st['n_imputed']} spots, but the lattice mapping {snakemake.input.grid} has {mapping['n_measured']} + {mapping['n_new']}")
    log.info("%s", stentrans.pp.gene_filter_note(adata, how="workflow"))
    enh.file.close()


run(snakemake, main)  # noqa: F821
