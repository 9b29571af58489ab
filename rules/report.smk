rule benchmarks:
    input:
        sample_outputs(),
    output:
        report(
            "results/summary/benchmarks.tsv",
            caption="../report/benchmarks.rst",
            category="Run",
        ),
    log:
        "logs/benchmarks/benchmarks.log",
    benchmark:
        "results/benchmarks/benchmarks/benchmarks.tsv"
    localrule: True
    conda:
        CPU_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        folder="results/benchmarks",
    script:
        "../scripts/benchmarks.py"


rule run_info:
    output:
        report(
            "results/summary/run_info.yaml",
            caption="../report/run_info.rst",
            category="Run",
        ),
    log:
        "logs/run_info/run_info.log",
    benchmark:
        "results/benchmarks/run_info/run_info.tsv"
    conda:
        GPU_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        config=config,
        samples=samples.astype(str).to_dict(orient="records"),
    script:
        "../scripts/run_info.py"


rule results_page:
    input:
        unpack(results_page_inputs),
    output:
        md=report(
            f"{PAGE_DIR}/results.md",
            caption="../report/results_page.rst",
            category="Summary",
        ),
        figures=directory(f"{PAGE_DIR}/results_files"),
    log:
        "logs/results_page/results_page.log",
    benchmark:
        "results/benchmarks/results_page/results_page.tsv"
    localrule: True
    conda:
        CPU_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        samples=SAMPLES,
        page=config["results_page"],
        paper_medians=config["paper_medians"],
        settings=lambda wildcards: {
            "evaluate": config["evaluate"],
            "model": config["model"],
            "train": config["train"],
            "enhance": config["enhance"],
        },
    script:
        "../scripts/results_page.py"
