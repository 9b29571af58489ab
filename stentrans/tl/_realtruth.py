"""The real 2x truth of finer data for protocol ``realtruth``: its new positions on the enhanced lattice, binomial halves, the noise ceiling.

``stentrans bin --truth TRUTH.h5ad`` (:mod:`stentrans.io`) writes
the same disks as the measured pseudo-spots at every position of the
enhanced lattice in tissue, with the half-step ``array_row``/``array_col``
``stentrans enhance`` writes and ``obs["is_imputed"]`` marking the new
positions (docs/method.md section 6). Here:

* :class:`FinerTruth` matches the truth's new positions to the new positions
  of ``H(M)`` on the doubled grid of the measured spots, by those
  coordinates, and takes the truth's raw counts there for the evaluated
  genes (matched by name). Lattice coordinates do not tell spacings apart:
  when both carry ``uns["binning"]``, its lattice, spacing, spot diameter,
  origin and input checksum must agree. Fewer than :data:`MIN_MATCHED` of the truth's new
  positions among the enhanced ones is an error naming the truth file (the
  truth was binned from other spots, or QC dropped spots).
* :func:`measured_halves` splits the measured spots' counts into two
  independent binomial halves (each molecule to half A or half B with
  probability 1/2, :func:`stentrans.io.binomial_split`): the
  methods are fitted on half A and scored against half B at the measured
  positions (``realtruth-denoise``), beside half A itself (``raw-half``).
* :func:`ceiling` is the per-gene noise ceiling of the truth's counts at
  the scored positions (:func:`stentrans.io.noise_ceiling`: PCC of
  two binomial halves, Spearman-Brown corrected, ``sqrt(2 r / (1 + r))``).

Random draws: the halves of evaluation seed ``s`` come from
``numpy.random.default_rng((s, 1))``, the ceiling's from
``numpy.random.default_rng((s, 2))``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._errors import InputError
from ..metrics import pcc, spearman_brown

log = logging.getLogger("stentrans.evaluate")

#: the fraction of the truth's new positions that must be among the enhanced new positions
MIN_MATCHED = 0.9
#: second entries of the seed sequences of the random draws (module docstring)
_HALVES_STREAM, _CEILING_STREAM = 1, 2


def _load(truth):
    """``(AnnData, source)`` of a truth AnnData or the path of one."""
    import anndata as ad

    if isinstance(truth, (str, Path)):
        path = Path(truth)
        if not path.exists():
            raise InputError(path, "truth", "file not found")
        try:
            return ad.read_h5ad(path), str(path)
        except Exception as err:  # noqa: BLE001 - any unreadable file is one line naming it
            raise InputError(path, "truth", f"not a readable .h5ad ({type(err).__name__}: {err})") from None
    if not hasattr(truth, "obs") or not hasattr(truth, "var_names"):
        raise InputError(None, "truth", f"expected an AnnData or the path of one, got {type(truth).__name__}")
    st = truth.uns.get("stentrans", {}) if isinstance(truth.uns.get("stentrans"), dict) else {}
    return truth, f"truth AnnData ({st.get('source', 'no source recorded')})"


#: what the measured spots' and the truth's ``uns["binning"]`` must agree on (lattice coordinates alone do not tell spacings apart)
BINNING_KEYS = ("lattice", "spacing", "spot_diameter", "origin", "input_sha256")


def _same_binning(spots: dict | None, truth: dict | None, source) -> None:
    """Both binning records (when present) describe the same lattice of the same input."""
    if not isinstance(spots, dict) or not isinstance(truth, dict):
        return
    for key in BINNING_KEYS:
        if key in spots and key in truth and not np.array_equal(np.asarray(spots[key]), np.asarray(truth[key])):
            raise InputError(source, f'uns["binning"]["{key}"]', f"{truth[key]!r} differs from the spots' {spots[key]!r}: evaluate the spots this truth was binned with (stentrans bin -o SPOTS.h5ad --truth TRUTH.h5ad)")


def new_positions(M: np.ndarray, lattice: str) -> np.ndarray:
    """The new positions of ``H(M)`` on the doubled grid (``H(M)`` without the measured spots)."""
    from ..lattice import enhanced_mask

    H = enhanced_mask(M, lattice)
    H[::2, ::2] &= ~np.asarray(M, dtype=bool)
    return H


class FinerTruth:
    """The truth of finer data at the new enhanced positions of the measured spots.

    Attributes
    ----------
    source
        The truth file (or a description of the AnnData given).
    P, Q
        Pixels of the scored positions on the doubled grid (``grid.up()``).
    counts
        ``(n_positions, n_genes)`` float64 raw counts of the truth there,
        columns in the order of ``genes``.
    n_new, n_enhanced
        The truth's new positions, and the new positions of ``H(M)``.
    """

    def __init__(self, truth, grid, M: np.ndarray, genes, min_matched: float = MIN_MATCHED, binning: dict | None = None):
        adata, self.source = _load(truth)
        _same_binning(binning, adata.uns.get("binning"), self.source)
        obs = adata.obs
        for col in ("array_row", "array_col"):
            if col not in obs:
                raise InputError(self.source, f'obs["{col}"]', "missing: write the truth with stentrans bin --truth")
        if "is_imputed" in obs:
            new = obs["is_imputed"].to_numpy().astype(bool)
        elif "is_measured" in obs:
            new = ~obs["is_measured"].to_numpy().astype(bool)
        else:
            raise InputError(self.source, 'obs["is_imputed"]', "missing: which positions are new is not recorded (stentrans bin --truth writes it)")
        rr = obs["array_row"].to_numpy(dtype=float)
        cc = obs["array_col"].to_numpy(dtype=float)
        up = grid.up()
        pr, pc = (rr - up.row0) / up.step, (cc - up.col0) / up.step
        fin = np.isfinite(pr) & np.isfinite(pc)
        P = np.where(fin, np.rint(np.where(fin, pr, 0)), -1).astype(np.int64)
        Q = np.where(fin, np.rint(np.where(fin, pc, 0)), -1).astype(np.int64)
        on = fin & (np.abs(pr - P) < 1e-6) & (np.abs(pc - Q) < 1e-6)
        on &= (P >= 0) & (Q >= 0) & (P < up.shape[0]) & (Q < up.shape[1])
        Hn = new_positions(M, grid.lattice)
        found = new & on
        found[found] = Hn[P[found], Q[found]]
        self.n_new, self.n_enhanced = int(new.sum()), int(Hn.sum())
        if self.n_new == 0 or found.sum() < min_matched * self.n_new:
            raise InputError(
                self.source,
                "array_row/array_col",
                f"{int(found.sum())} of the truth's {self.n_new} new positions are among the {self.n_enhanced} new positions "
                f"stentrans enhance writes for these spots (at least {min_matched:.0%} needed): evaluate the spots this truth was binned with "
                "(stentrans bin -o SPOTS.h5ad --truth TRUTH.h5ad), with QC that keeps every spot",
            )
        rows = np.flatnonzero(found)
        key = P[rows] * up.shape[1] + Q[rows]
        if len(np.unique(key)) != len(key):
            raise InputError(self.source, "array_row/array_col", "a new position appears more than once")
        cols = pd.Index(adata.var_names.astype(str)).get_indexer(np.asarray(genes).astype(str))
        if (cols < 0).any():
            missing = np.asarray(genes)[cols < 0]
            raise InputError(self.source, "var_names", f"{len(missing)} evaluated gene(s) not in the truth, e.g. {missing[0]}")
        X = adata.X[rows][:, cols]
        self.counts = np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)
        self.P, self.Q = P[rows], Q[rows]
        log.info("realtruth: %d of the truth's %d new positions scored (%d new enhanced positions; %d truth positions in all)", len(rows), self.n_new, self.n_enhanced, adata.n_obs)


def measured_halves(values: np.ndarray, seed: int, scored=None):
    """Binomial halves ``(A, B)`` of the measured spots' counts ``values`` (spots x genes) at evaluation seed ``seed``.

    ``scored`` (columns): the scored genes' halves are drawn first, from the
    same stream as an evaluation of those genes alone; the other genes'
    (fitted, not scored) from a stream of their own. So the halves of a gene
    that is scored do not depend on which other genes the methods were fitted on.
    """
    from ..io import binomial_split

    values = np.asarray(values)
    if scored is None or len(scored) == values.shape[1]:
        return binomial_split(values, np.random.default_rng((int(seed), _HALVES_STREAM)))
    scored = np.asarray(scored)
    rest = np.setdiff1d(np.arange(values.shape[1]), scored)
    A, B = np.empty_like(values), np.empty_like(values)
    A[:, scored], B[:, scored] = binomial_split(np.ascontiguousarray(values[:, scored]), np.random.default_rng((int(seed), _HALVES_STREAM)))
    if rest.size:
        A[:, rest], B[:, rest] = binomial_split(np.ascontiguousarray(values[:, rest]), np.random.default_rng((int(seed), _HALVES_STREAM, 1)))
    return A, B


def ceiling(counts: np.ndarray, seed: int, transform=None) -> np.ndarray:
    """Per-gene noise ceiling of the truth's ``counts`` (positions x genes) at evaluation seed ``seed``.

    Raw counts: :func:`stentrans.io.noise_ceiling`. With a
    ``transform`` ``f(values, reference)`` (the ``realtruth-log`` scale):
    the same two binomial halves (same draws), each half ``h`` becomes
    ``f(h, h)`` (log-normalised to its own median library size), then their
    PCC, Spearman-Brown corrected (an approximation: the correction assumes
    the score is linear in the counts).
    """
    from ..io import binomial_split, noise_ceiling

    counts = np.asarray(counts)
    if transform is None:
        return noise_ceiling(counts, np.random.default_rng((int(seed), _CEILING_STREAM)))
    a, b = binomial_split(counts, np.random.default_rng((int(seed), _CEILING_STREAM)))
    return spearman_brown(pcc(transform(a, a), transform(b, b)))
