rule enhance:
    input:
        data="results/{sample}/qc.h5ad",
        model="results/{sample}/model.pt",
    output:
        "results/{sample}/enhanced.h5ad",
    log:
        "logs/enhance/{sample}.log",
    benchmark:
        "results/benchmarks/enhance/{sample}.tsv"
    conda:
        GPU_ENV
    threads: res("enhance", "threads")
    resources:
        gpu=1,
        mem_mb=res("enhance", "mem_mb"),
        runtime=res("enhance", "runtime"),
    params:
        chunk=config["enhance"]["chunk"],
        device=config["train"]["device"],
    script:
        "../scripts/enhance.py"
