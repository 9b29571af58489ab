rule plot_enhanced:
    input:
        measured=RESULTS["qc"],
        enhanced=RESULTS["enhanced"],
    output:
        report(
            RESULTS["enhanced_genes"],
            caption="../report/enhanced_genes.rst",
            category="Enhancement",
            subcategory="{sample}",
        ),
    log:
        "logs/plot_enhanced/{sample}.log",
    benchmark:
        "results/benchmarks/plot_enhanced/{sample}.tsv"
    params:
        genes=lambda wildcards: config["evaluate"]["genes"].get(wildcards.sample, []),
        n_genes=config["plots"]["n_genes"],
    threads: 1
    resources:
        mem_mb=res("default", "mem_mb"),
        runtime=res("default", "runtime"),
    conda:
        CPU_ENV
    script:
        "../scripts/plot_enhanced.py"


rule plot_intervals:
    input:
        enhanced=RESULTS["enhanced"],
    output:
        report(
            RESULTS["interval_map"],
            caption="../report/interval_map.rst",
            category="Enhancement",
            subcategory="{sample}",
        ),
    log:
        "logs/plot_intervals/{sample}.log",
    benchmark:
        "results/benchmarks/plot_intervals/{sample}.tsv"
    params:
        genes=lambda wildcards: config["evaluate"]["genes"].get(wildcards.sample, []),
    threads: 1
    resources:
        mem_mb=res("default", "mem_mb"),
        runtime=res("default", "runtime"),
    conda:
        CPU_ENV
    script:
        "../scripts/plot_intervals.py"


rule summarize:
    input:
        [result("summary", s) for s in SAMPLES],
    output:
        tsv=report(
            SUMMARY["median_pcc"],
            caption="../report/median_pcc.rst",
            category="Summary",
        ),
        md=SUMMARY["median_pcc_md"],
        png=report(
            SUMMARY["median_pcc_png"],
            caption="../report/median_pcc_plot.rst",
            category="Summary",
        ),
    log:
        "logs/summarize/summarize.log",
    benchmark:
        "results/benchmarks/summarize/summarize.tsv"
    params:
        samples=SAMPLES,
        paper_medians=config["paper_medians"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    localrule: True
    conda:
        CPU_ENV
    script:
        "../scripts/summarize.py"
