"""Rule benchmarks: every job's run time and memory (Snakemake benchmark files) in one table."""

from pathlib import Path

from _common import run


def main(snakemake, log):
    from stentrans.report.run import write_benchmark_table

    # benchmark files are <folder>/<rule>/<job>.tsv (rules/*.smk); this rule's own is left out
    files = {(f.parent.name, f.stem): f for f in sorted(Path(snakemake.params.folder).glob("*/*.tsv")) if f.parent.name != snakemake.rule}
    table = write_benchmark_table(files, snakemake.output[0])
    log.info("%d benchmark rows -> %s", len(table), snakemake.output[0])


run(snakemake, main)  # noqa: F821
