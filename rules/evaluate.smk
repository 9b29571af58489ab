# stEnTrans and the baselines (DIST, linear, cubic, NN, NEDI) are scored together
# by `stentrans evaluate`, so every method sees the same genes, spots and input.


rule evaluate:
    input:
        "results/{sample}/qc.h5ad",
    output:
        per_gene="results/{sample}/evaluate/per_gene.tsv",
        summary=report(
            "results/{sample}/evaluate/summary.tsv",
            caption="../report/evaluate_summary.rst",
            category="Evaluation",
            subcategory="{sample}",
        ),
        summary_md="results/{sample}/evaluate/summary.md",
        boxplot=report(
            "results/{sample}/evaluate/boxplot.png",
            caption="../report/boxplot.rst",
            category="Evaluation",
            subcategory="{sample}",
        ),
        panels=report(
            "results/{sample}/evaluate/gene_panels.png",
            caption="../report/gene_panels.rst",
            category="Evaluation",
            subcategory="{sample}",
        ),
    log:
        "logs/evaluate/{sample}.log",
    benchmark:
        "results/benchmarks/evaluate/{sample}.tsv"
    conda:
        GPU_ENV
    threads: res("evaluate", "threads")
    resources:
        gpu=1,
        mem_mb=res("evaluate", "mem_mb"),
        runtime=res("evaluate", "runtime"),
    params:
        protocols=eval_protocols,
        methods=eval_methods,
        seeds=eval_setting("seeds"),
        epochs=config["evaluate"]["epochs"],
        dist_epochs=config["evaluate"]["dist_epochs"],
        heldout_fraction=config["evaluate"]["heldout_fraction"],
        genes=panel_genes,
        n_panel_genes=config["evaluate"]["n_panel_genes"],
        model=config["model"],
        batch_size=config["train"]["batch_size"],
        lr=config["train"]["lr"],
        device=config["train"]["device"],
    script:
        "../scripts/evaluate.py"


rule ablation:
    input:
        "results/{sample}/qc.h5ad",
    output:
        per_gene="results/{sample}/ablation/per_gene.tsv",
        summary="results/{sample}/ablation/summary.tsv",
        table1=report(
            "results/{sample}/ablation/table1.tsv",
            caption="../report/table1.rst",
            category="Ablation",
            subcategory="{sample}",
        ),
        table1_md="results/{sample}/ablation/table1.md",
    log:
        "logs/ablation/{sample}.log",
    benchmark:
        "results/benchmarks/ablation/{sample}.tsv"
    conda:
        GPU_ENV
    threads: res("evaluate", "threads")
    resources:
        gpu=1,
        mem_mb=res("evaluate", "mem_mb"),
        runtime=res("evaluate", "runtime"),
    params:
        protocols=config["ablation"]["protocol"],
        methods="stentrans",
        seeds=config["evaluate"]["seeds"],
        epochs=config["evaluate"]["epochs"],
        dist_epochs=None,
        heldout_fraction=config["evaluate"]["heldout_fraction"],
        genes=panel_genes,
        n_panel_genes=config["evaluate"]["n_panel_genes"],
        model=config["model"],
        batch_size=config["train"]["batch_size"],
        lr=config["train"]["lr"],
        device=config["train"]["device"],
        ablation=True,
    script:
        "../scripts/evaluate.py"
