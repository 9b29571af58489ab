"""Rules evaluate and ablation: per-gene PCC of the methods under the protocols, tables and figures."""

from pathlib import Path

from _common import run


def main(snakemake, log):
    import stentrans
    from stentrans.run import evaluate_to

    p = snakemake.params
    settings = {"network": {**p.model, "batch_size": p.batch_size, "lr": p.lr, "epochs": p.epochs}}
    if p.dist_epochs is not None:
        settings["dist"] = {"epochs": p.dist_epochs}
    evaluate_to(
        stentrans.read(snakemake.input.data),
        Path(snakemake.output.summary).parent,
        protocols=p.protocols,
        methods=p.methods,
        seeds=p.seeds,
        settings=settings,
        truth=snakemake.input.get("truth"),
        add_truth=p.truth,
        panel_genes=p.genes,
        n_panel_genes=p.n_panel_genes,
        max_genes=p.max_genes,
        ablation=p.ablation,
        heldout_fraction=p.heldout_fraction,
        dataset=snakemake.wildcards.sample,
        device=p.device,
        progress=False,
    )


run(snakemake, main)  # noqa: F821
