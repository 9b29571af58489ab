"""``evaluate_to``: score the methods under the protocols and write the tables and figures (command ``evaluate``, rules ``evaluate`` and ``ablation``)."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("stentrans.evaluate")


def _protocols(adata, protocols, truth, add_truth: bool) -> list[str]:
    """The protocols asked for, and with ``add_truth`` every protocol whose extra data (``needs``) this data set has."""
    from ..tl import PROTOCOLS

    out = [p.strip() for p in protocols.split(",")] if isinstance(protocols, str) else list(protocols)
    if add_truth:
        have = {"simulation": isinstance(adata.uns.get("truth"), dict), "finer": truth is not None}
        out += [name for name, p in PROTOCOLS.items() if p.needs is not None and have.get(p.needs, False)]
    return list(dict.fromkeys(out))


def _genes(adata, panel, n_panel: int, max_genes: int | None):
    """The genes of an evaluation as the command line and the workflow choose them: ``(panel, genes, score_genes)`` of :func:`stentrans.tl.evaluate`.

    Scored: the genes detected in more than 10 % of the spots
    (:func:`stentrans.pp.scored_genes`) and the panel's; fitted: every gene
    of ``adata`` (``genes`` None), as ``stentrans enhance`` fits them. The
    panel (``panel``, else the ``n_panel`` scored genes of highest variance)
    must be among ``adata``'s genes. ``max_genes``: at most this many genes
    (the panel's and the most variable scored ones) are fitted and scored.
    """
    from .. import pl
    from .._errors import InputError
    from ..grid import source_of
    from ..pp import scored_genes

    scored = scored_genes(adata)
    panel = [str(g).strip() for g in (panel or []) if str(g).strip()] or pl.top_variance_genes(adata, n_panel, among=scored or None)
    missing = [g for g in panel if g not in adata.var_names]
    if missing:
        raise InputError(source_of(adata), "panel genes", f"not among the {adata.n_vars} genes after QC: {', '.join(missing)}")
    score = list(dict.fromkeys([*scored, *panel]))
    genes = None
    if max_genes is not None and len(score) > max_genes:
        top = pl.top_variance_genes(adata, max_genes, among=scored or None)
        genes = score = list(dict.fromkeys([*panel, *top]))[: max(max_genes, len(panel))]
        log.info("max_genes: %d of %d genes fitted and scored (the most variable, and the panel's)", len(genes), adata.n_vars)
    else:
        log.info("scoring %d of %d genes (detected in more than 10 %% of the spots, and the panel's); every method is fitted on all %d", len(score), adata.n_vars, adata.n_vars)
    return panel, genes, score


def evaluate_to(
    adata,
    outdir,
    *,
    protocols=("nested",),
    methods=None,
    seeds=3,
    settings: dict | None = None,
    truth=None,
    add_truth: bool = False,
    panel_genes=None,
    n_panel_genes: int = 4,
    max_genes: int | None = None,
    ablation: bool = False,
    heldout_fraction: float | None = None,
    dataset: str | None = None,
    device="auto",
    progress: bool = True,
) -> dict:
    """Score the methods under the protocols (:func:`stentrans.tl.evaluate`) and write the results to ``outdir``.

    Writes ``per_gene.tsv``, ``summary.tsv``, ``summary.md`` (and
    ``table1``, ``realtruth``, ``coverage`` tables where they apply;
    :func:`stentrans.report.write_results`), ``boxplot.png``/``.pdf`` and
    ``gene_panels.png``/``.pdf``: the panel genes measured, down-sampled and
    predicted by every method under the default protocol where it ran, else
    the first protocol (in the protocol table's order) that predicts the
    measured grid; without one, the panels show the measured data and its
    down-sampled input only.

    Parameters
    ----------
    adata
        Measured AnnData (:func:`stentrans.read`, usually after :func:`stentrans.pp.qc`).
    outdir
        Output folder (checked before any work).
    protocols, methods, seeds, settings, truth, ablation, heldout_fraction, dataset, device, progress
        As :func:`stentrans.tl.evaluate` (``protocols`` its ``protocol``;
        ``methods`` None: its default).
    add_truth
        Also run every protocol whose extra data this data set has
        (``Protocol.needs``): ``truth`` for simulated data, ``realtruth``
        when ``truth`` (of finer data) is given.
    panel_genes, n_panel_genes
        Genes of the gene panels (each must be in ``adata``); default the
        ``n_panel_genes`` top-variance genes among those scored.
    max_genes
        Fit and score at most this many genes: the most variable (log1p
        variance) and the panel's; None: every method is fitted on every
        gene of ``adata`` (as ``stentrans enhance`` fits them) and the genes
        detected in more than 10 % of the spots, and the panel's, are scored
        (:func:`stentrans.pp.scored_genes`).

    Returns
    -------
    What :func:`stentrans.tl.evaluate` returns, with ``files``: the written paths by kind.
    """
    from .. import pl, tl
    from .._utils import check_output
    from ..report import format_pm, write_results

    out = check_output(outdir, folder=True, field="output folder")
    # fitted: every gene QC kept (as enhance fits them); scored: those detected in more than 10 % of the spots, and the panel's
    panel, genes, score = _genes(adata, panel_genes, n_panel_genes, max_genes)
    kw = {} if methods is None else {"methods": methods}
    if heldout_fraction is not None:
        kw["heldout_fraction"] = heldout_fraction
    seeds = list(range(int(seeds))) if isinstance(seeds, int) else [int(s) for s in seeds]
    res = tl.evaluate(
        adata,
        protocol=_protocols(adata, protocols, truth, add_truth),
        seeds=seeds,
        settings=settings,
        ablation=ablation,
        device=device,
        progress=progress,
        genes=genes,
        keep_genes=panel,
        dataset=dataset,
        truth=truth,
        score_genes=score,
        **kw,
    )
    files = dict(write_results(res, out, ablation=ablation))
    pl.pcc_boxplots(res["per_gene"], save=out / "boxplot")
    files["boxplot"] = out / "boxplot.png"
    default = tl.EvaluateConfig().protocol
    proto = next((p for p in dict.fromkeys([default, *tl.PROTOCOLS]) if p in res["maps"]), None)
    if proto is None:
        log.info("no protocol that predicts the measured grid ran: the gene panels show the measured data and its down-sampled input only")
        title = f"{dataset}: measured and down-sampled" if dataset else None
    else:
        title = f"{dataset}: protocol {proto}, seed {seeds[0]}" if dataset else f"protocol {proto}, seed {seeds[0]}"
    pl.gene_panels(adata, panel, res["maps"].get(proto, {}), title=title, save=out / "gene_panels")
    files["gene_panels"] = out / "gene_panels.png"
    for _, row in res["summary"].iterrows():
        log.info("%-22s %-18s median PCC %s", row["protocol"], row["method"], format_pm(row["mean"], row["sd"]))
    for _, row in res["coverage_summary"].iterrows():
        log.info("%-22s %-18s interval coverage %.3f (genes %.2f-%.2f), width %.2f of trivial", row["protocol"], row["method"], row["coverage"], row["coverage_p5"], row["coverage_p95"], row["width"])
    log.info("-> %s", Path(out))
    res["files"] = files
    return res
