# stEnTrans, the default method (robust) and the baselines (DIST, linear, cubic, NN, NEDI) are
# scored together by stentrans.tl.evaluate, so every method sees the same genes,
# spots and input.


rule evaluate:
    input:
        unpack(evaluate_inputs),
    output:
        per_gene=RESULTS["per_gene"],
        summary=report(
            RESULTS["summary"],
            caption="../report/evaluate_summary.rst",
            category="Evaluation",
            subcategory="{sample}",
        ),
        summary_md=RESULTS["summary_md"],
        boxplot=report(
            RESULTS["boxplot"],
            caption="../report/boxplot.rst",
            category="Evaluation",
            subcategory="{sample}",
        ),
        panels=report(
            RESULTS["gene_panels"],
            caption="../report/gene_panels.rst",
            category="Evaluation",
            subcategory="{sample}",
        ),
    log:
        "logs/evaluate/{sample}.log",
    benchmark:
        "results/benchmarks/evaluate/{sample}.tsv"
    params:
        protocols=eval_setting("protocols"),
        # and the protocols whose truth the sample has (simulated: truth; finer: realtruth)
        truth=config["evaluate"]["truth"],
        methods=eval_setting("methods"),
        seeds=eval_setting("seeds"),
        max_genes=eval_setting("max_genes"),
        epochs=config["evaluate"]["epochs"],
        dist_epochs=config["evaluate"]["dist_epochs"],
        heldout_fraction=config["evaluate"]["heldout_fraction"],
        genes=panel_genes,
        n_panel_genes=config["evaluate"]["n_panel_genes"],
        model=config["model"],
        batch_size=config["train"]["batch_size"],
        lr=config["train"]["lr"],
        device=config["train"]["device"],
        ablation=False,
    threads: res("evaluate", "threads")
    resources:
        gpu=1,
        mem_mb=res("evaluate", "mem_mb"),
        runtime=res("evaluate", "runtime"),
    conda:
        GPU_ENV
    script:
        "../scripts/evaluate.py"


rule ablation:
    input:
        data=RESULTS["qc"],
    output:
        per_gene=RESULTS["ablation_per_gene"],
        summary=RESULTS["ablation"],
        table1=report(
            RESULTS["table1"],
            caption="../report/table1.rst",
            category="Ablation",
            subcategory="{sample}",
        ),
        table1_md=RESULTS["table1_md"],
    log:
        "logs/ablation/{sample}.log",
    benchmark:
        "results/benchmarks/ablation/{sample}.tsv"
    params:
        protocols=[config["ablation"]["protocol"]],
        truth=False,
        # ablation=True: the paper's network and its ablations (Table 1)
        methods=[],
        seeds=config["evaluate"]["seeds"],
        max_genes=eval_setting("max_genes"),
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
    threads: res("evaluate", "threads")
    resources:
        gpu=1,
        mem_mb=res("evaluate", "mem_mb"),
        runtime=res("evaluate", "runtime"),
    conda:
        GPU_ENV
    script:
        "../scripts/evaluate.py"


# clusters, domains and spatially variable genes of each output against the truth
# at every position (samples with a truth: simulated and `finer`; docs/downstream.md)
rule downstream:
    input:
        unpack(evaluate_inputs),
    output:
        table=report(
            RESULTS["downstream"],
            caption="../report/downstream.rst",
            category="Evaluation",
            subcategory="{sample}",
        ),
    log:
        "logs/downstream/{sample}.log",
    benchmark:
        "results/benchmarks/downstream/{sample}.tsv"
    params:
        outputs=config["downstream"]["outputs"],
        max_genes=eval_setting("max_genes"),
        # the CPU env: the outputs (robust, interpolators) fit on CPU in seconds
        device="cpu",
    threads: res("evaluate", "threads")
    resources:
        mem_mb=res("evaluate", "mem_mb"),
        runtime=res("evaluate", "runtime"),
    conda:
        CPU_ENV
    script:
        "../scripts/downstream.py"
