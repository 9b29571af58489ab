"""Rule run_info: software versions, device and the run's configuration."""

from _common import run


def main(snakemake, log):
    from stentrans.report.run import run_info, workflow_command, write_run_info

    info = run_info(command=workflow_command(), config=snakemake.params.config, samples=snakemake.params.samples)
    write_run_info(info, snakemake.output[0])
    log.info("-> %s", snakemake.output[0])


run(snakemake, main)  # noqa: F821
