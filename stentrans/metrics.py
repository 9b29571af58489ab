"""Scores: the only place that computes a correlation.

* :func:`pcc`: per-gene Pearson correlation between predictions and truth
  (the paper's score), NaN where either side is constant.
* :func:`cross_correlation`: Pearson correlation of every column of one
  matrix with every column of another (e.g. two sets of maps over shared spots).
* :func:`spearman`: Spearman rank correlation of two vectors.
* :func:`log_normalize`: the log-normalised scale some scores use
  (``log1p`` of counts normalised to a common library size).
* :func:`spearman_brown`: reliability of the sum of two halves from their correlation.
* :func:`coverage`, :func:`relative_width`: per-gene share of true values
  inside predictive intervals, and the intervals' mean width over a
  reference width.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pcc", "cross_correlation", "spearman", "log_normalize", "spearman_brown", "coverage", "relative_width"]


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


def cross_correlation(a, b) -> np.ndarray:
    """Pearson correlation of every column of ``a`` with every column of ``b``.

    Parameters
    ----------
    a, b
        ``(n, p)`` and ``(n, q)`` arrays whose rows are the same observations
        (e.g. spots shared by two data sets).

    Returns
    -------
    ``(p, q)`` array: entry ``(i, j)`` is the correlation of ``a[:, i]`` and
    ``b[:, j]``. Each column is standardised with its population standard
    deviation; a constant column stays centred at 0 and correlates 0 with
    everything.
    """
    A = np.asarray(a)
    B = np.asarray(b)
    A = (A - A.mean(0)) / np.where(A.std(0) > 0, A.std(0), 1)
    B = (B - B.mean(0)) / np.where(B.std(0) > 0, B.std(0), 1)
    return A.T @ B / A.shape[0]


def spearman(x, y) -> float:
    """Spearman rank correlation of two vectors (:func:`scipy.stats.spearmanr`)."""
    from scipy.stats import spearmanr

    return float(spearmanr(x, y)[0])


def log_normalize(values, target: float) -> np.ndarray:
    """``log1p(x / l * target)`` per row, ``l`` the row's sum (its library size).

    Parameters
    ----------
    values
        ``(n_spots, n_genes)`` non-negative values (counts, or predictions
        clipped at 0); the library size ``l`` of a spot is the sum over the
        columns given.
    target
        The common library size every row is scaled to.

    Returns
    -------
    float64 array of the same shape; rows with ``l == 0`` are 0.
    """
    x = np.asarray(values, dtype=np.float64)
    lib = x.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.where(lib > 0, x / np.where(lib > 0, lib, 1.0) * float(target), 0.0)
    return np.log1p(scaled)


def spearman_brown(r) -> np.ndarray:
    """``sqrt(2 r / (1 + r))``: the correlation a perfect predictor reaches, from the correlation ``r`` of two halves.

    0 where ``r <= 0``; NaN where ``r`` is NaN.
    """
    r = np.asarray(r, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = 2.0 * r / (1.0 + r)
    return np.where(np.isnan(r), np.nan, np.sqrt(np.clip(rel, 0.0, None)))


def coverage(lower, upper, truth) -> np.ndarray:
    """Per-gene share of ``truth`` inside ``[lower, upper]`` (all ``(n_positions, n_genes)``); NaN without positions."""
    lo = np.asarray(lower, dtype=np.float64)
    hi = np.asarray(upper, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    if not (lo.shape == hi.shape == t.shape):
        raise ValueError(f"lower {lo.shape}, upper {hi.shape} and truth {t.shape} differ in shape")
    if t.shape[0] == 0:
        return np.full(t.shape[1:], np.nan)
    return ((t >= lo) & (t <= hi)).mean(axis=0)


def relative_width(lower, upper, reference) -> np.ndarray:
    """Per-gene mean interval width over ``reference`` (``(n_genes,)``, e.g. each gene's 5-95 % range); NaN where the reference is 0."""
    w = (np.asarray(upper, dtype=np.float64) - np.asarray(lower, dtype=np.float64)).mean(axis=0)
    ref = np.asarray(reference, dtype=np.float64)
    return np.divide(w, ref, out=np.full(w.shape, np.nan), where=ref > 0)
