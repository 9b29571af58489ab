"""Rule enhance: 2x enhancement of every gene with enhance.method (a network method from the pretrain rule's checkpoint)."""

import json

from _common import run


def main(snakemake, log):
    import stentrans
    from stentrans.run import enhance_to

    p = snakemake.params
    adata = stentrans.read(snakemake.input.data)
    model = snakemake.input.get("model")  # network methods: the pretrain rule's checkpoint
    st = enhance_to(adata, snakemake.output[0], method=p.method, model=model, seed=p.seed, chunk=p.chunk, device=p.device, fill_lost=p.fill_lost, measured=p.measured, interval=p.interval)
    mapping = json.loads(open(snakemake.input.grid).read())
    if (st["n_measured"], st["n_imputed"]) != (mapping["n_measured"], mapping["n_new"]):
        raise RuntimeError(f"{st['path']}: {st['n_measured']} + {st['n_imputed']} spots, but the lattice mapping {snakemake.input.grid} has {mapping['n_measured']} + {mapping['n_new']}")
    log.info("%s", stentrans.pp.gene_filter_note(adata, how="workflow"))


run(snakemake, main)  # noqa: F821
