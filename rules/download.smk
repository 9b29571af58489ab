rule download:
    output:
        directory("resources/download/{sample}"),
    log:
        "logs/download/{sample}.log",
    benchmark:
        "results/benchmarks/download/{sample}.tsv"
    params:
        locations=lambda wildcards: sample_row(wildcards)["location"],
        sha256=lambda wildcards: sample_row(wildcards)["sha256"],
        retries=config["download"]["retries"],
        backoff=config["download"]["backoff"],
    threads: 1
    resources:
        mem_mb=1000,
        runtime=240,
    localrule: True
    conda:
        CPU_ENV
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
    params:
        spec=simulate_spec,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        CPU_ENV
    script:
        "../scripts/simulate.py"
