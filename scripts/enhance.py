"""Rule enhance: 2x enhancement of every gene (robust variant, or the pretrained paper network)."""

import json

from _common import run


def main(snakemake, log):
    import stentrans
    from stentrans.run import enhance_to

    p = snakemake.params
    adata = stentrans.read(snakemake.input.data)
    if p.variant == "paper":
        kw = {"model": snakemake.input.model}
    else:
        kw = {"method": "robust+net" if p.robust_net else "robust", "seed": p.seed}
    st = enhance_to(adata, snakemake.output[0], chunk=p.chunk, device=p.device, fill_lost=p.fill_lost, **kw)
    mapping = json.loads(open(snakemake.input.grid).read())
    if (st["n_measured"], st["n_imputed"]) != (mapping["n_measured"], mapping["n_new"]):
        raise RuntimeError(f"{st['path']}: {st['n_measured']} + {st['n_imputed']} spots, but the lattice mapping {snakemake.input.grid} has {mapping['n_measured']} + {mapping['n_new']}")


run(snakemake, main)  # noqa: F821
