# enhance.method: robust (default) and the baselines are fitted inside the enhance
# job, no pretrain step; network methods (stentrans ...) enhance with the
# checkpoint of the pretrain rule.


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
        method=config["enhance"]["method"],
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
