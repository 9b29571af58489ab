"""The evaluation driver: every method of the registry under the protocols, per-gene PCC.

The protocols are data (:mod:`._protocols`); methods are registry entries
(:mod:`stentrans.models.registry`) reached only through the
:class:`~stentrans.models.base.Enhancer` / :class:`~stentrans.models.base.Fitted`
interface: a method is fitted once per training data (and seed, for the
registry's ``seeded`` methods) and predicts from exactly the input the
protocol gives every method. Seeds change the models' initialisation and
batch order (and the held-out genes); deterministic methods are predicted
once per input and reused over seeds and protocols.

A gene whose truth (or prediction) is constant over the scored positions has
no PCC: it is ``NaN`` in the per-gene table and counted in ``n_excluded``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .._errors import InputError, naming_file
from ..grid import source_of
from ..metrics import pcc
from ..models import registry
from ._protocols import CEILING, NEEDS, PROTOCOLS, SCORE_ORDER, ProtocolData, Spec, as_protocols, resolve

log = logging.getLogger("stentrans.evaluate")

#: columns of the per-gene table
PER_GENE_COLUMNS = ["gene", "method", "protocol", "seed", "pcc", "n_spots"]
COVERAGE_COLUMNS = ["gene", "method", "protocol", "seed", "coverage", "width", "n_spots"]


@dataclass
class EvaluateConfig:
    """Settings of an evaluation run (their defaults, written once)."""

    protocol: str = field(
        default="nested",
        metadata={"help": f"{', '.join(PROTOCOLS)}; a comma list, or all (those the data allow). " + "; ".join(f"{n} needs {NEEDS[p.needs]}" for n, p in PROTOCOLS.items() if p.needs)},
    )
    seeds: int = field(default=3, metadata={"help": "number of seeds (0 .. N-1)"})
    heldout_fraction: float = field(default=0.2, metadata={"help": "fraction of the genes held out of training in heldout-genes"})


_EV = EvaluateConfig()


def _pad_to(mask: np.ndarray, shape) -> np.ndarray:
    out = np.zeros(shape, dtype=bool)
    out[: mask.shape[0], : mask.shape[1]] = mask
    return out


class _Runner:
    """Fits and predictions of every method, shared between protocols and seeds."""

    def __init__(self, data: ProtocolData, settings: dict, device, progress, chunk: int = 512):
        self.data = data
        self.settings = settings  # method -> settings of registry.make
        self.device = device
        self.progress = progress
        self.chunk = chunk
        self.fitted: dict = {}
        self.values: dict = {}
        self.calibrations: dict = {}
        self.timings: dict[str, float] = {}

    def _tick(self, key, t0):
        self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - t0

    def fit(self, method: str, spec: Spec, seed: int):
        """The fitted model of ``method`` for ``spec`` at ``seed`` (fitted on first use)."""
        entry = registry.get(method)
        key, maps, mask = spec.given if entry.kind in spec.protocol.fit_given else spec.train
        extra = spec.fit_settings.get(entry.kind, {})
        fkey = (method, key, int(seed) if entry.seeded else None, tuple(sorted(extra.items())))
        if fkey not in self.fitted:
            log.info("fitting %s on %s (%d genes, seed %s%s)", method, key, maps.shape[0], fkey[2], "".join(f", {k}={v}" for k, v in extra.items()))
            t0 = time.perf_counter()
            enhancer = registry.make(method, **{**self.settings.get(method, {}), **extra})
            with naming_file(source_of(self.data.adata)):  # the method's errors about the data name the input
                self.fitted[fkey] = enhancer.fit(maps, mask, self.data.lattice, seed=int(seed), device=self.device, progress=self.progress)
            self._tick(f"fit:{method}", t0)
            log.info("%s fitted in %.1f s", method, time.perf_counter() - t0)
        return fkey, self.fitted[fkey]

    def predict(self, method: str, spec: Spec, seed: int) -> np.ndarray:
        """Values ``(n_positions, n_scored_genes)`` of ``method`` in ``spec``."""
        fkey, fitted = self.fit(method, spec, seed)
        gkey, maps, mask = spec.given
        pkey, P, Q, shape = spec.positions
        # deterministic methods: every scored gene once per input; seeded ones: the genes scored here
        score_idx = self.data.score_idx
        genes = spec.gene_idx if registry.get(method).seeded else score_idx
        vkey = (fkey, gkey, pkey, None if genes is None else genes.tobytes())
        if vkey not in self.values:
            want = np.zeros(shape, dtype=bool)
            want[P, Q] = True
            t0 = time.perf_counter()
            hr = fitted.predict(maps, mask, _pad_to(want, (2 * mask.shape[0], 2 * mask.shape[1])), genes=genes, chunk=self.chunk, progress=False)
            self._tick(f"predict:{method}", t0)
            vals = hr[:, : shape[0], : shape[1]][:, P, Q].T
            if not np.isfinite(vals).all():
                raise RuntimeError(f"method {method} returned non-finite values")
            self.values[vkey] = np.ascontiguousarray(vals, dtype=np.float32)
        vals = self.values[vkey]
        if genes is None:
            return vals[:, spec.gene_idx]
        return vals if genes is spec.gene_idx else vals[:, np.searchsorted(genes, spec.gene_idx)]

    def coverage(self, method: str, spec: Spec, seed: int, vals: np.ndarray, ss, level: float) -> pd.DataFrame:
        """Per-gene coverage and relative width of ``method``'s intervals at the positions of score set ``ss``."""
        from ..metrics import coverage, relative_width
        from ._intervals import calibrate, trivial_width

        fkey, fitted = self.fit(method, spec, seed)
        gkey, maps, mask = spec.given
        ckey = (fkey, gkey, spec.gene_idx.tobytes(), float(level))
        if ckey not in self.calibrations:
            t0 = time.perf_counter()
            self.calibrations[ckey] = calibrate(fitted, maps, mask, self.data.lattice, level=level, genes=spec.gene_idx, seed=int(seed), chunk=self.chunk)
            self._tick(f"calibrate:{method}", t0)
        cal = self.calibrations[ckey]
        _, P, Q, _ = spec.positions
        lo, hi = cal.bounds(vals[ss.sel], P[ss.sel], Q[ss.sel])
        p, q = np.nonzero(mask)
        trivial = trivial_width(np.asarray(maps)[spec.gene_idx][:, p, q].T)
        return pd.DataFrame({"gene": self.data.genes[spec.gene_idx], "method": method, "protocol": ss.name, "seed": seed, "coverage": coverage(lo, hi, ss.truth), "width": relative_width(lo, hi, trivial), "n_spots": int(ss.sel.sum())})[COVERAGE_COLUMNS]


def _rows(genes, method: str, name: str, seed: int, r: np.ndarray, n_spots: int) -> pd.DataFrame:
    """Per-gene rows of one score (and its log line)."""
    med = np.nanmedian(r) if np.isfinite(r).any() else np.nan
    log.info("%-22s %-18s seed %d: median PCC %.4f over %d genes (%d excluded), %d spots", name, method, seed, med, int(np.isfinite(r).sum()), int(np.isnan(r).sum()), n_spots)
    return pd.DataFrame({"gene": genes, "method": method, "protocol": name, "seed": seed, "pcc": r, "n_spots": n_spots})


def as_methods(methods, ablation: bool) -> list[str]:
    """Registry names from a comma list or a list (plus the paper's ablations)."""
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    methods = [m.lower() for m in methods]
    if ablation:
        methods = list(methods) + [m for m in registry.ABLATIONS if m not in methods]
    bad = [m for m in methods if m not in registry.METHODS]
    if bad:
        raise InputError(None, "methods", f"unknown method(s) {', '.join(bad)}: choose from {', '.join(sorted(registry.METHODS))}")
    if not methods:
        raise InputError(None, "methods", "no method to evaluate")
    return list(dict.fromkeys(methods))


def _default_epochs() -> int:
    from ..models.paper.config import TrainConfig

    return TrainConfig().epochs


def _settings_by_method(settings: dict | None, methods) -> dict:
    """``{method: settings of its fit}`` from settings keyed by kind or method name (a method's own win)."""
    settings = dict(settings or {})
    bad = [k for k in settings if k not in registry.KINDS and k not in registry.METHODS]
    if bad:
        raise InputError(None, "settings", f"{', '.join(map(repr, bad))}: keys are method kinds ({', '.join(registry.KINDS)}) or method names")
    out = {}
    for m in methods:
        kw = {**dict(settings.get(registry.get(m).kind) or {}), **dict(settings.get(m) or {})}
        kw.pop("seed", None)
        out[m] = kw
    return out


def evaluate(
    adata,
    *,
    protocol=_EV.protocol,
    methods: Sequence[str] = registry.DEFAULT_EVAL_METHODS,
    seeds: Sequence[int] | int = _EV.seeds,
    settings: dict | None = None,
    ablation: bool = False,
    heldout_fraction: float = _EV.heldout_fraction,
    device="auto",
    progress: bool = True,
    genes=None,
    layer: str | None = None,
    keep_genes=None,
    dataset: str | None = None,
    truth=None,
    interval: float = 0.9,
    score_genes=None,
) -> dict:
    """Per-gene PCC of the registry's methods under the evaluation protocols.

    Parameters
    ----------
    adata
        Measured AnnData (:func:`stentrans.read`, usually after
        :func:`stentrans.pp.qc`); simulated data (``uns["truth"]``) also
        allows the ``truth`` protocol, pseudo-spots of finer data
        (``stentrans bin``) with their ``truth`` the ``realtruth`` protocol.
    protocol
        ``"paper"``, ``"nested"`` (default), ``"heldout-genes"``, ``"truth"``,
        ``"realtruth"``, a list of them, or ``"all"`` (``truth`` only when
        the data has a simulator's truth, ``realtruth`` only with
        ``truth``). See :mod:`stentrans.tl._protocols`.
    methods
        Registry names (:data:`stentrans.models.registry.METHODS`); default
        stEnTrans and the paper's baselines (``"dist"``, ``"linear"``,
        ``"cubic"``, ``"nn"``, ``"nedi"``); ablations ``"stentrans-nopos"``,
        ``"stentrans-nores"``, ``"stentrans-noposres"``; ``"robust"``.
    seeds
        Model seeds (init and batch order of the seeded methods; the
        held-out gene split), or their number (``0 .. N-1``).
    settings
        Settings of the methods' fits, keyed by method kind
        (:data:`stentrans.models.registry.KINDS`: ``"network"``,
        ``"robust"``, ``"baseline"``) or by method name, e.g.
        ``{"network": {"epochs": 100, "depth": 2, "batch_size": 64}, "dist":
        {"epochs": 50}}``; a method's own entry wins over its kind's. The
        fields of the methods' config dataclasses (``ModelConfig`` /
        ``TrainConfig`` for the network, ``RobustConfig``, ``DISTConfig``,
        ``NEDIConfig``); unset ones keep their defaults.
    ablation
        Add the three ablations of paper Table 1 to ``methods``.
    heldout_fraction
        Fraction of genes held out from training in ``heldout-genes``.
    device
        ``"auto"`` (CUDA if present), ``"cpu"``, ``"cuda"``.
    progress
        Progress bars (tqdm).
    genes, layer
        Genes to evaluate (default all) and the layer to read (default X).
    keep_genes
        Genes whose predicted maps (first seed) are returned in ``"maps"``
        for :func:`stentrans.pl.gene_panels`.
    dataset
        Label added as a ``dataset`` column to both tables.
    truth
        The truth of finer data at the enhanced positions of ``adata``'s
        spots (an AnnData or the path of ``TRUTH.h5ad`` from ``stentrans bin
        --truth``), for protocol ``realtruth``.
    interval
        Level of the predictive intervals the coverage protocols
        (``realtruth-coverage``, ``nested-coverage``) score.
    score_genes
        Only these genes (names among ``genes``) are scored, under each
        protocol's own gene rule; every method is still fitted on all
        ``genes``, so the spot-level context a method derives from all genes
        (the robust variant's library sizes and spot factors) is what
        ``stentrans enhance`` fits. The command line and the workflow score
        the genes detected in more than 10 % of the spots
        (:func:`stentrans.pp.scored_genes`). None: every gene.

    Returns
    -------
    dict with

    ``per_gene``
        DataFrame ``gene, method, protocol, seed, pcc, n_spots``; under
        ``realtruth`` also the pseudo-methods ``ceiling`` (the noise
        ceiling, in column ``pcc``) and ``raw-half``.
    ``summary``
        DataFrame ``method, protocol, median_seed<k>..., mean, sd, n_genes,
        n_excluded, n_spots`` (:func:`stentrans.tl.summarize`); with a
        ``ceiling`` row also ``fraction_of_ceiling``
        (:func:`stentrans.tl.add_ceiling_fraction`).
    ``coverage``
        DataFrame ``gene, method, protocol, seed, coverage, width, n_spots``
        of the coverage protocols (empty without them): per gene the share
        of truth values inside the interval and the mean width over the
        gene's 5-95 % range at the given measured spots.
    ``coverage_summary``
        Per method, protocol and seed (:func:`summarize_coverage`): the
        share of all truth values inside (``coverage``), the 5th and 95th
        percentiles of the per-gene coverage, the mean relative width.
    ``maps``
        ``{protocol: {method: (n_keep, u, v)}}`` for ``keep_genes``
        (measured-grid protocols, first seed; zeros off ``M``).
    ``info``
        Settings and timings.
    """
    from tqdm.auto import tqdm

    from ..grid import lattice_of
    from ._summary import add_ceiling_fraction, summarize, summarize_coverage

    from ._intervals import check_level

    lattice_of(adata)  # one-line error for data not read with stentrans.read
    check_level(interval)
    seeds = [int(s) for s in (range(int(seeds)) if np.isscalar(seeds) else seeds)]
    if not seeds:
        raise InputError(None, "seeds", "no seed given")
    if not 0 < float(heldout_fraction) < 1:
        raise InputError(None, "heldout_fraction", f"{heldout_fraction!r}: must be in (0, 1)")
    protocols = as_protocols(protocol, isinstance(adata.uns.get("truth"), dict), truth is not None, source=source_of(adata))
    methods = as_methods(methods, ablation)
    data = ProtocolData(adata, genes, layer, truth=truth, score_genes=score_genes)
    if truth is not None and not any(PROTOCOLS[p].needs == "finer" for p in protocols):
        log.warning("a truth of finer data was given, but no protocol that uses it (realtruth) is run")
    per_method = _settings_by_method(settings, methods)
    runner = _Runner(data, per_method, device, progress)
    keep_idx = None
    if keep_genes is not None:
        pos = pd.Index(data.genes).get_indexer([str(g) for g in keep_genes])
        if (pos < 0).any():
            raise InputError(None, "keep_genes", f"not evaluated: {', '.join(str(g) for g, i in zip(keep_genes, pos) if i < 0)}")
        keep_idx = pos
    kept_maps: dict = {}
    frames = []
    cov_frames = []
    t_start = time.perf_counter()
    total = len(protocols) * len(seeds) * len(methods)
    bar = tqdm(total=total, desc="evaluate", unit="run", disable=not progress)
    for proto in protocols:
        for si, seed in enumerate(seeds):
            specs = resolve(proto, seed, data, heldout_fraction)
            for spec in specs:
                for ref in spec.references:
                    frames.append(_rows(data.genes[spec.gene_idx], ref.method, ref.score, seed, ref.pcc, ref.n_spots))
            for method in methods:
                bar.set_postfix_str(f"{proto} seed {seed} {method}")
                for spec in specs:
                    vals = runner.predict(method, spec, seed)
                    for ss in spec.score_sets:
                        if ss.metric == "coverage":
                            cov_frames.append(runner.coverage(method, spec, seed, vals, ss, interval))
                            continue
                        pred = vals[ss.sel] if ss.transform is None else ss.transform(vals[ss.sel])
                        frames.append(_rows(data.genes[spec.gene_idx], method, ss.name, seed, pcc(pred, ss.truth), int(ss.sel.sum())))
                    if keep_idx is not None and si == 0 and spec.positions[0] == "M":
                        where = pd.Index(spec.gene_idx).get_indexer(keep_idx)
                        if (where >= 0).all():
                            m = np.zeros((len(keep_idx),) + data.M.shape, dtype=np.float32)
                            m[:, data.P, data.Q] = vals[:, where].T
                            kept_maps.setdefault(proto, {})[method] = m
                bar.update(1)
    bar.close()
    coverage = pd.concat(cov_frames, ignore_index=True) if cov_frames else pd.DataFrame(columns=COVERAGE_COLUMNS)
    if not frames:  # coverage protocols only
        frames.append(pd.DataFrame(columns=PER_GENE_COLUMNS))
    per_gene = pd.concat(frames, ignore_index=True)[PER_GENE_COLUMNS]
    per_gene["seed"] = per_gene["seed"].astype(np.int64)
    per_gene["n_spots"] = per_gene["n_spots"].astype(np.int64)
    if dataset is not None:
        per_gene.insert(0, "dataset", str(dataset))
        coverage.insert(0, "dataset", str(dataset))
    info = {
        "protocols": protocols,
        "methods": methods,
        "seeds": seeds,
        "epochs": int({**dict((settings or {}).get("network") or {}), **dict((settings or {}).get(registry.PAPER_METHOD) or {})}.get("epochs", _default_epochs())),
        "settings": {k: dict(v) for k, v in (settings or {}).items()},
        "heldout_fraction": float(heldout_fraction),
        "lattice": data.lattice,
        "n_genes": int(len(data.genes)),
        "n_genes_scored": int(len(data.genes) if data.score_idx is None else len(data.score_idx)),
        "n_spots": int(data.M.sum()),
        "n_removed": int(data.removed.sum()),
        "seconds": time.perf_counter() - t_start,
        "timings": dict(runner.timings),
    }
    if any(PROTOCOLS[p].needs == "finer" for p in protocols):
        ft = data.finer()
        info["truth"] = {"source": ft.source, "n_scored": int(len(ft.P)), "n_new": ft.n_new, "n_enhanced_new": ft.n_enhanced}
    summary = summarize(per_gene, protocol_order=SCORE_ORDER)
    if (summary["method"] == CEILING).any():
        summary = add_ceiling_fraction(summary, reference=CEILING)
    if len(coverage):
        info["interval"] = float(interval)
    return {"per_gene": per_gene, "summary": summary, "coverage": coverage, "coverage_summary": summarize_coverage(coverage), "maps": kept_maps, "info": info}

