"""Summaries of the per-gene table of :func:`~stentrans.tl.evaluate`: medians over genes, mean and sd over seeds."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .._utils import ordered
from ..models import registry

__all__ = ["summarize", "add_ceiling_fraction"]


def summarize(per_gene: pd.DataFrame, *, protocol_order=()) -> pd.DataFrame:
    """Median PCC per method, protocol and seed; mean and sd of the medians over seeds.

    Columns: (``dataset``,) ``method, protocol, median_seed<k>..., mean, sd,
    n_genes, n_excluded, n_spots``. ``sd`` is the sample standard deviation
    (``NaN`` with one seed); ``n_genes``/``n_excluded`` count the genes with
    a PCC and the genes excluded (zero variance), averaged over seeds.
    Rows: by protocol (in ``protocol_order``, the others as they come), then
    by method (:data:`stentrans.models.registry.TABLE_ORDER`).
    """
    keys = (["dataset"] if "dataset" in per_gene.columns else []) + ["method", "protocol"]
    df = per_gene.copy()
    df["ok"] = np.isfinite(df["pcc"].to_numpy(dtype=float))
    g = df.groupby(keys + ["seed"], sort=False)
    per_seed = g.agg(median=("pcc", "median"), n_genes=("ok", "sum"), n_total=("ok", "size"), n_spots=("n_spots", "max")).reset_index()
    per_seed["n_excluded"] = per_seed["n_total"] - per_seed["n_genes"]
    seeds = sorted(per_seed["seed"].unique())
    wide = per_seed.pivot_table(index=keys, columns="seed", values="median", aggfunc="first", dropna=False)
    wide.columns = [f"median_seed{s}" for s in wide.columns]
    med_cols = [f"median_seed{s}" for s in seeds]
    wide = wide.reindex(columns=med_cols)
    counts = per_seed.groupby(keys, sort=False)[["n_genes", "n_excluded", "n_spots"]].mean().round().astype(np.int64)
    # inner: only the (method, protocol) pairs scored (pseudo-methods score one protocol each)
    out = wide.join(counts, how="inner").reset_index()
    vals = out[med_cols].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out["mean"] = np.nanmean(vals, axis=1)
        sd = np.nanstd(vals, axis=1, ddof=1) if len(seeds) > 1 else np.full(len(out), np.nan)
        sd[np.nanmax(vals, axis=1) == np.nanmin(vals, axis=1)] = 0.0  # deterministic methods: exactly 0
        out["sd"] = sd if len(seeds) > 1 else np.nan
    out = out[keys + med_cols + ["mean", "sd", "n_genes", "n_excluded", "n_spots"]]
    order_m = ordered(out["method"], registry.TABLE_ORDER)
    order_p = ordered(out["protocol"], tuple(protocol_order))
    out["_p"] = out["protocol"].map({p: i for i, p in enumerate(order_p)})
    out["_m"] = out["method"].map({m: i for i, m in enumerate(order_m)})
    out = out.sort_values((["dataset"] if "dataset" in keys else []) + ["_p", "_m"], kind="stable").drop(columns=["_p", "_m"])
    return out.reset_index(drop=True)


def add_ceiling_fraction(summary: pd.DataFrame, *, reference: str = "ceiling") -> pd.DataFrame:
    """``summary`` with a column ``fraction_of_ceiling``: each row's ``mean`` over the ``mean`` of the ``reference`` row.

    The reference row (the noise ceiling's median per seed, averaged over
    seeds) is the one of the same (``dataset`` and) ``protocol``; rows of a
    protocol without one get ``NaN``. A copy is returned.
    """
    keys = (["dataset"] if "dataset" in summary.columns else []) + ["protocol"]
    out = summary.copy()
    ref = out[out["method"] == reference].set_index(keys)["mean"]
    idx = pd.MultiIndex.from_frame(out[keys]) if len(keys) > 1 else pd.Index(out[keys[0]])
    den = ref.reindex(idx).to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["fraction_of_ceiling"] = out["mean"].to_numpy(dtype=float) / den
    return out
