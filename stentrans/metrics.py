"""Scores: the only place that computes a correlation.

* :func:`pcc`: per-gene Pearson correlation between predictions and truth
  (the paper's score), NaN where either side is constant.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pcc"]


def pcc(pred, truth) -> np.ndarray:
    """Per-gene Pearson correlation, vectorised over genes.

    Parameters
    ----------
    pred, truth
        ``(n_spots, n_genes)`` arrays (genes are columns) or 1-D vectors.

    Returns
    -------
    ``(n_genes,)`` float64 (a 0-d array for vectors). ``NaN`` where the
    truth or the prediction is constant over the spots (zero variance),
    where a value is not finite, or with fewer than 2 spots; such genes are
    excluded from medians and counted by :func:`summarize`.
    """
    x = np.asarray(pred, dtype=np.float64)
    y = np.asarray(truth, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"pred {x.shape} and truth {y.shape} differ in shape")
    vec = x.ndim == 1
    if vec:
        x, y = x[:, None], y[:, None]
    if x.ndim != 2:
        raise ValueError(f"expected (n_spots, n_genes) arrays, got shape {x.shape}")
    out = np.full(x.shape[1], np.nan)
    if x.shape[0] >= 2 and x.shape[1]:
        finite = np.isfinite(x).all(0) & np.isfinite(y).all(0)
        # exact test for constancy (a centred constant can leave rounding noise)
        with np.errstate(invalid="ignore"):
            const = (np.ptp(x, axis=0) == 0) | (np.ptp(y, axis=0) == 0)
        ok = finite & ~const
        if ok.any():
            xc = x[:, ok] - x[:, ok].mean(0)
            yc = y[:, ok] - y[:, ok].mean(0)
            nx = np.sqrt((xc * xc).sum(0))
            ny = np.sqrt((yc * yc).sum(0))
            with np.errstate(invalid="ignore", divide="ignore"):
                r = (xc * yc).sum(0) / nx / ny
            r[(nx == 0) | (ny == 0)] = np.nan
            out[ok] = np.clip(r, -1.0, 1.0)
    return out[0] if vec else out
