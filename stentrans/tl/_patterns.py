"""Spatial patterns end to end (paper Fig. 4): :func:`run_patterns`.

The analysis follows the stEnTrans paper, which follows Sepal (Andersson &
Lundeberg 2021): rank genes by diffusion time (:func:`~stentrans.tl.sepal_scores`)
on the measured and on the enhanced data, take the top genes, group them into
pattern families (:mod:`stentrans.tl._families`), test each family for GO
Biological Process enrichment and list the terms found only after
enhancement (:mod:`stentrans.tl._enrich`), and draw the figures
(:mod:`stentrans.pl._patterns`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .._errors import InputError
from .._utils import atomic_path, write_tsv
from ..grid import source_of
from ..metrics import spearman
from ..pl import _patterns as figures
from ._enrich import enrich_families, family_counts, new_terms, read_gmt
from ._families import family_representative, pair_families, pattern_families
from ._patterns_config import PatternsConfig
from ._sepal import sepal_scores

log = logging.getLogger("stentrans.patterns")

__all__ = ["run_patterns", "coord_index"]

_P = PatternsConfig()


def coord_index(adata) -> pd.Index:
    """Spot labels by lattice position (``"row_col"``; the same for the measured spots of enhanced data)."""
    r = np.asarray(adata.obs["array_row"], dtype=float)
    c = np.asarray(adata.obs["array_col"], dtype=float)
    return pd.Index([f"{a:g}_{b:g}" for a, b in zip(r, c)])


def _write_tsv(df: pd.DataFrame, path, index=False):
    return str(write_tsv(df, path, index=index))


def _jsonable(o):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating, float)):
        return None if not np.isfinite(o) else float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if o is pd.NA:
        return None
    return o


def run_patterns(
    adata,
    enhanced=None,
    gmt=None,
    top: int = _P.top,
    outdir=".",
    species: str = _P.species,
    seed: int = _P.seed,
    layer: str | None = None,
    enhanced_layer: str | None = None,
    n_families: int | None = _P.n_families,
    device=_P.device,
    cutoff: float = _P.cutoff,
    plots: bool = True,
) -> dict:
    """Paper Fig. 4 end to end: Sepal ranking, families, enrichment, new terms, figures.

    ``adata``: measured counts, already filtered (e.g. :func:`stentrans.pp.qc`,
    genes detected in > 10 % of spots); ``enhanced``: the enhanced AnnData
    (genes shared with ``adata`` are used). The settings and their defaults
    are the fields of :class:`~stentrans.tl.PatternsConfig`. Writes to ``outdir``:

    * ``ranking.tsv``: gene, diffusion_time, converged, rank_original,
      diffusion_time_enhanced, rank_enhanced (rank among shared genes);
    * ``families_original.tsv`` / ``families_enhanced.tsv``;
    * ``enrichment_original.tsv`` / ``enrichment_enhanced.tsv`` (with ``gmt``);
    * ``family_pairs.tsv``, ``new_terms.tsv`` (with ``enhanced``);
    * ``summary.json``: top-10 genes, converged fractions, family sizes,
      significant terms per family, unmapped genes, number of new terms,
      seconds per stage, parameters;
    * figures ``fig4b_ranked_genes``, ``fig4c_family_summary``,
      ``fig4d_new_terms`` (PNG + PDF).

    All files are written atomically. Returns a dict with the tables, the
    summary and the written paths.
    """
    t_all = time.perf_counter()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    secs: dict[str, float] = {}
    files: list[str] = []

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
    files.append(_write_tsv(ranking, outdir / "ranking.tsv"))

    t = time.perf_counter()
    fam_o = pattern_families(adata, rk_o, top=top, n_families=n_families, seed=seed, layer=layer)
    files.append(_write_tsv(fam_o, outdir / "families_original.tsv"))
    fam_e = pairs = None
    if rk_e is not None:
        fam_e = pattern_families(enhanced, rk_e, top=top, n_families=n_families, seed=seed, layer=enhanced_layer)
        files.append(_write_tsv(fam_e, outdir / "families_enhanced.tsv"))
        rep_o = family_representative(adata, fam_o, layer=layer)
        rep_e = family_representative(enhanced, fam_e, layer=enhanced_layer)
        rep_o.index = coord_index(adata)
        rep_e.index = coord_index(enhanced)
        pairs = pair_families(fam_o, fam_e, rep_o, rep_e)
        files.append(_write_tsv(pairs, outdir / "family_pairs.tsv"))
    secs["families"] = time.perf_counter() - t

    enr_o = enr_e = new = None
    if gmt is not None:
        t = time.perf_counter()
        sets = read_gmt(gmt) if isinstance(gmt, (str, os.PathLike)) else gmt
        enr_o = enrich_families(fam_o, sets, background=list(rk_o.index), species=species, cutoff=cutoff)
        files.append(_write_tsv(enr_o, outdir / "enrichment_original.tsv"))
        if fam_e is not None:
            enr_e = enrich_families(fam_e, sets, background=list(rk_e.index), species=species, cutoff=cutoff)
            files.append(_write_tsv(enr_e, outdir / "enrichment_enhanced.tsv"))
            new = new_terms(enr_o, enr_e, pairs)
            files.append(_write_tsv(new, outdir / "new_terms.tsv"))
        secs["enrichment"] = time.perf_counter() - t

    if plots:
        t = time.perf_counter()
        stem = outdir / "fig4b_ranked_genes"
        figures.ranked_genes(adata, rk_o, enhanced, rk_e, layer=layer, enhanced_layer=enhanced_layer, save=stem)
        files += figures.figure_files(stem)
        stem = outdir / "fig4c_family_summary"
        figures.family_summary(fam_o, fam_e, enr_o, enr_e, pairs, save=stem)
        files += figures.figure_files(stem)
        if new is not None:
            stem = outdir / "fig4d_new_terms"
            figures.new_terms(new, save=stem)
            files += figures.figure_files(stem)
        secs["plots"] = time.perf_counter() - t
    secs["total"] = time.perf_counter() - t_all

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
        summary["pairs"] = _jsonable(pairs.to_dict(orient="records"))
        both = ranking.dropna(subset=["rank_enhanced"])
        summary["rank_spearman"] = spearman(both["rank_original"], both["rank_enhanced"].astype(float)) if len(both) > 2 else None
    if new is not None:
        summary["n_new_terms"] = {"overall": int((new["scope"] == "overall").sum()), "paired": int((new["scope"] == "paired").sum())}
    summary_path = outdir / "summary.json"
    with atomic_path(summary_path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(_jsonable(summary), indent=2))
    files.append(str(summary_path))
    log.info("patterns: wrote %d files to %s in %.1f s", len(files), outdir, secs["total"])
    return {"ranking": ranking, "ranking_original": rk_o, "ranking_enhanced": rk_e, "families_original": fam_o, "families_enhanced": fam_e, "pairs": pairs, "enrichment_original": enr_o, "enrichment_enhanced": enr_e, "new_terms": new, "summary": summary, "files": files}
