rule pretrain:
    input:
        RESULTS["qc"],
    output:
        RESULTS["model"],
    log:
        "logs/pretrain/{sample}.log",
    benchmark:
        "results/benchmarks/pretrain/{sample}.tsv"
    params:
        method=config["enhance"]["method"],
        model=config["model"],
        train=config["train"],
        scratch=pretrain_scratch,
    threads: res("pretrain", "threads")
    resources:
        gpu=1,
        mem_mb=res("pretrain", "mem_mb"),
        runtime=res("pretrain", "runtime"),
    conda:
        GPU_ENV
    script:
        "../scripts/pretrain.py"
