# robust (default): fitted inside the enhance job, no pretrain step; paper: enhances
# with the checkpoint of the pretrain rule.


rule enhance:
    input:
        unpack(enhance_inputs),
    output:
        RESULTS["enhanced"],
    log:
        "logs/enhance/{sample}.log",
    benchmark:
        "results/benchmarks/enhance/{sample}.tsv"
    params:
        chunk=config["enhance"]["chunk"],
        variant=config["enhance"]["variant"],
        robust_net=config["enhance"]["robust_net"],
        fill_lost=config["enhance"]["fill_lost"],
        seed=config["train"]["seed"],
        device=config["train"]["device"],
    threads: res("enhance", "threads")
    resources:
        gpu=1,
        mem_mb=res("enhance", "mem_mb"),
        runtime=res("enhance", "runtime"),
    conda:
        GPU_ENV
    script:
        "../scripts/enhance.py"
