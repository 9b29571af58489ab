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
