rule download:
    output:
        directory("resources/download/{sample}"),
    log:
        "logs/download/{sample}.log",
    benchmark:
        "results/benchmarks/download/{sample}.tsv"
    localrule: True
    conda:
        CPU_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=240,
    params:
        locations=lambda wildcards: sample_row(wildcards)["location"],
        sha256=lambda wildcards: sample_row(wildcards)["sha256"],
        retries=config["download"]["retries"],
        backoff=config["download"]["backoff"],
    script:
        "../scripts/download.py"


rule simulate:
    output:
        h5ad="resources/simulated/{sample}.h5ad",
        gmt="resources/simulated/{sample}.gmt",
    log:
        "logs/simulate/{sample}.log",
    benchmark:
        "results/benchmarks/simulate/{sample}.tsv"
    conda:
        CPU_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        spec=simulate_spec,
    script:
        "../scripts/simulate.py"
