"""Rule patterns: Sepal ranking, pattern families, enrichment; measured vs enhanced."""

from pathlib import Path

from _common import run


def main(snakemake, log):
    import anndata as ad

    import stentrans

    p = snakemake.params
    i = snakemake.input
    measured = stentrans.read(i.measured)  # what the enhance rule enhanced (the control refits on it)
    adata = stentrans.pp.qc(measured, min_spot_fraction=p.min_spot_fraction)
    enhanced = ad.read_h5ad(i.enhanced)
    enhanced.uns["stentrans"].setdefault("source", str(i.enhanced))  # errors name the file
    # pp.qc keeps raw counts in layers["counts"] (X may be normalised);
    # the enhanced X is on the scale the model was trained on (counts by default)
    layer = "counts" if "counts" in adata.layers else None
    outdir = Path(snakemake.output.summary).parent
    # Fig. 4's control: new terms after enhancement at further seeds and after linear interpolation of the same spots
    st = enhanced.uns["stentrans"]
    seeds = [int(st.get("seed", 0)) + k for k in range(1, p.seeds)]
    settings = dict(p.train) if st.get("method") == "stentrans" else {}
    controls = stentrans.tl.control_enhancements(measured, st.get("method", "robust"), seeds, control=p.control, device=p.device, **settings)
    res = stentrans.tl.run_patterns(adata, enhanced=enhanced, gmt=i.gmt, top=p.top, outdir=outdir, species=p.species, layer=layer, device=p.device, controls=controls)
    log.info("top-10 (original): %s", ", ".join(res["summary"]["top10"]["original"]))
    log.info("top-10 (enhanced): %s", ", ".join(res["summary"]["top10"]["enhanced"]))
    for data, c in res["summary"].get("new_terms_control", {}).items():
        log.info("new terms (%s, seeds %s): %s", data, c["seeds"], c["overall"])
    log.info("%d files -> %s", len(res["files"]), outdir)


run(snakemake, main)  # noqa: F821
