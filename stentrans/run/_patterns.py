"""``patterns_to``: paper Fig. 4's analysis and its control, written to a folder (command ``patterns``, rule ``patterns``)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

log = logging.getLogger("stentrans.patterns")

#: result tables of :func:`stentrans.tl.patterns` and the files they are written to
TABLE_FILES = {
    "ranking": "ranking.tsv",
    "families_original": "families_original.tsv",
    "families_enhanced": "families_enhanced.tsv",
    "pairs": "family_pairs.tsv",
    "enrichment_original": "enrichment_original.tsv",
    "enrichment_enhanced": "enrichment_enhanced.tsv",
    "new_terms": "new_terms.tsv",
    "new_terms_control": "new_terms_control.tsv",
}
#: figures: file stem -> what they show
FIGURES = {"fig4b_ranked_genes": "top Sepal genes, measured vs enhanced", "fig4c_family_summary": "families and their terms", "fig4d_new_terms": "terms found only after enhancement"}


def _refit_settings(enhanced) -> dict:
    """Settings of the enhanced file's method as it was fitted (network methods: the recorded model and training settings)."""
    from ..models import registry

    st = enhanced.uns.get("stentrans", {})
    method = st.get("method", registry.DEFAULT_METHOD)
    if registry.get(method).kind != "network":
        return {}
    settings = dict(st.get("model_config", {}))
    train = {k: v for k, v in dict(st.get("train_config", {})).items() if k not in ("seed", "checkpoint_every")}
    if "betas" in train:
        train["betas"] = tuple(train["betas"])
    settings.update(train)
    return settings


def patterns_to(
    adata,
    outdir,
    *,
    enhanced=None,
    gmt=None,
    measured=None,
    plots: bool = True,
    **settings,
) -> dict:
    """Sepal ranking, pattern families, enrichment and new terms (:func:`stentrans.tl.patterns`), written to ``outdir``.

    Parameters
    ----------
    adata
        Measured data, filtered (:func:`stentrans.pp.qc`); its raw counts
        are read from ``layers["counts"]`` where present (``pp.qc`` keeps
        them there; X may be normalised), the enhanced X as it is (on the
        scale its model used).
    outdir
        Output folder (checked before any work).
    enhanced
        The enhanced AnnData (:func:`stentrans.tl.enhance`).
    gmt
        Gene sets (a GMT path or ``{term: genes}``); read first, so a bad
        file stops before any work.
    measured
        The data the enhancement was fitted on, fitted again for the
        control (default ``adata``).
    plots
        Draw the figures ``fig4b_ranked_genes``, ``fig4c_family_summary``
        and ``fig4d_new_terms`` (PNG + PDF).
    **settings
        Fields of :class:`~stentrans.tl.PatternsConfig` (``top``,
        ``species``, ``seed``, ``n_families``, ``device``, ``cutoff``;
        ``seeds`` and ``control``: Fig. 4's control, with ``enhanced`` and
        ``gmt``: the enhanced file's method fitted again at its seed + 1 ..
        + ``seeds`` - 1, with the settings it was fitted with, and the
        baseline ``control`` (``"none"``: left out) enhancing the same
        spots; their new terms go to ``new_terms_control.tsv``).

    Writes the tables of :data:`TABLE_FILES` that were computed,
    ``summary.json`` and the figures, each atomically, once everything is
    computed (an error leaves no partial results). Returns what
    :func:`stentrans.tl.patterns` returns, with ``files``: the written paths.
    """
    from .. import pl, tl
    from .._utils import check_output, write_json, write_tsv

    t0 = time.perf_counter()
    out = check_output(outdir, folder=True, field="output folder")
    cfg = tl.PatternsConfig(**settings)
    sets = tl.read_gmt(gmt) if isinstance(gmt, (str, Path)) else gmt
    layer = "counts" if "counts" in adata.layers else None
    controls = None
    if enhanced is not None and sets is not None and (cfg.seeds > 1 or cfg.control != "none"):
        st = enhanced.uns.get("stentrans", {})
        seeds = [int(st.get("seed", 0)) + k for k in range(1, cfg.seeds)]
        controls = tl.control_enhancements(measured if measured is not None else adata, st.get("method", "robust"), seeds, control=cfg.control, device=cfg.device, **_refit_settings(enhanced))
    kw = {f: getattr(cfg, f) for f in ("top", "species", "seed", "n_families", "device", "cutoff")}
    res = tl.patterns(adata, enhanced=enhanced, gmt=sets, layer=layer, controls=controls, **kw)
    files: list[str] = []
    out.mkdir(parents=True, exist_ok=True)
    for key, name in TABLE_FILES.items():
        if res.get(key) is not None:
            files.append(str(write_tsv(res[key], out / name)))
    secs = res["summary"]["seconds"]
    if plots:
        t = time.perf_counter()
        rk_o, rk_e = res["ranking_original"], res["ranking_enhanced"]
        pl.ranked_genes(adata, rk_o, enhanced=enhanced, ranking_enhanced=rk_e, layer=layer, save=out / "fig4b_ranked_genes")
        pl.family_summary(res["families_original"], fam_enh=res["families_enhanced"], enr_orig=res["enrichment_original"], enr_enh=res["enrichment_enhanced"], pairs=res["pairs"], save=out / "fig4c_family_summary")
        stems = ["fig4b_ranked_genes", "fig4c_family_summary"]
        if res["new_terms"] is not None:
            pl.new_terms(res["new_terms"], save=out / "fig4d_new_terms")
            stems.append("fig4d_new_terms")
        files += [str(out / f"{stem}.{fmt}") for stem in stems for fmt in ("png", "pdf")]
        secs["plots"] = time.perf_counter() - t
    secs["total"] = time.perf_counter() - t0
    files.append(str(write_json(res["summary"], out / "summary.json")))
    s = res["summary"]
    log.info("top-10 (original): %s", ", ".join(s["top10"]["original"]))
    if "enhanced" in s["top10"]:
        log.info("top-10 (enhanced): %s", ", ".join(s["top10"]["enhanced"]))
    for data, c in s.get("new_terms_control", {}).items():
        log.info("new terms (%s, seeds %s): %s", data, c["seeds"], c["overall"])
    log.info("patterns: wrote %d files to %s in %.1f s", len(files), out, secs["total"])
    res["files"] = files
    return res
