"""Rule summarize: median PCC of every method on every sample, one table and figure."""

from _common import run


def main(snakemake, log):
    from stentrans import pl
    from stentrans.report.summary import median_pcc_table, write_median_pcc

    p = snakemake.params
    out = snakemake.output
    table = median_pcc_table(dict(zip(p.samples, snakemake.input)), p.paper_medians)
    write_median_pcc(table, tsv=out.tsv, md=out.md, paper_medians=p.paper_medians)
    pl.median_pcc_bars(table, paper_medians=p.paper_medians, save=out.png)
    log.info("%d rows -> %s", len(table), out.tsv)


run(snakemake, main)  # noqa: F821
