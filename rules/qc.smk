rule bin_cells:
    input:
        data=raw_data,
    output:
        "resources/binned/{sample}.h5ad",
    log:
        "logs/bin_cells/{sample}.log",
    benchmark:
        "results/benchmarks/bin_cells/{sample}.tsv"
    params:
        binning=binning_settings,
        sha256=path_sha256,
    threads: 1
    resources:
        mem_mb=res("default", "mem_mb"),
        runtime=res("default", "runtime"),
    conda:
        CPU_ENV
    script:
        "../scripts/bin_cells.py"


rule bin_finer:
    input:
        data=raw_data,
    output:
        spots=FINER["spots"],
        truth=FINER["truth"],
    log:
        "logs/bin_finer/{sample}.log",
    benchmark:
        "results/benchmarks/bin_finer/{sample}.tsv"
    params:
        binning=binning_settings,
        lattice=lambda wildcards: sample_row(wildcards)["lattice"],
        sha256=path_sha256,
    threads: 1
    resources:
        mem_mb=res("default", "mem_mb"),
        runtime=res("default", "runtime"),
    conda:
        CPU_ENV
    script:
        "../scripts/bin_finer.py"


rule qc:
    input:
        data=qc_input,
    output:
        RESULTS["qc"],
    log:
        "logs/qc/{sample}.log",
    benchmark:
        "results/benchmarks/qc/{sample}.tsv"
    params:
        lattice=lambda wildcards: sample_row(wildcards)["lattice"],
        sha256=qc_sha256,
        min_counts=config["qc"]["min_counts"],
        min_spot_fraction=config["qc"]["min_spot_fraction"],
        min_spots=config["qc"]["min_spots"],
    threads: 1
    resources:
        mem_mb=res("default", "mem_mb"),
        runtime=res("default", "runtime"),
    conda:
        CPU_ENV
    script:
        "../scripts/qc.py"
