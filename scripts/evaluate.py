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
    # the methods are fitted on every gene of the qc rule; the genes detected in
    # more than 10 % of the spots are scored (the authors' rule; all of them under the paper configs' qc)
    scored = stentrans.pp.scored_genes(adata)
    panel = list(p.genes) or pl.top_variance_genes(adata, p.n_panel_genes, among=scored or None)
    missing = [g for g in panel if g not in adata.var_names]
    if missing:
        raise stentrans.InputError(snakemake.input.data, "evaluate.genes", f"not among the {adata.n_vars} genes after QC: {', '.join(missing)}")
    seeds = list(range(p.seeds))
    genes = None
    score = list(dict.fromkeys([*scored, *panel]))
    if p.max_genes is not None and len(score) > p.max_genes:
        top = pl.top_variance_genes(adata, p.max_genes, among=scored or None)
        genes = score = list(dict.fromkeys([*panel, *top]))[: max(p.max_genes, len(panel))]
        log.info("evaluate.max_genes: %d of %d genes fitted and scored (the most variable, and the panel's)", len(genes), adata.n_vars)
    else:
        log.info("%d of %d genes scored (detected in more than 10 %% of the spots, and the panel's); every method is fitted on all %d", len(score), adata.n_vars, adata.n_vars)
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
