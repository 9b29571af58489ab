"""Rule results_page: one Markdown page with the run's tables and figures beside the paper's."""

from pathlib import Path

from _common import run


def main(snakemake, log):
    import yaml

    from stentrans.report import page as results
    from stentrans.report.run import describe_run, workflow_command

    p = snakemake.params
    cfg = p.page
    info = yaml.safe_load(Path(snakemake.input.run_info).read_text())
    out_md = Path(snakemake.output.md)
    fig_dir = Path(snakemake.output.figures)
    fig_dir.mkdir(parents=True, exist_ok=True)
    text = results.render(
        p.files,
        title=cfg["title"],
        benchmarks=snakemake.input.benchmarks,
        paper_medians=p.paper_medians,
        paper_table1=cfg["paper_table1"],
        paper_new_terms=cfg["paper_new_terms"],
        run_info=describe_run(info, p.settings, workflow_command(), list(p.files), fallback=cfg["command"]),
        fig_dir=fig_dir,
        page_dir=out_md.parent,
        max_png_bytes=cfg["max_png_kb"] * 1000,
        notes=cfg["notes"],
        realtruth_doc=getattr(snakemake.input, "realtruth_doc", None),
        stand_ins=cfg.get("stand_ins"),
    )
    results.write(out_md, text)
    # the HTML report shows an HTML item in place (a .md one opens nothing): the same page, figures embedded
    out_html = Path(snakemake.output.html)
    results.write(out_html, results.to_html(text, page_dir=out_md.parent, title=cfg["title"]))
    log.info("-> %s and %s (%d figures)", out_md, out_html, len(list(fig_dir.iterdir())))


run(snakemake, main)  # noqa: F821
