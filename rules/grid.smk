# The lattice mapping of each sample, the stage between QC and enhancement:
# where the spots sit on the dense grid, what the down-sampling D keeps and
# the positions H(M) the enhancement fills (checked by the enhance rule).


rule grid:
    input:
        RESULTS["qc"],
    output:
        mapping=report(
            RESULTS["grid"],
            caption="../report/grid_mapping.rst",
            category="Lattice mapping",
            subcategory="{sample}",
        ),
        figure=report(
            RESULTS["grid_figure"],
            caption="../report/grid_figure.rst",
            category="Lattice mapping",
            subcategory="{sample}",
        ),
    log:
        "logs/grid/{sample}.log",
    benchmark:
        "results/benchmarks/grid/{sample}.tsv"
    params:
        fill_lost=config["enhance"]["fill_lost"],
    threads: 1
    resources:
        mem_mb=res("default", "mem_mb"),
        runtime=res("default", "runtime"),
    conda:
        CPU_ENV
    script:
        "../scripts/grid.py"
