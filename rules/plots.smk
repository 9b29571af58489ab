rule plot_enhanced:
    input:
        measured="results/{sample}/qc.h5ad",
        enhanced="results/{sample}/enhanced.h5ad",
    output:
        report(
            "results/{sample}/figures/enhanced_genes.png",
            caption="../report/enhanced_genes.rst",
            category="Enhancement",
            subcategory="{sample}",
        ),
    log:
        "logs/plot_enhanced/{sample}.log",
    benchmark:
        "results/benchmarks/plot_enhanced/{sample}.tsv"
    conda:
        CPU_ENV
    threads: 1
    resources:
        mem_mb=res("default", "mem_mb"),
        runtime=res("default", "runtime"),
    params:
        genes=lambda wildcards: config["evaluate"]["genes"].get(wildcards.sample, []),
        n_genes=config["plots"]["n_genes"],
    script:
        "../scripts/plot_enhanced.py"


rule summarize:
    input:
        expand("results/{sample}/evaluate/summary.tsv", sample=SAMPLES),
    output:
        tsv=report(
            "results/summary/median_pcc.tsv",
            caption="../report/median_pcc.rst",
            category="Summary",
        ),
        md="results/summary/median_pcc.md",
        png=report(
            "results/summary/median_pcc.png",
            caption="../report/median_pcc_plot.rst",
            category="Summary",
        ),
    log:
        "logs/summarize/summarize.log",
    benchmark:
        "results/benchmarks/summarize/summarize.tsv"
    localrule: True
    conda:
        CPU_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        samples=SAMPLES,
        paper_medians=config["paper_medians"],
    script:
        "../scripts/summarize.py"
