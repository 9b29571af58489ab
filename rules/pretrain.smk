rule pretrain:
    input:
        "results/{sample}/qc.h5ad",
    output:
        "results/{sample}/model.pt",
    log:
        "logs/pretrain/{sample}.log",
    benchmark:
        "results/benchmarks/pretrain/{sample}.tsv"
    conda:
        GPU_ENV
    threads: res("pretrain", "threads")
    resources:
        gpu=1,
        mem_mb=res("pretrain", "mem_mb"),
        runtime=res("pretrain", "runtime"),
    params:
        model=config["model"],
        train=config["train"],
        scratch=pretrain_scratch,
    script:
        "../scripts/pretrain.py"
