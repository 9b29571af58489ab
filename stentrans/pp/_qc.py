"""QC: spot and gene filters, optional normalisation (scanpy style, ``copy=``).

The gene filter keeps, by default, every gene detected in at least
:data:`MIN_SPOTS` spots: every gene a user would look for, a marker of a
region of 1 % of a Visium slide (~30 spots) included. Three spots is the
convention of scanpy's and Seurat's tutorials (``min_cells=3``); a gene seen
in one or two spots has no spatial pattern to enhance (its enhanced map is
one or two blobs). On the Visium mouse slide (2,898 spots, 19,465 genes) it
keeps 8,886 genes; 8,022 are never detected and 1,557 in one or two spots.
The authors' code keeps genes detected in more than 10 % of the spots
(1,088 there): ``min_spot_fraction=0.1``, what the paper configs set.
Evaluation scores the genes of that rule whatever was fitted
(:data:`SCORED_SPOT_FRACTION`, :func:`scored_genes`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .._errors import InputError

__all__ = ["QCConfig", "MIN_SPOTS", "SCORED_SPOT_FRACTION", "filter_spots", "filter_genes", "qc", "gene_filter_note", "scored_genes"]

log = logging.getLogger("stentrans.qc")

#: default gene filter: detected in at least this many spots (module documentation)
MIN_SPOTS = 3
#: the genes evaluation scores: detected in more than this fraction of the measured spots (the authors' rule, docs/method.md section 6)
SCORED_SPOT_FRACTION = 0.1
#: where the gene filter is changed, by entry point (:func:`gene_filter_note`, ``uns["stentrans"]["qc"]["change_with"]``)
CHANGE_WITH = {
    "stentrans": "--min-spots N, --min-spot-fraction F (--no-filter keeps every gene)",
    "workflow": "qc.min_spots, qc.min_spot_fraction in the config",
    "python": "pp.qc(min_spots=..., min_spot_fraction=...)",
}


@dataclass
class QCConfig:
    """QC settings (their defaults are the package's, written once here)."""

    min_counts: float = field(default=0.0, metadata={"help": "drop spots with fewer total counts"})
    min_spot_fraction: float = field(default=0.0, metadata={"help": "and keep only genes detected in more than this fraction of spots (the authors' code: 0.1, as config/paper.yaml)"})
    min_spots: int | None = field(default=MIN_SPOTS, metadata={"help": "keep genes detected in at least this many spots (scanpy's and Seurat's min_cells=3; 0: every gene detected once)"})
    normalize: bool = field(default=False, metadata={"help": "library-size normalise to --target-sum"})
    target_sum: float = field(default=1e4, metadata={"help": "counts per spot after --normalize"})
    log1p: bool = field(default=False, metadata={"help": "log(1 + x) after normalisation"})


_QC = QCConfig()


def _prov(adata) -> dict:
    st = adata.uns.get("stentrans")
    if not isinstance(st, dict):
        st = {}
        adata.uns["stentrans"] = st
    return st


def filter_spots(adata, *, min_counts: float = _QC.min_counts, copy: bool = False):
    """Drop spots with fewer than ``min_counts`` total counts.

    As :func:`scanpy.pp.filter_cells`: in place (``copy=False``, returns None)
    or on a copy that is returned. The rule and the counts go to
    ``uns["stentrans"]["qc"]``.
    """
    src = _prov(adata).get("source")
    totals = np.asarray(adata.X.sum(axis=1)).ravel()
    keep = totals >= min_counts
    if not keep.any():
        raise InputError(src, "min_counts", f"no spot has at least {min_counts} counts (max {totals.max() if totals.size else 0:g})")
    n0 = adata.n_obs
    if copy:
        adata = adata[keep].copy()
    else:
        adata._inplace_subset_obs(keep)
    q = _prov(adata).setdefault("qc", {})
    q.update(min_counts=float(min_counts), n_spots_before=int(n0), n_spots_after=int(adata.n_obs))
    return adata if copy else None


def filter_genes(adata, *, min_spot_fraction: float = _QC.min_spot_fraction, min_spots: int | None = _QC.min_spots, copy: bool = False):
    """Keep genes detected (count > 0) in at least ``min_spots`` spots and in *more than* ``min_spot_fraction`` of them.

    Default: detected in at least 3 spots (module documentation);
    ``min_spot_fraction=0.1`` is the authors' code (6,472 genes on the
    melanoma data). A gene detected in no spot is always dropped. In place
    (``copy=False``, returns None) or on a returned copy, as
    :func:`scanpy.pp.filter_genes`. The rule, the counts kept and dropped and
    where to change them go to ``uns["stentrans"]["qc"]`` and to the log
    (:func:`gene_filter_note`).
    """
    src = _prov(adata).get("source")
    detected = np.asarray((adata.X > 0).sum(axis=0)).ravel()
    n_min = 0 if min_spots is None else int(min_spots)
    frac = float(min_spot_fraction or 0.0)
    if n_min < 0 or not 0 <= frac < 1:
        raise InputError(src, "min_spots" if n_min < 0 else "min_spot_fraction", f"{n_min if n_min < 0 else frac}: must be >= 0 (min_spots) and in [0, 1) (min_spot_fraction)")
    keep = (detected >= n_min) & (detected > frac * adata.n_obs)
    # the rule that binds, in words: the fraction's threshold or the number of spots
    need = max(n_min, int(np.floor(frac * adata.n_obs)) + 1, 1)
    rule = f"more than {frac:.0%} of the {adata.n_obs:,} spots: {need:,} or more" if frac > 0 and need > max(n_min, 1) else f"at least {need} spot{'s' if need > 1 else ''}"
    if not keep.any():
        raise InputError(src, "min_spot_fraction" if frac > 0 else "min_spots", f"no gene is detected in {rule} ({adata.n_obs} spots, best gene in {detected.max() if detected.size else 0})")
    n0 = adata.n_vars
    if copy:
        adata = adata[:, keep].copy()
    else:
        adata._inplace_subset_var(keep)
    q = _prov(adata).setdefault("qc", {})
    q.update(
        min_spot_fraction=frac,
        min_spots=n_min,
        gene_rule=f"detected in {rule}",
        n_genes_before=int(n0),
        n_genes_after=int(adata.n_vars),
        n_genes_dropped=int(n0 - adata.n_vars),
        n_genes_undetected=int((detected == 0).sum()),
        change_with=dict(CHANGE_WITH),
    )
    log.debug("%s", gene_filter_note(adata, how=None))  # the command line and the workflow say it at the end of the run
    return adata if copy else None


def gene_filter_note(adata_or_qc, *, how: str | None = "stentrans") -> str:
    """One line: the gene filter applied, the genes kept and dropped, and how to change it (from ``uns["stentrans"]["qc"]``).

    ``how``: the entry point whose settings are named, a key of :data:`CHANGE_WITH` (None: no settings named).
    """
    q = adata_or_qc
    if hasattr(adata_or_qc, "uns"):
        st = adata_or_qc.uns.get("stentrans", {})
        q = st.get("qc") if isinstance(st, dict) else None
        if not isinstance(q, dict) or "n_genes_before" not in q:
            return f"genes: all {adata_or_qc.n_vars:,} genes of the input, no gene filter" + (" (--no-filter)" if how == "stentrans" else "")
    kept, before = int(q["n_genes_after"]), int(q["n_genes_before"])
    dropped = int(q.get("n_genes_dropped", before - kept))
    undetected = q.get("n_genes_undetected")
    rule = q.get("gene_rule") or "the gene filter"
    never = f", {int(undetected):,} of them never detected" if undetected is not None else ""
    return f"genes: {kept:,} of {before:,} kept ({rule}); {dropped:,} dropped{never}" + (f". Change with {CHANGE_WITH[how]}" if how else "")


def scored_genes(adata, *, fraction: float = SCORED_SPOT_FRACTION, layer: str | None = None) -> list:
    """Genes detected in more than ``fraction`` of the spots: what evaluation scores (the authors' rule), whatever the fit used."""
    X = adata.layers[layer] if layer is not None else adata.X
    detected = np.asarray((X > 0).sum(axis=0)).ravel()
    return list(adata.var_names[detected > float(fraction) * adata.n_obs])


def qc(
    adata,
    *,
    min_counts: float = _QC.min_counts,
    min_spot_fraction: float = _QC.min_spot_fraction,
    min_spots: int | None = _QC.min_spots,
    normalize: bool = _QC.normalize,
    target_sum: float | None = _QC.target_sum,
    log1p: bool = _QC.log1p,
    copy: bool = True,
):
    """QC: :func:`filter_spots`, then :func:`filter_genes`, optional normalisation.

    Parameters
    ----------
    min_counts
        Spots with fewer total counts are removed.
    min_spot_fraction, min_spots
        Gene filter, see :func:`filter_genes` (default: genes detected in at
        least 3 spots).
    normalize, target_sum
        Library-size normalisation to ``target_sum`` counts per spot.
    log1p
        ``log(1 + x)`` after normalisation.
    copy
        Return a filtered copy (default) or filter ``adata`` in place.

    Every choice and the counts before/after go to ``uns["stentrans"]["qc"]``.
    Raw counts stay in ``layers["counts"]``.
    """
    ad = adata.copy() if copy else adata
    _prov(ad).pop("qc", None)
    filter_spots(ad, min_counts=min_counts)
    filter_genes(ad, min_spot_fraction=min_spot_fraction, min_spots=min_spots)
    ad.layers["counts"] = ad.X.copy()
    scale = "counts"
    if normalize:
        import scanpy as sc

        sc.pp.normalize_total(ad, target_sum=target_sum)
        scale = f"normalized(target_sum={target_sum})"
    if log1p:
        Xd = ad.X
        ad.X = Xd.log1p() if sp.issparse(Xd) else np.log1p(Xd)
        scale = f"log1p({scale})"
    st = _prov(ad)
    st["qc"].update(
        normalize=bool(normalize),
        target_sum=float(target_sum) if target_sum is not None else -1.0,
        log1p=bool(log1p),
    )
    st["scale"] = scale
    return ad if copy else None
