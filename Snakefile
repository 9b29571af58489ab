from snakemake.utils import min_version, validate

min_version("8.0")


configfile: "config.yaml"


validate(config, "schemas/config.schema.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/download.smk"
include: "rules/qc.smk"
include: "rules/grid.smk"
include: "rules/pretrain.smk"
include: "rules/enhance.smk"
include: "rules/evaluate.smk"
include: "rules/plots.smk"
include: "rules/patterns.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
    localrule: True
