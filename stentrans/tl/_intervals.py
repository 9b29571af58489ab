"""Predictive intervals for every enhanced value, calibrated from the measured spots alone.

What an interval means (docs/method.md, "Predictive intervals"): at level
``1 - alpha``, the count a measurement at that position (a spot of the
input's size, the input's depth) would give lies inside ``[lower, upper]``
with probability ``1 - alpha``. At new positions that is the truth binned
from finer data (docs/realtruth.md checks it); at measured positions, a
repeat measurement of the same spot.

The model (:func:`calibrate`):

* **Counting noise around the estimate.** A count at a position with
  estimate ``mu`` is negative binomial, ``var = mu + phi_g mu^2``, with one
  dispersion ``phi_g`` per gene (method of moments on the held-out
  residuals below; 0 means Poisson).
* **Where the model fits worse.** Every measured spot is predicted without
  its own counts (:meth:`~stentrans.models.base.Fitted.predict_held_out`:
  the robust variant leaves the spot out of its kernel, other methods
  predict each coset of ``D`` from the other three). A spot's misfit
  factor is its squared residuals over their expected variance, summed over
  genes; smoothed over the doubled grid (normalised convolution, one
  lattice spacing) and scaled to mean 1 over the measured spots, it
  stretches the variance where the model predicts its neighbours worse
  (``obs["interval_scale"]``): ``var = f(x) (mu + phi_g mu^2)``.
* **Calibration (split conformal, no truth).** Each held-out count gets the
  score ``|F(y - 1) + P(y) / 2 - 1/2|`` under its predictive distribution
  (mid-p: counts are discrete); the interval at level ``1 - alpha`` is
  every count whose score is at most ``q``, the smallest threshold under
  which a share ``1 - alpha`` of the held-out counts falls inside their
  intervals: the split-conformal quantile of the held-out scores.
  Calibration and prediction use the same interval function
  (negative-binomial bounds tabulated over ``mu`` and the effective
  dispersion), so the held-out coverage is at least the nominal level by
  construction.

Assumptions: a held-out measured spot, predicted from its neighbours one
lattice spacing away, is no easier to predict than a new position half a
spacing from its nearest spots (so intervals at new positions are, if
anything, conservative); counts at new positions follow the same
distribution around the model's estimate as at measured spots (false where
the lattice points are chosen by the data: pseudo-spots of cell centroids
exist only where a centroid falls, their new positions are often empty).
Every interval contains the estimate and is never negative.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .._errors import InputError

log = logging.getLogger("stentrans.intervals")

__all__ = ["Calibration", "calibrate", "check_level", "trivial_width"]


def check_level(level) -> None:
    """An interval level is 0 (no intervals) or strictly between 0 and 1: else one line naming the value."""
    if isinstance(level, bool) or not (isinstance(level, (int, float, np.number)) and (level == 0 or 0.0 < float(level) < 1.0)):
        raise InputError(None, "interval", f"{level!r}: the level must be between 0 and 1 (0: no intervals)")


#: grids of the tabulated bounds: estimates (log-spaced) and effective dispersions (0, then log-spaced)
_N_MU, _N_PHI = 384, 48
_PHI_MAX = 100.0
#: misfit factors are kept within these (a spot alone must not blow up its neighbourhood)
SCALE_CLIP = (0.25, 4.0)


def _nb_np(mu: np.ndarray, phi: np.ndarray):
    """scipy's ``nbinom(n, p)`` for mean ``mu`` and ``var = mu + phi mu^2`` (``phi`` floored at 1e-6: Poisson-like)."""
    n = 1.0 / np.maximum(phi, 1e-6)
    return n, n / (n + np.maximum(mu, 1e-12))


class _Table:
    """Integer bounds ``{k: |F(k-1) + P(k)/2 - 1/2| <= q}`` of negative binomials, tabulated over ``(phi, mu)``."""

    def __init__(self, mu_max: float):
        self.log_mu = np.linspace(np.log(1e-3), np.log(max(float(mu_max), 1.0) * 1.05 + 1.0), _N_MU)
        self.log_phi = np.linspace(np.log(1e-3), np.log(_PHI_MAX), _N_PHI - 1)
        mu = np.exp(self.log_mu)
        phi = np.concatenate([[0.0], np.exp(self.log_phi)])
        self._mu, self._phi = np.meshgrid(mu, phi)  # (n_phi, n_mu)
        self._cache: dict[float, tuple[np.ndarray, np.ndarray]] = {}

    def bounds_at(self, q: float) -> tuple[np.ndarray, np.ndarray]:
        """``(lower, upper)`` ``(n_phi, n_mu)`` integer bounds at threshold ``q``.

        The mid-p function ``Fm(k) = F(k-1) + P(k)/2`` lies between ``F(k-1)``
        and ``F(k)``, so the smallest ``k`` with ``Fm(k) >= L`` is the quantile
        ``k0`` of ``L`` or ``k0 + 1``, and the largest with ``Fm(k) <= H`` is
        the quantile ``k1`` of ``H`` or ``k1 - 1``.
        """
        key = round(float(q), 12)
        if key not in self._cache:
            from scipy import stats

            n, p = _nb_np(self._mu, self._phi)
            lo_level, hi_level = 0.5 - q, 0.5 + q

            def fmid(k):
                return stats.nbinom.cdf(k - 1, n, p) + 0.5 * stats.nbinom.pmf(k, n, p)

            k0 = np.maximum(stats.nbinom.ppf(max(lo_level, 0.0), n, p), 0)
            lower = np.where(fmid(k0) >= lo_level, k0, k0 + 1)
            k1 = stats.nbinom.ppf(min(hi_level, 1.0 - 1e-12), n, p)
            upper = np.where(fmid(k1) <= hi_level, k1, k1 - 1)
            upper = np.maximum(upper, lower)  # no count inside: the one nearest the median
            self._cache[key] = (lower.astype(np.float32), upper.astype(np.float32))
        return self._cache[key]

    def index(self, mu: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grid cells of ``(mu, phi)``: nearest in log space (phi below 1e-3: the Poisson row)."""
        lm = np.log(np.maximum(mu, 1e-12))
        i_mu = np.clip(np.rint((lm - self.log_mu[0]) / (self.log_mu[1] - self.log_mu[0])), 0, _N_MU - 1).astype(np.int64)
        lp = np.log(np.maximum(phi, 1e-12))
        i_phi = np.clip(np.rint((lp - self.log_phi[0]) / (self.log_phi[1] - self.log_phi[0])), 0, _N_PHI - 2).astype(np.int64) + 1
        i_phi = np.where(phi < 1e-3, 0, i_phi)
        return i_phi, i_mu


def effective_dispersion(mu: np.ndarray, phi: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Dispersion of the negative binomial with mean ``mu`` and variance ``scale (mu + phi mu^2)`` (0 where that is below Poisson)."""
    mu = np.maximum(mu, 1e-12)
    return np.maximum(scale * phi + (scale - 1.0) / mu, 0.0)


@dataclass
class Calibration:
    """Calibrated predictive intervals of one fitted method on one input (module documentation).

    Attributes
    ----------
    level
        Nominal coverage.
    q
        Conformal threshold of the mid-p score.
    phi
        ``(n_genes,)`` per-gene dispersion.
    scale
        ``(2u, 2v)`` misfit factor on the doubled grid (1: the slide's average).
    held_out_coverage
        Coverage of the held-out counts (the calibration set) at ``q``.
    n_pairs
        Held-out (spot, gene) counts used.
    """

    level: float
    q: float
    phi: np.ndarray
    scale: np.ndarray
    held_out_coverage: float
    n_pairs: int
    table: _Table

    def bounds(self, mu: np.ndarray, P: np.ndarray, Q: np.ndarray, genes=None) -> tuple[np.ndarray, np.ndarray]:
        """``(lower, upper)`` for estimates ``mu`` (positions x genes) at doubled-grid pixels ``(P, Q)``.

        ``genes``: the rows of :attr:`phi` the columns of ``mu`` are (default all).
        Every interval contains its estimate and is at least 0.
        """
        mu = np.maximum(np.asarray(mu, dtype=np.float64), 0.0)
        phi = self.phi if genes is None else self.phi[np.asarray(genes)]
        s = self.scale[P, Q][:, None]
        pe = effective_dispersion(mu, phi[None, :], s)
        i_phi, i_mu = self.table.index(mu, pe)
        lo_t, hi_t = self.table.bounds_at(self.q)
        lower = lo_t[i_phi, i_mu]
        upper = hi_t[i_phi, i_mu]
        mu32 = mu.astype(np.float32)
        return np.minimum(lower, mu32), np.maximum(upper, mu32)

    def provenance(self) -> dict:
        return {
            "level": float(self.level),
            "calibration": "split conformal on held-out measured spots (mid-p score of a negative binomial around the estimate, per-gene dispersion, local misfit factor); docs/method.md",
            "q": float(self.q),
            "held_out_coverage": float(self.held_out_coverage),
            "n_pairs": int(self.n_pairs),
            "median_dispersion": float(np.median(self.phi)) if self.phi.size else float("nan"),
        }


def dispersion(y: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Per-gene ``phi``: ``sum((y - m)^2 - m) / sum(m^2)`` over the spots (``y``, ``m``: spots x genes), at least 0, at most 100."""
    y = np.asarray(y, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    num = ((y - m) ** 2 - m).sum(0)
    den = (m**2).sum(0)
    phi = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return np.clip(phi, 0.0, _PHI_MAX)


def trivial_width(counts: np.ndarray) -> np.ndarray:
    """Each gene's 5-95 % range over the measured spots (``counts``: spots x genes): the interval that knows no position."""
    c = np.asarray(counts, dtype=np.float64)
    return (np.quantile(c, 0.95, axis=0) - np.quantile(c, 0.05, axis=0)).astype(np.float32)


def _misfit_scale(y, m, phi, mask, lattice, smooth) -> np.ndarray:
    """Per-spot misfit (residual variance over expected variance, all genes) spread over the doubled grid, mean 1 over the spots."""
    import torch

    from ..models.robust.ops import nc_upsample

    v = np.maximum(m + phi[None, :] * m**2, 1e-9)
    ratio = ((y - m) ** 2).sum(1) / v.sum(1)
    ratio = ratio / max(float(np.mean(ratio)), 1e-12)
    p, q = np.nonzero(mask)
    grid = np.zeros(mask.shape, dtype=np.float32)
    grid[p, q] = np.log(np.clip(ratio, *SCALE_CLIP))
    fine = nc_upsample(torch.from_numpy(grid)[None], torch.from_numpy(np.asarray(mask)), lattice, smooth)[0].numpy()
    scale = np.exp(fine)
    scale /= max(float(np.mean(scale[2 * p, 2 * q])), 1e-12)
    return np.clip(scale, *SCALE_CLIP).astype(np.float32)


def _conformal_threshold(table: _Table, y: np.ndarray, i_phi: np.ndarray, i_mu: np.ndarray, level: float) -> float:
    """Split-conformal threshold of the mid-p scores ``|F(y-1) + P(y)/2 - 1/2|`` of counts ``y`` under their table cells' distributions."""
    from scipy import stats

    n, p = _nb_np(table._mu[i_phi, i_mu], table._phi[i_phi, i_mu])
    score = np.abs(stats.nbinom.cdf(y - 1, n, p) + 0.5 * stats.nbinom.pmf(y, n, p) - 0.5)
    m = score.size
    k = min(m, int(np.ceil((m + 1) * float(level))))
    return float(min(np.partition(score, k - 1)[k - 1] + 1e-12, 0.5))


def calibrate(fitted, maps: np.ndarray, mask: np.ndarray, lattice: str, *, level: float = 0.9, genes=None, max_pairs: int = 2_000_000, smooth: float = 1.0, seed: int = 0, chunk: int = 512, mu_max: float | None = None) -> Calibration:
    """Calibrate predictive intervals of ``fitted`` on the measured spots of ``maps`` (module documentation).

    Parameters
    ----------
    fitted
        A :class:`~stentrans.models.base.Fitted`.
    maps, mask, lattice
        The measured maps (raw counts), in-tissue mask and lattice the model enhances.
    level
        Nominal coverage (0 < level < 1).
    genes
        Rows of ``maps`` to calibrate (default all); :attr:`Calibration.phi` follows them.
    max_pairs, seed
        At most this many held-out (spot, gene) counts calibrate ``q`` (a seeded random subset).
    mu_max
        Largest estimate the intervals will be asked for (default: from the counts).
    """
    check_level(level)
    if not level:
        raise InputError(None, "interval", "0: no intervals to calibrate")
    mask = np.asarray(mask, dtype=bool)
    p, q = np.nonzero(mask)
    gi = np.arange(maps.shape[0]) if genes is None else np.asarray(genes, dtype=np.int64)
    # spots x genes, a gene chunk at a time (the held-out maps of every gene at once would be the size of the enhanced slide)
    held = np.concatenate([fitted.predict_held_out(maps, mask, genes=gi[s : s + chunk], chunk=chunk) for s in range(0, len(gi), chunk)], axis=0).T.astype(np.float64)
    y = np.asarray(maps, dtype=np.float64)[gi][:, p, q].T
    m = np.maximum(held, 0.0)
    phi = dispersion(y, m)
    scale = _misfit_scale(y, m, phi, mask, lattice, smooth)
    top = float(max(np.max(y, initial=0.0), np.max(m, initial=0.0), mu_max or 0.0))
    table = _Table(top)
    # the calibration set: held-out counts, each with its own scale and dispersion
    rng = np.random.default_rng(seed)
    n_pairs = y.size
    if n_pairs > max_pairs:
        flat = rng.choice(n_pairs, size=int(max_pairs), replace=False)
        rows, cols = np.unravel_index(flat, y.shape)
    else:
        rows, cols = np.unravel_index(np.arange(n_pairs), y.shape)
    yc = y[rows, cols]
    mc = m[rows, cols]
    pe = effective_dispersion(mc, phi[cols], scale[2 * p[rows], 2 * q[rows]].astype(np.float64))
    i_phi, i_mu = table.index(mc, pe)

    # the conformal threshold: each held-out count's mid-p score under its (tabulated) distribution; the
    # interval at q holds every count whose score is at most q (a run of counts: the mid-p CDF increases),
    # so the split-conformal quantile of the scores covers a share `level` of them (widened to hold the
    # estimate, the intervals cover at least that)
    qh = _conformal_threshold(table, yc, i_phi, i_mu, level)

    # the calibration set's coverage under the intervals as Calibration.bounds makes them (widened to hold the estimate)
    lo, hi = table.bounds_at(qh)
    cov = float(np.mean((yc >= np.minimum(lo[i_phi, i_mu], mc)) & (yc <= np.maximum(hi[i_phi, i_mu], mc))))
    log.info("intervals: level %.2f, threshold %.4f, held-out coverage %.3f over %d (spot, gene) counts; median dispersion %.3g", level, qh, cov, len(yc), float(np.median(phi)) if phi.size else float("nan"))
    return Calibration(float(level), float(qh), phi.astype(np.float64), scale, cov, int(len(yc)), table)
