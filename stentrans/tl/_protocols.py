"""The evaluation protocols as data (docs/method.md section 5).

Every protocol hides part of the measured maps ``G`` (``M`` the in-tissue
mask, ``D`` the down-sampling, ``K`` the spots D keeps), predicts them back
with every method from exactly the same input, and scores every method on
the same genes and positions with the per-gene Pearson correlation (PCC).
One :class:`Protocol` entry says

* ``train``: what the trained methods (stEnTrans and its ablations, the
  robust method) learn from: ``"G"`` (the measured maps and ``M``; the
  methods build their own pairs ``(D(G), G)``) or ``"DG"`` (``D(G)`` and
  ``D(M)``);
* ``given``: what every method predicts from (``"DG"`` or ``"G"``); the
  methods whose kind is in ``fit_given`` (the baselines: DIST learns from
  the maps it enhances) are fitted on it instead of ``train``;
* ``genes``: ``"all"`` genes; ``"heldout"``: a random
  ``heldout_fraction`` of the genes (drawn per seed) is kept out of
  ``train`` and only those genes are scored; ``"detected"``: every gene is
  fitted, only those detected in more than ``QCConfig().min_spot_fraction``
  (10 %) of the measured spots are scored (the QC rule, so that after QC
  every gene is);
* ``positions``: which positions are predicted: ``"M"`` (the in-tissue
  spots of the measured grid; the predictions of ``D(G)`` cropped to G's
  grid), ``"fine"`` (the new fine positions of ``H(M)`` present in a
  simulator's truth, ``uns["truth"]``, on the doubled grid), ``"new"``
  (the new positions of ``H(M)`` present in the truth of finer data, the
  ``truth=`` of :func:`~stentrans.tl.evaluate`) or ``"measured"`` (the
  measured spots ``M`` themselves, on the doubled grid);
* ``scores``: the names the scores get in the tables, each with the subset
  of the positions scored (``"all"``, or ``"removed"``: the spots D
  removed, ``M & ~K``), the truth compared with (``"G"`` the measured
  values; ``"mean"``/``"counts"`` the simulator's expected expression and
  counts at ``"fine"``, the finer truth's counts at ``"new"``; ``"B"``
  binomial half B of the measured counts at ``"measured"``), an optional
  ``transform`` of prediction and truth alike (``"lognorm"``), optional
  ``train``/``given``/``positions`` of their own (a score computed from
  other predictions than the protocol's), and ``references``: rows of
  pseudo-methods computed from the data alone and scored beside the
  methods (``"ceiling"``: the noise ceiling of the truth; ``"raw-half"``:
  half A itself as the prediction of half B). An ``optional`` score is
  left out when the data lack it;
* ``needs``: data a protocol needs beyond the measured spots
  (``"simulation"``: ``uns["truth"]``; ``"finer"``: the ``truth=`` AnnData).

``paper``
    The authors' protocol: trained on the pairs ``(D(G), G)`` of all genes,
    predicts ``G`` from ``D(G)``; PCC over all in-tissue spots ``M``.
    Because the training targets are the evaluation targets, the same PCC is
    also recorded over the removed spots only (``M & ~K``) as
    ``paper-removed``.
``nested`` (the honest default)
    The observed data is ``D(G)`` (mask ``D(M)``); trained on
    ``(D(D(G)), D(G))``, predicts ``G`` from ``D(G)``; PCC only over the
    spots D removed, ``M & ~K``. No method ever sees a removed spot.
``heldout-genes``
    As ``paper``, but trained on a random ``1 - heldout_fraction`` of the
    genes and only the genes never seen in training are scored, over ``M``
    (``heldout-genes``) and over ``M & ~K`` (``heldout-genes-removed``).
``truth`` (simulated data, ``uns["truth"]``)
    Trained on ``(D(G), G)`` (the ``paper`` model), then enhances
    ``Phi(G) * H(M)`` on the doubled grid; the baselines get ``G`` and
    ``M``. PCC at the new fine positions of ``H(M)`` (not measured) against
    the simulator's expected expression ``truth["mean"]`` (``truth``) and
    its counts ``truth["counts"]`` (``truth-counts``).
``realtruth`` (pseudo-spots of finer data and their truth, ``stentrans bin --truth``)
    Every method is fitted on the measured pseudo-spots ``G`` (the trained
    ones self-supervised, as in real use) and predicts the enhanced lattice;
    per-gene PCC at the new positions of ``H(M)`` against the truth's raw
    counts there (``realtruth``; :mod:`._realtruth` matches the positions by
    their half-step ``array_row``/``array_col``), and on the log-normalised
    scale (``realtruth-log``: prediction clipped at 0 and truth alike become
    ``log1p(x / l * t)``, ``l`` a position's sum over the scored genes,
    ``t`` the median of ``l`` of the truth over the scored positions,
    :func:`stentrans.metrics.log_normalize`). Genes: ``"detected"``. Does
    enhancement denoise? The measured counts are split in binomial halves
    A and B (seeded); every method is fitted on half A and predicts the
    measured positions, scored against half B (``realtruth-denoise``), beside
    half A itself (pseudo-method ``raw-half``). The noise ceiling of the
    truth's counts at the scored positions is pseudo-method ``ceiling``
    under ``realtruth`` (:func:`stentrans.io.noise_ceiling`) and,
    with the same halves log-normalised, under ``realtruth-log``. Raw
    scores use the predictions as the methods return them (``stentrans
    enhance`` would clip negative values at 0).

``realtruth-coverage`` and ``nested-coverage`` (``Score.metric`` ``"coverage"``)
    The predictive intervals of :func:`stentrans.tl.calibrate` (level
    ``interval`` of :func:`~stentrans.tl.evaluate`, default 0.9), calibrated
    from what the method is given and nothing else: at the new positions
    against the finer truth's counts (fits shared with ``realtruth``), and at
    the spots D removed against their measured counts (fits shared with
    ``nested``; genes ``"detected"`` in both, so that genes zero almost
    everywhere do not fill the table with trivial hits). Per gene: the share of truth values inside the interval
    (``coverage``) and the mean width over the gene's 5-95 % range at the
    given measured spots (``width``, :func:`stentrans.metrics.relative_width`);
    in the ``coverage`` table, not the PCC ones.

``lost`` (:mod:`._lost_protocol`)
    Per seed, random interior spots (all lattice neighbours measured, none
    of them removed) become holes; every method is fitted on the rest and
    predicts the holes; PCC over the holes (``lost``). On simulated data also
    the simulator's lost spots inside the tissue, against its truth
    (``lost-truth``, ``lost-truth-counts``).

A new protocol is one entry of :data:`PROTOCOLS`, its scores with their
figure ``label`` and results-page ``text`` (and, for a new kind of data,
position or truth, one branch of :class:`ProtocolData`; data drawn per seed
may instead name a ``resolver``), plus its name in the workflow schema's
``protocol`` enum when it needs only the measured spots
(``tests/test_workflow.py`` checks the two agree). The figures, the results
page, the command line's help and the workflow read everything else from
here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

import numpy as np
import pandas as pd

from .._errors import InputError
from ..metrics import log_normalize, pcc

log = logging.getLogger("stentrans.evaluate")


#: pseudo-methods (``Score.references``): the noise ceiling, and half A as the prediction of half B
CEILING, RAW_HALF = "ceiling", "raw-half"


@dataclass(frozen=True)
class Score:
    """One score of a protocol: its name in the tables, positions subset, truth (module documentation)."""

    name: str
    subset: str = "all"
    truth: str = "G"
    #: panel title in the figures (pl.pcc_boxplots) and column name on the results page
    label: str = ""
    #: what the score is, in one sentence on the results page (report.page; empty: no section of its own)
    text: str = ""
    optional: bool = False
    transform: str | None = None
    #: the score's own data and positions (None: the protocol's)
    train: str | None = None
    given: str | None = None
    positions: str | None = None
    #: pseudo-methods the data alone scores beside the methods
    references: tuple[str, ...] = ()
    #: method kind -> settings of its fit for this score, e.g. the robust
    #: method's own estimate at measured spots (``keep_measured=False``)
    fit_settings: tuple[tuple[str, tuple[tuple[str, object], ...]], ...] = ()
    #: ``"pcc"`` (per-gene Pearson correlation, the ``per_gene`` table) or
    #: ``"coverage"`` (predictive intervals calibrated from the data the
    #: method is given, :func:`stentrans.tl.calibrate`: per-gene share of the
    #: truth inside them and mean width over the trivial interval, the
    #: ``coverage`` table)
    metric: str = "pcc"


#: denoising scores: the robust method returns its estimate at the measured spots instead of their counts
#: (the interpolators are exact there: their estimate is the measured value itself)
OWN_ESTIMATE = (("robust", (("keep_measured", False),)),)


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol (see the module documentation)."""

    name: str
    train: str
    given: str
    positions: str
    scores: tuple[Score, ...]
    genes: str = "all"
    needs: str | None = None
    #: method kinds fitted on ``given`` instead of ``train``
    fit_given: tuple[str, ...] = ("baseline",)
    #: ``"module:function"`` building the protocol's :class:`Spec` list itself
    #: (``f(protocol, seed, data, heldout_fraction)``), for data drawn per seed
    resolver: str | None = None

    @property
    def needs_truth(self) -> bool:
        """Needs a truth beyond the measured spots (simulated or finer)."""
        return self.needs is not None


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            "paper",
            train="G",
            given="DG",
            positions="M",
            scores=(
                Score("paper", label="paper (all spots)", text="`paper`: the authors' protocol; train on (D(G), G) of all genes, predict G, PCC over all in-tissue spots (the model trained on these values)"),
                Score("paper-removed", "removed", label="paper (removed spots)", text="`paper-removed`: the `paper` predictions scored over the removed spots only"),
            ),
        ),
        Protocol(
            "nested",
            train="DG",
            given="DG",
            positions="M",
            scores=(Score("nested", "removed", label="nested (removed spots)", text="`nested`: the model sees only the down-sampled data D(G) and predicts the spots D removed; PCC over those spots only (what a user gets)"),),
        ),
        Protocol(
            "heldout-genes",
            train="G",
            given="DG",
            positions="M",
            genes="heldout",
            scores=(
                Score("heldout-genes", label="held-out genes (all spots)", text="`heldout-genes`: as `paper`, trained on 80 % of the genes, scored on the 20 % never seen"),
                Score("heldout-genes-removed", "removed", label="held-out genes (removed spots)"),
            ),
        ),
        Protocol(
            "truth",
            train="G",
            given="G",
            positions="fine",
            needs="simulation",
            scores=(
                Score("truth", truth="mean", label="2x truth (mean)", text="`truth`: simulated data, scored against the simulator's 2x truth at the new positions"),
                Score("truth-counts", truth="counts", optional=True, label="2x truth (counts)"),
            ),
        ),
        Protocol(
            "realtruth",
            train="G",
            given="G",
            positions="new",
            genes="detected",
            needs="finer",
            # the real truth has a section of its own on the results page (report.page), hence no texts
            scores=(
                Score("realtruth", truth="counts", references=(CEILING,), label="real 2x truth (counts)"),
                Score("realtruth-log", truth="counts", transform="lognorm", references=(CEILING,), label="real 2x truth (log)"),
                Score("realtruth-denoise", truth="B", train="A", given="A", positions="measured", references=(RAW_HALF,), fit_settings=OWN_ESTIMATE, label="real truth, denoising (measured spots)"),
            ),
        ),
        Protocol(
            "realtruth-coverage",
            train="G",
            given="G",
            positions="new",
            genes="detected",
            needs="finer",
            scores=(Score("realtruth-coverage", truth="counts", metric="coverage", label="real 2x truth: interval coverage", text="`realtruth-coverage`: the predictive interval (level 0.9) calibrated from the measured pseudo-spots alone; share of the truth's counts at new positions inside it, and its mean width over each gene's 5-95 % range at the measured spots"),),
        ),
        Protocol(
            "nested-coverage",
            train="DG",
            given="DG",
            positions="M",
            genes="detected",
            scores=(Score("nested-coverage", "removed", metric="coverage", label="nested: interval coverage (removed spots)", text="`nested-coverage`: intervals calibrated on D(G) alone; share of the removed spots' measured counts inside them, and their mean width over the trivial interval"),),
        ),
        Protocol(
            "lost",
            train="holes",
            given="holes",
            positions="holes",
            scores=(
                Score("lost", label="lost spots (holes)", text="`lost`: interior in-tissue spots removed (holes, never edge spots), every method fitted on the rest; PCC over the removed spots only"),
                Score("lost-truth", truth="mean", optional=True, label="lost spots vs 2x truth (mean)", text="`lost-truth`: simulated data, the simulator's own lost spots predicted and scored against its truth"),
                Score("lost-truth-counts", truth="counts", optional=True, label="lost spots vs 2x truth (counts)", text="`lost-truth-counts`: as `lost-truth`, against the truth's counts"),
            ),
            resolver="stentrans.tl._lost_protocol:resolve",
        ),
    )
}


def _lognorm(values, reference) -> np.ndarray:
    """``values`` (clipped at 0) log-normalised to the median library size of ``reference`` (both positions x genes)."""
    target = float(np.median(np.asarray(reference, dtype=np.float64).sum(axis=1)))
    return log_normalize(np.maximum(np.asarray(values, dtype=np.float64), 0.0), target)


#: transforms of prediction and truth alike: ``f(values, truth) -> values on the score's scale``
TRANSFORMS = {"lognorm": _lognorm}

#: score names in the tables, by protocol
SCORE_NAMES = {name: tuple(s.name for s in p.scores) for name, p in PROTOCOLS.items()}
#: every score name, in protocol order (the tables' row order)
SCORE_ORDER = tuple(n for names in SCORE_NAMES.values() for n in names)
#: every score by name, in protocol order: what the figures (labels) and the results page (texts) read
SCORES: dict[str, Score] = {s.name: s for p in PROTOCOLS.values() for s in p.scores}

#: what a protocol's ``needs`` asks of the data, as errors say it
NEEDS = {
    "simulation": "simulated data with uns['truth'] (stentrans.datasets.simulate)",
    "finer": "the truth of finer data: truth=TRUTH.h5ad (stentrans bin --spacing A --truth TRUTH.h5ad)",
}


def as_protocols(protocol, has_truth: bool, has_finer: bool = False, source=None) -> list[str]:
    """Protocol names from a name, a comma list, a list, or ``"all"`` (those the data allow).

    ``has_truth``: the data hold a simulator's truth; ``has_finer``: a truth
    of finer data is given. A protocol named whose data are missing is an
    :class:`InputError` (naming ``source``), before anything is fitted.
    """
    if isinstance(protocol, str):
        protocol = [p.strip() for p in protocol.split(",") if p.strip()]
    have = {None: True, "simulation": bool(has_truth), "finer": bool(has_finer)}
    out: list[str] = []
    for p in protocol:
        if p == "all":
            out += [n for n, x in PROTOCOLS.items() if have.get(x.needs, False)]
        elif p in PROTOCOLS:
            if not have.get(PROTOCOLS[p].needs, False):
                raise InputError(source, "protocol", f"{p!r} needs {NEEDS[PROTOCOLS[p].needs]}")
            out.append(p)
        else:
            raise InputError(source, "protocol", f"{p!r}: must be one of {', '.join(PROTOCOLS)} or all")
    return list(dict.fromkeys(out))


# ---------------------------------------------------------------------------
# the data every protocol reads
# ---------------------------------------------------------------------------
class ProtocolData:
    """Maps, masks, positions and truths of one data set, as the protocols name them.

    ``truth``: the truth of finer data (an AnnData or the path of one,
    ``stentrans bin --truth``) for the ``"new"`` positions.
    """

    def __init__(self, adata, genes=None, layer=None, truth=None, score_genes=None):
        from ..grid import to_grid
        from ..lattice import downsample, kept_mask

        gd = to_grid(adata, genes=genes, layer=layer)
        self.adata = adata
        self.G = gd.maps
        self.M = gd.mask
        self.grid = gd.grid
        self.lattice = gd.grid.lattice
        self.genes = np.asarray(gd.genes).astype(str)
        # score_idx: sorted columns of the genes scored (None: every gene, by each protocol's rule); the methods are fitted on all
        names = None if score_genes is None else np.asarray(list(score_genes)).astype(str)
        pos = None if names is None else pd.Index(self.genes).get_indexer(names)
        if pos is not None and (pos.size == 0 or (pos < 0).any()):
            raise InputError(adata.uns.get("stentrans", {}).get("source"), "score_genes", f"not among the {len(self.genes)} evaluated genes: {', '.join(names[pos < 0][:5])}" if pos.size else "no gene to score")
        self.score_idx = None if pos is None else np.unique(pos)
        self.K = kept_mask(self.M, self.lattice)
        self.DG, self.DM = downsample(self.G * self.M, self.M, self.lattice)
        # base positions of the measured-grid protocols: all in-tissue spots
        self.P, self.Q = np.nonzero(self.M)
        self.removed = ~self.K[self.P, self.Q]
        self.truth_values = self.G[:, self.P, self.Q].T  # (n_M, n_genes)
        if not self.removed.any():
            raise InputError(adata.uns.get("stentrans", {}).get("source"), "spots", "down-sampling removes no in-tissue spot; nothing to evaluate")
        self._fine = None
        self._truth_input = truth
        self._finer = None
        self._halves: dict = {}
        self._detected = None

    #: datasets that depend on the seed (drawn per seed)
    SEEDED_DATA = frozenset({"A"})

    def dataset(self, name: str, seed: int = 0):
        """``(maps, mask)`` of a protocol's ``train`` / ``given``."""
        if name == "G":
            return self.G, self.M
        if name == "DG":
            return self.DG, self.DM
        if name == "A":
            return self.halves(seed)[0], self.M
        raise KeyError(name)

    def positions(self, name: str):
        """``(P, Q, shape)``: predicted positions and the grid the predictions are cropped to."""
        if name == "M":
            return self.P, self.Q, self.G.shape[1:]
        up = (2 * self.G.shape[1], 2 * self.G.shape[2])
        if name == "fine":
            Pf, Qf, _, _ = self.fine()
            return Pf, Qf, up
        if name == "new":
            return self.finer().P, self.finer().Q, up
        if name == "measured":
            return 2 * self.P, 2 * self.Q, up
        raise KeyError(name)

    def subset(self, positions: str, name: str) -> np.ndarray:
        """Rows of ``positions`` a score is computed over."""
        n = len(self.positions(positions)[0])
        if name == "all":
            return np.ones(n, dtype=bool)
        if name == "removed" and positions == "M":
            return self.removed
        raise KeyError((positions, name))

    def truth(self, positions: str, name: str, seed: int = 0):
        """``(n_positions, n_genes)`` values a score compares with (None: the data lack them)."""
        if positions == "M" and name == "G":
            return self.truth_values
        if positions == "fine" and name in ("mean", "counts"):
            _, _, mean, counts = self.fine()
            return mean if name == "mean" else counts
        if positions == "new" and name == "counts":
            return self.finer().counts
        if positions == "measured" and name == "B":
            return self.halves(seed)[2]
        raise KeyError((positions, name))

    def scored(self, idx: np.ndarray) -> np.ndarray:
        """The columns of ``idx`` that are scored (all of them without ``score_genes``)."""
        return np.asarray(idx) if self.score_idx is None else np.intersect1d(idx, self.score_idx)

    def genes_scored(self, rule: str) -> np.ndarray:
        """Columns scored under a protocol's ``genes`` rule ``"all"`` or ``"detected"``."""
        if rule == "all":
            return np.arange(len(self.genes))
        if rule == "detected":
            if self._detected is None:
                from ..pp import SCORED_SPOT_FRACTION as frac

                keep = np.flatnonzero((self.truth_values > 0).sum(axis=0) > frac * self.truth_values.shape[0])
                if keep.size == 0:
                    raise InputError(self.adata.uns.get("stentrans", {}).get("source"), "genes", f"no gene is detected in more than {frac:g} of the measured spots")
                log.info("%d of %d genes detected in more than %g of the measured spots are scored", keep.size, len(self.genes), frac)
                self._detected = keep
            return self._detected
        raise KeyError(rule)

    def reference(self, name: str, score: Score, positions: str, seed: int, sel: np.ndarray, gene_idx: np.ndarray, truth: np.ndarray) -> np.ndarray:
        """Per-gene score of pseudo-method ``name`` (module documentation) against ``truth`` (raw: rows ``sel`` of the positions, genes ``gene_idx``)."""
        from . import _realtruth

        if name == CEILING and positions == "new":
            return _realtruth.ceiling(truth, seed, None if score.transform is None else TRANSFORMS[score.transform])
        if name == RAW_HALF and positions == "measured" and score.truth == "B":
            a = self.halves(seed)[1][sel][:, gene_idx]
            if score.transform is not None:
                a, truth = TRANSFORMS[score.transform](a, truth), TRANSFORMS[score.transform](truth, truth)
            return pcc(a, truth)
        raise KeyError((name, positions, score.truth))

    # -- binomial halves of the measured counts ------------------------------
    def halves(self, seed: int):
        """``(maps of half A, values of half A, values of half B)`` at the measured spots, at ``seed``."""
        from . import _realtruth

        seed = int(seed)
        if seed not in self._halves:
            A, B = _realtruth.measured_halves(self.truth_values, seed, self.score_idx)
            maps = np.zeros_like(self.G)
            maps[:, self.P, self.Q] = A.T
            self._halves[seed] = (maps, np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64))
        return self._halves[seed]

    # -- truths ---------------------------------------------------------------
    def fine(self):
        """New fine positions of H(M) present in the truth, and truth values."""
        if self._fine is None:
            from ._simtruth import fine_truth

            self._fine = fine_truth(self)
        return self._fine

    def finer(self):
        """The truth of finer data at the new positions (:class:`._realtruth.FinerTruth`)."""
        if self._finer is None:
            from ._realtruth import FinerTruth

            if self._truth_input is None:
                raise InputError(self.adata.uns.get("stentrans", {}).get("source"), "truth", "protocol 'realtruth' needs the truth of finer data: truth=TRUTH.h5ad (stentrans bin --spacing A --truth TRUTH.h5ad)")
            self._finer = FinerTruth(self._truth_input, self.grid, self.M, self.genes, binning=self.adata.uns.get("binning"))
        return self._finer


# ---------------------------------------------------------------------------
# one protocol at one seed
# ---------------------------------------------------------------------------
class ScoreSet(NamedTuple):
    """One score of a :class:`Spec`: name, row selector into the positions, truth, transform of the predictions."""

    name: str
    sel: np.ndarray
    #: ``(n_selected, n_scored_genes)`` on the score's scale
    truth: np.ndarray
    #: ``f(predictions) -> predictions on the score's scale`` (None: as predicted)
    transform: Callable | None = None
    #: :attr:`Score.metric`
    metric: str = "pcc"


class Reference(NamedTuple):
    """A pseudo-method's per-gene scores, computed from the data alone (``Score.references``)."""

    score: str
    method: str
    pcc: np.ndarray
    n_spots: int


@dataclass
class Spec:
    """One protocol's predictions from one input at one seed, resolved against the data.

    ``train`` and ``given`` are ``(key, maps, mask)``: fitted models are shared
    between specs with the same key (and seed); ``positions`` is ``(key, P, Q,
    shape)``; ``score_sets`` are :class:`ScoreSet`; ``references`` are
    :class:`Reference` rows.
    """

    protocol: Protocol
    train: tuple
    given: tuple
    positions: tuple
    gene_idx: np.ndarray
    score_sets: list
    references: list = field(default_factory=list)
    #: method kind -> extra settings of its fit (:attr:`Score.fit_settings`)
    fit_settings: dict = field(default_factory=dict)


def _data(data: ProtocolData, name: str, seed: int):
    """``(key, maps, mask)`` of a dataset name; the key names the seed where the data depend on it."""
    maps, mask = data.dataset(name, seed)
    return (f"{name}-{seed}" if name in ProtocolData.SEEDED_DATA else name), maps, mask


def resolve(name: str, seed: int, data: ProtocolData, heldout_fraction: float) -> list[Spec]:
    """The :class:`Spec` s of protocol ``name`` at ``seed``: one per distinct ``(train, given, positions)`` of its scores."""
    try:
        proto = PROTOCOLS[name]
    except KeyError:
        raise InputError(None, "protocol", f"{name!r}: must be one of {', '.join(PROTOCOLS)}") from None
    if proto.resolver is not None:
        import importlib

        mod, fn = proto.resolver.split(":")
        return getattr(importlib.import_module(mod), fn)(proto, seed, data, heldout_fraction)
    all_genes = np.arange(len(data.genes))
    train_genes = gene_idx = all_genes
    if proto.genes == "heldout":
        n = len(all_genes)
        if n < 2:
            raise InputError(None, "genes", "heldout-genes needs at least 2 genes")
        n_test = int(min(n - 1, max(1, round(float(heldout_fraction) * n))))
        perm = np.random.default_rng(int(seed)).permutation(n)
        gene_idx, train_genes = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    elif proto.genes != "all":
        gene_idx = data.genes_scored(proto.genes)
    if (gene_idx := data.scored(gene_idx)).size == 0:
        raise InputError(data.adata.uns.get("stentrans", {}).get("source"), "score_genes", f"protocol {name!r} scores no gene of score_genes")
    subset_genes = len(gene_idx) != len(all_genes)
    specs: dict = {}
    for s in proto.scores:
        tr, gv, pos = s.train or proto.train, s.given or proto.given, s.positions or proto.positions
        truth = data.truth(pos, s.truth, seed)
        if truth is None and s.optional:
            continue
        key = (tr, gv, pos, s.fit_settings)
        if key not in specs:
            train_key, train_maps, train_mask = _data(data, tr, seed)
            if proto.genes == "heldout":
                train_maps, train_key = train_maps[train_genes], f"{train_key}-heldout-{seed}"
            specs[key] = Spec(proto, (train_key, train_maps, train_mask), _data(data, gv, seed), (pos,) + tuple(data.positions(pos)), gene_idx, [], [], {kind: dict(kv) for kind, kv in s.fit_settings})
        spec = specs[key]
        sel = data.subset(pos, s.subset)
        if subset_genes:
            truth = truth[:, gene_idx]
        if s.subset != "all":
            truth = truth[sel]
        transform = None
        if s.transform is not None:
            transform = partial(TRANSFORMS[s.transform], reference=truth)
        spec.score_sets.append(ScoreSet(s.name, sel, truth if transform is None else TRANSFORMS[s.transform](truth, truth), transform, s.metric))
        for ref in s.references:
            spec.references.append(Reference(s.name, ref, data.reference(ref, s, pos, seed, sel, gene_idx, truth), int(sel.sum())))
    return list(specs.values())
