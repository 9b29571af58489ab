"""The simulator's 2x truth (``uns["truth"]``) at the new fine positions, for protocol ``truth`` (:mod:`._protocols`)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .._errors import InputError

log = logging.getLogger("stentrans.evaluate")


def truth_columns(adata, truth, genes) -> np.ndarray:
    """Column of ``truth["mean"]`` for every evaluated gene."""
    n_cols = np.asarray(truth["mean"]).shape[1]
    for key in ("genes", "var_names", "gene"):
        if key in truth:
            names = pd.Index(np.asarray(truth[key]).astype(str))
            idx = names.get_indexer(genes)
            if (idx < 0).any():
                raise InputError(None, f'uns["truth"]["{key}"]', f"{int((idx < 0).sum())} gene(s) not in the truth, e.g. {genes[idx < 0][0]}")
            return idx
    n_sim = adata.uns.get("stentrans", {}).get("simulation", {}).get("n_genes")
    all_names = np.asarray(adata.var_names).astype(str)
    if n_cols == len(all_names) and (n_sim is None or int(n_sim) == n_cols):
        return pd.Index(all_names).get_indexer(genes)
    # genes were filtered after simulation: simulate names them gene_0000, ...
    idx = np.array([int(g[5:]) if g.startswith("gene_") and g[5:].isdigit() else -1 for g in genes])
    if (idx >= 0).all() and (idx < n_cols).all() and n_sim is not None and int(n_sim) == n_cols:
        return idx
    raise InputError(None, 'uns["truth"]', f"cannot match the {len(genes)} genes to the truth's {n_cols} columns (genes were filtered and the truth carries no gene names)")


def fine_truth(data):
    """``(P, Q, mean, counts)``: the new fine positions of H(M) present in a simulator's truth, and its values there."""
    from ..lattice import enhanced_mask

    truth = data.adata.uns.get("truth")
    if not isinstance(truth, dict) or "mean" not in truth:
        raise InputError(data.adata.uns.get("stentrans", {}).get("source"), 'uns["truth"]', "protocol 'truth' needs simulated data with uns['truth'] (stentrans.simulate)")
    up = data.grid.up()
    rr = np.asarray(truth["array_row"], dtype=float)
    cc = np.asarray(truth["array_col"], dtype=float)
    # half-step coordinates -> pixels of the doubled grid (positions off it are dropped)
    pr = (rr - up.row0) / up.step
    pc = (cc - up.col0) / up.step
    Pf, Qf = np.rint(pr).astype(np.int64), np.rint(pc).astype(np.int64)
    on = (np.abs(pr - Pf) < 1e-6) & (np.abs(pc - Qf) < 1e-6)
    on &= (Pf >= 0) & (Qf >= 0) & (Pf < up.shape[0]) & (Qf < up.shape[1])
    H = enhanced_mask(data.M, data.lattice)
    measured = np.zeros(len(rr), dtype=bool)
    even = on & (Pf % 2 == 0) & (Qf % 2 == 0)
    measured[even] = data.M[Pf[even] // 2, Qf[even] // 2]
    if "is_measured" in truth:
        measured |= np.asarray(truth["is_measured"], dtype=bool)
    keep = on & ~measured
    keep[keep] = H[Pf[keep], Qf[keep]]
    rows = np.flatnonzero(keep)
    if rows.size == 0:
        raise InputError(None, 'uns["truth"]', "no new fine position of H(M) is present in the truth")
    log.info("truth: %d new fine positions of H(M) scored (%d truth positions off the grid or outside H(M))", rows.size, int((~on).sum() + (on & ~measured & ~keep).sum()))
    cols = truth_columns(data.adata, truth, data.genes)
    mean = np.asarray(truth["mean"])[rows][:, cols]
    counts = np.asarray(truth["counts"])[rows][:, cols] if "counts" in truth else None
    return Pf[rows], Qf[rows], np.asarray(mean, dtype=np.float64), (None if counts is None else np.asarray(counts, dtype=np.float64))
