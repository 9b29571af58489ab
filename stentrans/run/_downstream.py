"""``downstream_to``: score what clustering and spatially variable genes see on each output against the truth, and write the table (rule ``downstream``)."""

from __future__ import annotations

import logging

log = logging.getLogger("stentrans.downstream")


def downstream_to(adata, outdir, *, truth=None, outputs=None, max_genes: int | None = None, settings: dict | None = None, dataset: str | None = None, device="auto") -> dict:
    """Enhance ``adata`` with each output, score it downstream against the truth at every position, write ``downstream.tsv``/``.md`` to ``outdir``.

    Parameters
    ----------
    adata
        Measured AnnData (after QC): finer data's pseudo-spots with
        ``truth``, or a simulated slide (its ``uns["truth"]``).
    outdir
        Output folder (checked before any work).
    truth
        Finer data's truth (AnnData or path, ``stentrans bin --truth``); None:
        the simulator's (:func:`stentrans.tl.downstream_reference`).
    outputs
        Names for :func:`stentrans.tl.downstream_outputs`, each refitted here
        with its defaults on the QC'd spots (default
        :data:`stentrans.tl.DOWNSTREAM_OUTPUTS`: the default method, Linear,
        NN and "measured only").
    max_genes
        At most this many genes, the most variable (log1p variance); None: every gene.
    settings
        ``{method: settings}`` of the outputs that are methods.
    dataset
        The data set's name in the table.

    Leiden domains need the ``leiden`` extra and Moran's I the ``squidpy``
    extra; without them those columns are left out, with a warning.

    Returns
    -------
    :func:`stentrans.tl.downstream`'s result, with ``files``: the written paths.
    """
    from .. import pl, tl
    from .._utils import check_output
    from ..report.downstream import write_downstream

    out = check_output(outdir, folder=True, field="output folder")
    ref = tl.downstream_reference(adata, truth=truth)
    # measured: the positions of the spots given (a spot QC removed is a position the outputs predict)
    ref.obs["is_imputed"] = tl.match_positions(ref, adata) < 0
    have = set(ref.var_names)
    genes = [g for g in adata.var_names if g in have]
    if max_genes is not None and len(genes) > max_genes:
        genes = pl.top_variance_genes(adata[:, genes], int(max_genes))
    log.info("downstream: %d genes, outputs %s", len(genes), ", ".join(outputs or tl.DOWNSTREAM_OUTPUTS))
    a = adata[:, genes].copy()
    outs = tl.downstream_outputs(a, ref, outputs=tuple(outputs or tl.DOWNSTREAM_OUTPUTS), settings=settings, device=device)
    import importlib.util

    have = {m: importlib.util.find_spec(m) is not None for m in ("igraph", "leidenalg", "squidpy")}
    methods = tl.DOMAIN_METHODS if have["igraph"] and have["leidenalg"] else ("kmeans",)
    if methods == ("kmeans",):
        log.warning("Leiden domains left out: pip install 'stentrans[leiden]'")
    if not have["squidpy"]:
        log.warning("spatially variable genes (Moran's I) left out: pip install 'stentrans[squidpy]'")
    res = tl.downstream(ref[:, genes].copy(), outs, go=False, methods=methods, svg=have["squidpy"])
    res["files"] = write_downstream(res, out, dataset=dataset)
    return res
