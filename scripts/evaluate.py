"""Rules evaluate and ablation: per-gene PCC of the methods under the protocols, tables and figures."""

from pathlib import Path

from _common import run

#: gene panels: the first of these protocols that ran (measured-grid maps)
PANEL_PROTOCOLS = ("nested", "paper", "heldout-genes")


def main(snakemake, log):
    import stentrans
    from stentrans import pl, report, tl

    p = snakemake.params
    sample = snakemake.wildcards.sample
    outdir = Path(snakemake.output.summary).parent
    adata = stentrans.read(snakemake.input.data)
    # fitted: every gene of the qc rule; scored: those detected in more than 10 % of the spots (all of them under the paper configs' qc)
    panel, genes, score = tl.evaluation_genes(adata, p.genes, p.n_panel_genes, p.max_genes, source=snakemake.input.data, field="evaluate.genes")
    seeds = list(range(p.seeds))
    res = tl.evaluate(
        adata,
        protocol=p.protocols,
        methods=p.methods,
        seeds=seeds,
        epochs=p.epochs,
        model_kwargs=dict(p.model),
        ablation=p.ablation,
        heldout_fraction=p.heldout_fraction,
        device=p.device,
        progress=False,
        train_kwargs={"batch_size": p.batch_size, "lr": p.lr},
        baseline_kwargs={"dist": {"epochs": p.dist_epochs}} if p.dist_epochs is not None else None,
        keep_genes=panel,
        genes=genes,
        dataset=sample,
        truth=snakemake.input.get("truth"),
        score_genes=score,
    )
    report.write_results(res, outdir, ablation=p.ablation)
    pl.pcc_boxplots(res["per_gene"], save=outdir / "boxplot")
    proto = next((q for q in PANEL_PROTOCOLS if q in res["maps"]), None)
    if proto is not None:
        pl.gene_panels(adata, panel, res["maps"][proto], title=f"{sample}: protocol {proto}, seed {seeds[0]}", save=outdir / "gene_panels")
    for _, row in res["summary"].iterrows():
        log.info("%-22s %-18s median PCC %s", row["protocol"], row["method"], report.format_pm(row["mean"], row["sd"]))
    log.info("-> %s", outdir)


run(snakemake, main)  # noqa: F821
