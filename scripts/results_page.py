"""Rule results_page: one Markdown page with the run's tables and figures beside the paper's."""

from pathlib import Path

from _common import start

log = start(snakemake)  # noqa: F821

import yaml  # noqa: E402

from stentrans import resultspage  # noqa: E402

p = snakemake.params  # noqa: F821
page = p.page
info = yaml.safe_load(Path(snakemake.input.run_info).read_text())  # noqa: F821
ev, tr, md = p.settings["evaluate"], p.settings["train"], p.settings["model"]
cuda = info.get("cuda", {})
run = {
    "command": f"`{page['command']}`",
    "samples": ", ".join(p.samples),
    "evaluation": f"protocols {', '.join(ev['protocols'])}; methods {', '.join(ev['methods'])}; {ev['seeds']} seeds; stEnTrans {ev['epochs']} epochs (DIST {ev['dist_epochs'] if ev['dist_epochs'] is not None else 'its default 200'})",
    "model": f"patch size {md['patch_size']}, {md['depth']} blocks, {md['heads']} heads; batch {tr['batch_size']} genes, lr {tr['lr']}; enhancement variant {p.settings['enhance']['variant']}",
    "software": f"stentrans {info.get('stentrans')}, Python {info.get('python')}, torch {info.get('packages', {}).get('torch')}, snakemake {info.get('packages', {}).get('snakemake')}",
    "machine": f"{info.get('platform')}; CUDA {'device ' + cuda['device'] if cuda.get('available') else 'not available (CPU)'}",
}
out_md = Path(snakemake.output.md)  # noqa: F821
fig_dir = Path(snakemake.output.figures)  # noqa: F821
fig_dir.mkdir(parents=True, exist_ok=True)
text = resultspage.render(
    "results",
    p.samples,
    title=page["title"],
    paper_medians=p.paper_medians,
    paper_table1=page["paper_table1"],
    paper_new_terms=page["paper_new_terms"],
    run_info=run,
    fig_dir=fig_dir,
    page_dir=out_md.parent,
    max_png_bytes=page["max_png_kb"] * 1000,
    notes=page["notes"],
)
resultspage.write(out_md, text)
log.info("-> %s (%d figures)", out_md, len(list(fig_dir.iterdir())))
