"""Spatial patterns (paper Fig. 4): :func:`patterns`, and the enhanced data of its control.

The analysis follows the stEnTrans paper, which follows Sepal (Andersson &
Lundeberg 2021): rank genes by diffusion time (:func:`~stentrans.tl.sepal_scores`)
on the measured and on the enhanced data, take the top genes, group them into
pattern families (:mod:`stentrans.tl._families`), test each family for GO
Biological Process enrichment and list the terms found only after
enhancement (:mod:`stentrans.tl._enrich`). The tables and figures are
written by :func:`stentrans.run.patterns_to` (figures: :mod:`stentrans.pl`).
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np
import pandas as pd

from .._errors import InputError
from .._utils import jsonable
from ..grid import source_of
from ..metrics import spearman
from ._enrich import enrich_families, family_counts, new_terms, read_gmt
from ._families import family_representative, pair_families, pattern_families
from ._patterns_config import PatternsConfig
from ._sepal import sepal_scores

log = logging.getLogger("stentrans.patterns")

__all__ = ["patterns", "coord_index", "control_enhancements", "new_terms_control"]

_P = PatternsConfig()


def coord_index(adata) -> pd.Index:
    """Spot labels by lattice position (``"row_col"``; the same for the measured spots of enhanced data)."""
    r = np.asarray(adata.obs["array_row"], dtype=float)
    c = np.asarray(adata.obs["array_col"], dtype=float)
    return pd.Index([f"{a:g}_{b:g}" for a, b in zip(r, c)])


def control_enhancements(adata, method: str, seeds, *, control: str | None = "linear", device="auto", **settings) -> dict:
    """Enhanced data for the Fig. 4 control: ``method`` at each of ``seeds``, and ``control`` (e.g. linear interpolation) of the same spots.

    Returns ``{"enhanced": [(seed, AnnData), ...], control: [(0, AnnData)]}``
    (no ``control`` entry when it is None or ``"none"``); ``settings`` go to
    :func:`stentrans.tl.train` of ``method``.
    """
    from ._enhance import enhance
    from ._train import train

    out = {"enhanced": []}
    for s in seeds:
        model = train(adata, method=method, seed=int(s), device=device, progress=False, **settings)
        out["enhanced"].append((int(s), enhance(adata, model=model, device=device, progress=False)))
    if control and control != "none":
        out[control] = [(0, enhance(adata, model=train(adata, method=control, device=device, progress=False), device=device, progress=False))]
    return out


def _n_new(new: pd.DataFrame) -> dict:
    """Numbers of new terms of a :func:`~stentrans.tl.new_terms` table: ``{"overall", "paired"}``."""
    return {scope: int((new["scope"] == scope).sum()) for scope in ("overall", "paired")}


def _control_row(label: str, seed: int, enhanced, families: pd.DataFrame, new: pd.DataFrame) -> dict:
    """One row of the new-terms control table."""
    n = _n_new(new)
    return {"data": label, "seed": int(seed), "n_spots": int(enhanced.n_obs), "n_families": int(families.attrs.get("n_families", families["family"].nunique())), "new_overall": n["overall"], "new_paired": n["paired"]}


def new_terms_control(adata, fam_o, rep_o, enr_o, runs: dict, sets, *, top: int, species: str, seed: int, n_families=None, cutoff: float = 0.05, device="auto") -> pd.DataFrame:
    """GO:BP terms found only after enhancement, per enhanced data set of ``runs`` (``{label: [(seed, AnnData), ...]}``).

    The control of the paper's Fig. 4 claim: the same ranking, families and
    enrichment on linear interpolation of the same spots show how many
    "new" terms a denser lattice gives without any model. ``fam_o``,
    ``rep_o`` (indexed by :func:`coord_index`) and ``enr_o``: the original
    data's families, their representative maps and enrichment. Columns
    ``data, seed, n_spots, n_families, new_overall, new_paired``.
    """
    rows = []
    for label, items in runs.items():
        for s, enh in items:
            shared = [g for g in adata.var_names if g in set(enh.var_names)]
            rk = sepal_scores(enh, genes=shared, device=device)
            fam = pattern_families(enh, rk, top=top, n_families=n_families, seed=seed)
            rep_e = family_representative(enh, fam)
            rep_e.index = coord_index(enh)
            pairs = pair_families(fam_o, fam, rep_orig=rep_o, rep_enh=rep_e)
            enr = enrich_families(fam, sets, background=list(rk.index), species=species, cutoff=cutoff)
            rows.append(_control_row(label, s, enh, fam, new_terms(enr_o, enr, pairs=pairs)))
            log.info("new-terms control: %s seed %d: %d new terms overall, %d paired", label, s, rows[-1]["new_overall"], rows[-1]["new_paired"])
    return pd.DataFrame(rows, columns=["data", "seed", "n_spots", "n_families", "new_overall", "new_paired"])


def patterns(
    adata,
    *,
    enhanced=None,
    gmt=None,
    top: int = _P.top,
    species: str = _P.species,
    seed: int = _P.seed,
    layer: str | None = None,
    enhanced_layer: str | None = None,
    n_families: int | None = _P.n_families,
    device=_P.device,
    cutoff: float = _P.cutoff,
    controls: dict | None = None,
) -> dict:
    """Paper Fig. 4's analysis: Sepal ranking, families, enrichment, new terms (and their control).

    ``adata``: measured counts, already filtered (e.g. :func:`stentrans.pp.qc`,
    genes detected in > 10 % of spots); ``enhanced``: the enhanced AnnData
    (genes shared with ``adata`` are used); ``gmt``: gene sets (a GMT path
    or ``{term: genes}``; without them no enrichment). The settings and their
    defaults are the fields of :class:`~stentrans.tl.PatternsConfig`;
    ``controls`` (e.g. from :func:`control_enhancements`): further enhanced
    data sets whose new terms are counted the same way (other seeds, linear
    interpolation of the same spots; :func:`new_terms_control`). The gene
    sets are read first, so a bad GMT stops before anything is computed.
    Nothing is written (:func:`stentrans.run.patterns_to` writes the tables,
    ``summary.json`` and the figures).

    Returns
    -------
    dict of DataFrames (None where not computed): ``ranking`` (gene,
    diffusion_time, converged, rank_original, diffusion_time_enhanced,
    rank_enhanced), ``ranking_original`` / ``ranking_enhanced``
    (:func:`sepal_scores`), ``families_original`` / ``families_enhanced``,
    ``pairs``, ``enrichment_original`` / ``enrichment_enhanced``,
    ``new_terms``, ``new_terms_control`` (the ``enhanced`` data first),
    and ``summary``: top-10 genes, converged fractions, family sizes,
    significant terms per family, unmapped genes, number of new terms,
    seconds per stage, parameters.
    """
    t_all = time.perf_counter()
    secs: dict[str, float] = {}
    # the gene sets first: a bad GMT stops the run before anything is computed
    sets = (read_gmt(gmt) if isinstance(gmt, (str, os.PathLike)) else gmt) if gmt is not None else None

    t = time.perf_counter()
    rk_o = sepal_scores(adata, layer=layer, device=device)
    secs["sepal_original"] = time.perf_counter() - t
    rk_e = None
    if enhanced is not None:
        shared = [g for g in adata.var_names if g in set(enhanced.var_names)]
        if not shared:
            raise InputError(source_of(enhanced), "var_names", "no genes shared with the measured data")
        t = time.perf_counter()
        rk_e = sepal_scores(enhanced, genes=shared, layer=enhanced_layer, device=device)
        secs["sepal_enhanced"] = time.perf_counter() - t

    ranking = pd.DataFrame({"gene": rk_o.index, "diffusion_time": rk_o["diffusion_time"].to_numpy(), "converged": rk_o["converged"].to_numpy(), "rank_original": rk_o["rank"].to_numpy()})
    if rk_e is not None:
        ranking["diffusion_time_enhanced"] = rk_e["diffusion_time"].reindex(ranking["gene"]).to_numpy()
        ranking["rank_enhanced"] = rk_e["rank"].reindex(ranking["gene"]).astype("Int64").to_numpy()

    t = time.perf_counter()
    fam_o = pattern_families(adata, rk_o, top=top, n_families=n_families, seed=seed, layer=layer)
    fam_e = pairs = rep_o = None
    if rk_e is not None:
        fam_e = pattern_families(enhanced, rk_e, top=top, n_families=n_families, seed=seed, layer=enhanced_layer)
        rep_o = family_representative(adata, fam_o, layer=layer)
        rep_e = family_representative(enhanced, fam_e, layer=enhanced_layer)
        rep_o.index = coord_index(adata)
        rep_e.index = coord_index(enhanced)
        pairs = pair_families(fam_o, fam_e, rep_orig=rep_o, rep_enh=rep_e)
    secs["families"] = time.perf_counter() - t

    enr_o = enr_e = new = control = None
    if sets is not None:
        t = time.perf_counter()
        enr_o = enrich_families(fam_o, sets, background=list(rk_o.index), species=species, cutoff=cutoff)
        if fam_e is not None:
            enr_e = enrich_families(fam_e, sets, background=list(rk_e.index), species=species, cutoff=cutoff)
            new = new_terms(enr_o, enr_e, pairs=pairs)
        secs["enrichment"] = time.perf_counter() - t
        if controls and new is not None:
            t = time.perf_counter()
            first = _control_row("enhanced", enhanced.uns.get("stentrans", {}).get("seed", -1), enhanced, fam_e, new)
            ctl = new_terms_control(adata, fam_o, rep_o, enr_o, controls, sets, top=top, species=species, seed=seed, n_families=n_families, cutoff=cutoff, device=device)
            control = pd.concat([pd.DataFrame([first]), ctl], ignore_index=True)
            secs["control"] = time.perf_counter() - t
    secs["analysis"] = time.perf_counter() - t_all

    def fam_info(fam, enr):
        sizes, sig = family_counts(fam, enr)
        d = {"sizes": {int(k): int(v) for k, v in sizes.items()}, "n_families": int(fam.attrs.get("n_families", sizes.size)), "rule": fam.attrs.get("rule"), "n_pcs": fam.attrs.get("n_pcs")}
        if enr is not None:
            d["significant_terms"] = {int(k): int(v) for k, v in sig.items()}
            d["unmapped_genes"] = {k: v["n_unmapped"] for k, v in enr.attrs.get("mapping", {}).items()}
            d["universe"] = enr.attrs.get("universe")
        return d

    summary = {
        "n_spots": {"original": int(adata.n_obs)},
        "n_genes_ranked": {"original": int(len(rk_o))},
        "top": int(top),
        "species": species,
        "seed": int(seed),
        "top10": {"original": list(rk_o.index[:10])},
        "converged_fraction": {"original": float(rk_o["converged"].mean())},
        "sepal": {k: rk_o.attrs.get(k) for k in ("lattice", "dt", "thresh", "max_iter", "h", "pseudocount", "n_saturated")},
        "families": {"original": fam_info(fam_o, enr_o)},
        "seconds": secs,
    }
    if rk_e is not None:
        summary["n_spots"]["enhanced"] = int(enhanced.n_obs)
        summary["n_genes_ranked"]["enhanced"] = int(len(rk_e))
        summary["top10"]["enhanced"] = list(rk_e.index[:10])
        summary["converged_fraction"]["enhanced"] = float(rk_e["converged"].mean())
        summary["sepal_enhanced"] = {k: rk_e.attrs.get(k) for k in ("lattice", "dt", "coordinate_factor", "n_saturated")}
        summary["families"]["enhanced"] = fam_info(fam_e, enr_e)
        summary["pairs"] = jsonable(pairs.to_dict(orient="records"))
        both = ranking.dropna(subset=["rank_enhanced"])
        summary["rank_spearman"] = spearman(both["rank_original"], both["rank_enhanced"].astype(float)) if len(both) > 2 else None
    if new is not None:
        summary["n_new_terms"] = _n_new(new)
    if control is not None:
        summary["new_terms_control"] = {d: {"seeds": g["seed"].tolist(), "overall": g["new_overall"].tolist(), "paired": g["new_paired"].tolist()} for d, g in control.groupby("data", sort=False)}
    log.info("patterns: analysis in %.1f s", secs["analysis"])
    return {
        "ranking": ranking,
        "ranking_original": rk_o,
        "ranking_enhanced": rk_e,
        "families_original": fam_o,
        "families_enhanced": fam_e,
        "pairs": pairs,
        "enrichment_original": enr_o,
        "enrichment_enhanced": enr_e,
        "new_terms": new,
        "new_terms_control": control,
        "summary": summary,
    }
