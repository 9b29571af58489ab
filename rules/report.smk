import shlex
import sys

# The command line that started this run, for run_info and the results page
# (stentrans.report.run.COMMAND_ENV): only Snakemake's main process parses the
# Snakefile with the user's argv (jobs re-parse it as `python -m snakemake
# --target-jobs ...`), and the jobs it starts inherit the variable. The run
# sets it rather than needs it, so it is no `envvars:` entry. Started through
# the Python API rather than the snakemake command, the page says it is not known.
_COMMAND_ENV = "STENTRANS_WORKFLOW_COMMAND"
if getattr(workflow, "is_main_process", _COMMAND_ENV not in os.environ):
    _argv0 = os.path.normpath(sys.argv[0])
    if os.path.basename(_argv0) == "snakemake" or _argv0.endswith(
        os.path.join("snakemake", "__main__.py")
    ):
        os.environ[_COMMAND_ENV] = shlex.join(["snakemake", *sys.argv[1:]])
    else:
        os.environ.pop(_COMMAND_ENV, None)


rule benchmarks:
    input:
        sample_outputs(),
    output:
        report(
            SUMMARY["benchmarks"],
            caption="../report/benchmarks.rst",
            category="Run",
        ),
    log:
        "logs/benchmarks/benchmarks.log",
    benchmark:
        "results/benchmarks/benchmarks/benchmarks.tsv"
    params:
        folder=BENCHMARKS,
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    localrule: True
    conda:
        CPU_ENV
    script:
        "../scripts/benchmarks.py"


rule run_info:
    output:
        report(
            SUMMARY["run_info"],
            caption="../report/run_info.rst",
            category="Run",
        ),
    log:
        "logs/run_info/run_info.log",
    benchmark:
        "results/benchmarks/run_info/run_info.tsv"
    params:
        config=config,
        samples=samples.astype(str).to_dict(orient="records"),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        GPU_ENV
    script:
        "../scripts/run_info.py"


rule results_page:
    input:
        unpack(results_page_inputs),
    output:
        md=f"{PAGE_DIR}/results.md",
        html=report(
            f"{PAGE_DIR}/results.html",
            caption="../report/results_page.rst",
            category="Summary",
        ),
        figures=directory(f"{PAGE_DIR}/results_files"),
    log:
        "logs/results_page/results_page.log",
    benchmark:
        "results/benchmarks/results_page/results_page.tsv"
    params:
        files=page_files,
        page=config["results_page"],
        paper_medians=config["paper_medians"],
        settings=lambda wildcards: {
            "evaluate": config["evaluate"],
            "model": config["model"],
            "train": config["train"],
            "enhance": config["enhance"],
        },
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    localrule: True
    conda:
        CPU_ENV
    script:
        "../scripts/results_page.py"
