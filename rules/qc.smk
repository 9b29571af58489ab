rule bin_cells:
    input:
        data=raw_data,
    output:
        "resources/binned/{sample}.h5ad",
    log:
        "logs/bin_cells/{sample}.log",
    benchmark:
        "results/benchmarks/bin_cells/{sample}.tsv"
    conda:
        CPU_ENV
    threads: 1
    resources:
        mem_mb=res("default", "mem_mb"),
        runtime=res("default", "runtime"),
    params:
        binning=binning_settings,
    script:
        "../scripts/bin_cells.py"


rule qc:
    input:
        data=qc_input,
    output:
        "results/{sample}/qc.h5ad",
    log:
        "logs/qc/{sample}.log",
    benchmark:
        "results/benchmarks/qc/{sample}.tsv"
    conda:
        CPU_ENV
    threads: 1
    resources:
        mem_mb=res("default", "mem_mb"),
        runtime=res("default", "runtime"),
    params:
        lattice=lambda wildcards: sample_row(wildcards)["lattice"],
        sha256=path_sha256,
        min_counts=config["qc"]["min_counts"],
        min_spot_fraction=config["qc"]["min_spot_fraction"],
    script:
        "../scripts/qc.py"
