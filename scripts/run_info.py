"""Rule run_info: software versions, device and the run's configuration."""

from _common import run


def main(snakemake, log):
    from stentrans.report.run import run_info, write_run_info

    write_run_info(run_info(config=snakemake.params.config, samples=snakemake.params.samples), snakemake.output[0])
    log.info("-> %s", snakemake.output[0])


run(snakemake, main)  # noqa: F821
