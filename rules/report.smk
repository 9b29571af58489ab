rule benchmarks:
    input:
        sample_outputs(),
    output:
        report(
            SUMMARY["benchmarks"],
            caption="../report/benchmarks.rst",
            category="Run",
        ),
    log:
        "logs/benchmarks/benchmarks.log",
    benchmark:
        "results/benchmarks/benchmarks/benchmarks.tsv"
    params:
        folder=BENCHMARKS,
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    localrule: True
    conda:
        CPU_ENV
    script:
        "../scripts/benchmarks.py"


rule run_info:
    output:
        report(
            SUMMARY["run_info"],
            caption="../report/run_info.rst",
            category="Run",
        ),
    log:
        "logs/run_info/run_info.log",
    benchmark:
        "results/benchmarks/run_info/run_info.tsv"
    params:
        config=config,
        samples=samples.astype(str).to_dict(orient="records"),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        GPU_ENV
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
    params:
        files=page_files,
        page=config["results_page"],
        paper_medians=config["paper_medians"],
        settings=lambda wildcards: {
            "evaluate": config["evaluate"],
            "model": config["model"],
            "train": config["train"],
            "enhance": config["enhance"],
        },
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    localrule: True
    conda:
        CPU_ENV
    script:
        "../scripts/results_page.py"
