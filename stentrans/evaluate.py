"""Evaluation protocols: per-gene PCC of stEnTrans and the baselines (design.md section 5).

Every protocol hides part of the measured maps ``G`` (``M`` the in-tissue
mask, ``D`` the down-sampling, ``K`` the spots D keeps), predicts them back
with every method from exactly the same input, and scores every method on
the same genes and spots with the per-gene Pearson correlation (PCC).

``paper``
    The authors' protocol: stEnTrans is trained on the pairs ``(D(G), G)`` of
    all genes, then predicts ``G`` from ``D(G)``; PCC over all in-tissue spots
    ``M``. Because the training targets are the evaluation targets, the same
    PCC is also recorded over the removed spots only (``M & ~K``) as
    ``paper-removed``.
``nested`` (the honest default)
    The observed data is ``D(G)`` (mask ``D(M)``); stEnTrans is trained on
    ``(D(D(G)), D(G))`` and predicts ``G`` from ``D(G)``; PCC only over the
    spots D removed, ``M & ~K``. No method ever sees a removed spot.
``heldout-genes``
    As ``paper``, but stEnTrans is trained on a random ``1 - heldout_fraction``
    of the genes (drawn per seed) and only the genes never seen in training
    are scored, over ``M`` (``heldout-genes``) and over ``M & ~K``
    (``heldout-genes-removed``).
``truth`` (simulated data, ``uns["truth"]``)
    stEnTrans is trained on ``(D(G), G)`` (the ``paper`` model), then enhances
    ``Phi(G) * H(M)`` on the doubled grid; the baselines get ``G`` and ``M``.
    PCC at the new fine positions of ``H(M)`` (not measured) against the
    simulator's expected expression ``truth["mean"]`` (``truth``) and its
    counts ``truth["counts"]`` (``truth-counts``).

In ``paper``, ``nested`` and ``heldout-genes`` the baselines get ``D(G)`` and
``D(M)`` and predict the doubled grid of ``D(G)``, cropped to ``(u, v)``:
stEnTrans's input. Seeds change the model's initialisation and batch order
(and the held-out genes); the interpolation baselines are deterministic, DIST
is seeded.

A gene whose truth (or prediction) is constant over the scored spots has no
PCC: it is ``NaN`` in the per-gene table and counted in ``n_excluded``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ._errors import InputError
from .metrics import pcc

log = logging.getLogger("stentrans.evaluate")

PROTOCOLS = ("paper", "nested", "heldout-genes", "truth")
#: protocol names that appear in the tables, by protocol
SCORE_NAMES = {
    "paper": ("paper", "paper-removed"),
    "nested": ("nested",),
    "heldout-genes": ("heldout-genes", "heldout-genes-removed"),
    "truth": ("truth", "truth-counts"),
}
BASELINE_METHODS = ("dist", "linear", "cubic", "nn", "nedi")
DEFAULT_METHODS = ("stentrans",) + BASELINE_METHODS
#: stEnTrans and its ablations (paper Table 1): ModelConfig overrides
STENTRANS_VARIANTS = {
    "stentrans": {},
    "stentrans-nopos": {"use_pos": False},
    "stentrans-nores": {"use_res": False},
    "stentrans-noposres": {"use_pos": False, "use_res": False},
}
ABLATION_METHODS = tuple(STENTRANS_VARIANTS)
#: the improved variant (stentrans.robust): RobustConfig overrides
ROBUST_VARIANTS = {"robust": {}, "robust+net": {"net": True}}
ABLATION_LABELS = {
    "stentrans": "stEnTrans",
    "stentrans-nopos": "w/o Pos",
    "stentrans-nores": "w/o Res",
    "stentrans-noposres": "w/o Pos & Res",
}
PER_GENE_COLUMNS = ["gene", "method", "protocol", "seed", "pcc", "n_spots"]
#: stEnTrans epochs: those of the authors' code (= TrainConfig's default), so the
#: evaluated model is the one ``enhance`` trains by default
DEFAULT_EPOCHS = 500

__all__ = [
    "pcc",
    "evaluate",
    "summarize",
    "ablation_table",
    "write_results",
    "to_markdown",
    "PROTOCOLS",
    "DEFAULT_METHODS",
    "ABLATION_METHODS",
    "register_cli",
]


# ---------------------------------------------------------------------------
# protocol set-up
# ---------------------------------------------------------------------------
def _crop(maps: np.ndarray, shape) -> np.ndarray:
    return maps[:, : shape[0], : shape[1]]


def _pad_to(mask: np.ndarray, shape) -> np.ndarray:
    out = np.zeros(shape, dtype=bool)
    out[: mask.shape[0], : mask.shape[1]] = mask
    return out


class _Data:
    """Maps, masks and the positions each protocol scores."""

    def __init__(self, adata, genes, layer):
        from .grid import to_grid
        from .lattice import downsample, kept_mask

        gd = to_grid(adata, genes=genes, layer=layer)
        self.adata = adata
        self.G = gd.maps
        self.M = gd.mask
        self.grid = gd.grid
        self.lattice = gd.grid.lattice
        self.genes = np.asarray(gd.genes).astype(str)
        self.K = kept_mask(self.M, self.lattice)
        self.DG, self.DM = downsample(self.G * self.M, self.M, self.lattice)
        # base positions of the measured-grid protocols: all in-tissue spots
        self.P, self.Q = np.nonzero(self.M)
        self.removed = ~self.K[self.P, self.Q]
        self.truth_values = self.G[:, self.P, self.Q].T  # (n_M, n_genes)
        if not self.removed.any():
            raise InputError(adata.uns.get("stentrans", {}).get("source"), "spots", "down-sampling removes no in-tissue spot; nothing to evaluate")
        self._fine = None

    # -- simulated truth ------------------------------------------------------
    def fine(self):
        """New fine positions of H(M) present in the truth, and truth values."""
        if self._fine is None:
            self._fine = _fine_truth(self)
        return self._fine


def _truth_columns(adata, truth, genes) -> np.ndarray:
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


def _fine_truth(data: _Data):
    from .lattice import enhanced_mask

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
    cols = _truth_columns(data.adata, truth, data.genes)
    mean = np.asarray(truth["mean"])[rows][:, cols]
    counts = np.asarray(truth["counts"])[rows][:, cols] if "counts" in truth else None
    return Pf[rows], Qf[rows], np.asarray(mean, dtype=np.float64), (None if counts is None else np.asarray(counts, dtype=np.float64))


class _Spec:
    """One protocol at one seed: what to train on, what to predict, what to score."""

    def __init__(self, protocol, train_key, train_maps, train_mask, input_key, gene_idx, score_sets):
        self.protocol = protocol
        self.train_key = train_key  # models are shared between specs with the same key and seed
        self.train_maps = train_maps
        self.train_mask = train_mask
        self.input_key = input_key  # "DG": predict G from D(G); "G": enhance G
        self.gene_idx = gene_idx  # genes scored (indices into data.genes)
        self.score_sets = score_sets  # [(name, row selector into base positions, truth (n, n_genes_scored))]


def _spec(protocol: str, seed: int, data: _Data, heldout_fraction: float) -> _Spec:
    all_genes = np.arange(len(data.genes))
    n_M = len(data.P)
    everything = np.ones(n_M, dtype=bool)
    if protocol == "paper":
        tv = data.truth_values
        return _Spec(protocol, "G", data.G, data.M, "DG", all_genes, [("paper", everything, tv), ("paper-removed", data.removed, tv[data.removed])])
    if protocol == "nested":
        tv = data.truth_values[data.removed]
        return _Spec(protocol, "DG", data.DG, data.DM, "DG", all_genes, [("nested", data.removed, tv)])
    if protocol == "heldout-genes":
        n = len(all_genes)
        if n < 2:
            raise InputError(None, "genes", "heldout-genes needs at least 2 genes")
        n_test = int(min(n - 1, max(1, round(float(heldout_fraction) * n))))
        perm = np.random.default_rng(int(seed)).permutation(n)
        test, train = np.sort(perm[:n_test]), np.sort(perm[n_test:])
        tv = data.truth_values[:, test]
        return _Spec(protocol, f"G-heldout-{seed}", data.G[train], data.M, "DG", test, [("heldout-genes", everything, tv), ("heldout-genes-removed", data.removed, tv[data.removed])])
    if protocol == "truth":
        Pf, Qf, mean, counts = data.fine()
        sel = np.ones(len(Pf), dtype=bool)
        sets = [("truth", sel, mean)]
        if counts is not None:
            sets.append(("truth-counts", sel, counts))
        return _Spec(protocol, "G", data.G, data.M, "G", all_genes, sets)
    raise InputError(None, "protocol", f"{protocol!r}: must be one of {', '.join(PROTOCOLS)}")


# ---------------------------------------------------------------------------
# predictions
# ---------------------------------------------------------------------------
class _Runner:
    def __init__(self, data: _Data, model_kwargs, train_kwargs, baseline_kwargs, device, progress):
        self.data = data
        self.model_kwargs = dict(model_kwargs or {})
        self.train_kwargs = dict(train_kwargs or {})
        self.baseline_kwargs = {k: dict(v) for k, v in (baseline_kwargs or {}).items()}
        self.device = device
        self.progress = progress
        self.models: dict = {}
        self.baseline_cache: dict = {}
        self.timings: dict[str, float] = {}

    def _tick(self, key, t0):
        self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - t0

    def base_positions(self, input_key):
        if input_key == "DG":
            return self.data.P, self.data.Q
        Pf, Qf, _, _ = self.data.fine()
        return Pf, Qf

    def _input(self, input_key):
        d = self.data
        if input_key == "DG":
            return d.DG, d.DM, d.G.shape[1:]
        return d.G, d.M, (2 * d.G.shape[1], 2 * d.G.shape[2])

    def model(self, method, spec: _Spec, seed: int):
        from . import train as _train
        from .model import ModelConfig

        key = (method, spec.train_key, int(seed))
        if key not in self.models:
            mc = ModelConfig(**{**self.model_kwargs, **STENTRANS_VARIANTS[method]})
            tc = _train.TrainConfig(**{**self.train_kwargs, "seed": int(seed)})
            log.info("training %s (%s pairs, %d genes, %d epochs, seed %d)", method, spec.train_key, spec.train_maps.shape[0], tc.epochs, seed)
            t0 = time.perf_counter()
            res = _train.fit(spec.train_maps, spec.train_mask, self.data.lattice, mc, tc, device=self.device, progress=self.progress)
            self._tick(f"train:{method}", t0)
            log.info("%s trained in %.1f s, final loss %.4g", method, res.seconds, res.final_loss)
            self.models[key] = res.model
        return self.models[key]

    def predict(self, method: str, spec: _Spec, seed: int, chunk: int = 512) -> np.ndarray:
        """Values ``(n_base_positions, n_scored_genes)`` of ``method`` in ``spec``."""
        P, Q = self.base_positions(spec.input_key)
        maps, mask, shape = self._input(spec.input_key)
        if method in STENTRANS_VARIANTS:
            from . import train as _train

            model = self.model(method, spec, seed)
            t0 = time.perf_counter()
            out = np.empty((len(P), len(spec.gene_idx)), dtype=np.float32)
            for s in range(0, len(spec.gene_idx), chunk):
                gi = spec.gene_idx[s : s + chunk]
                hr = _crop(_train.predict(model, maps[gi] * mask, batch_size=chunk), shape)
                out[:, s : s + len(gi)] = hr[:, P, Q].T
            self._tick(f"predict:{method}", t0)
            return out
        if method in ROBUST_VARIANTS:
            from .robust import RobustConfig, fit_robust

            key = (method, spec.train_key, int(seed))
            if key not in self.models:
                t0 = time.perf_counter()
                cfg = RobustConfig(**{**ROBUST_VARIANTS[method], "seed": int(seed)})
                self.models[key] = fit_robust(spec.train_maps, spec.train_mask, self.data.lattice, cfg, device=self.device, progress=self.progress)
                self._tick(f"train:{method}", t0)
            res = self.models[key]
            t0 = time.perf_counter()
            # library size and shared factors from all genes of the input, then exact gene chunks
            ctx = res.context_for(maps * mask, mask)
            out = np.empty((len(P), len(spec.gene_idx)), dtype=np.float32)
            for s in range(0, len(spec.gene_idx), chunk):
                gi = spec.gene_idx[s : s + chunk]
                hr = _crop(res.predict(maps[gi] * mask, mask, context=ctx, chunk=chunk), shape)
                out[:, s : s + len(gi)] = hr[:, P, Q].T
            self._tick(f"predict:{method}", t0)
            return out
        if method in BASELINE_METHODS:
            seeded = method == "dist"
            key = (method, spec.input_key, int(seed) if seeded else None)
            if key not in self.baseline_cache:
                from . import baselines as _bl

                kw = dict(self.baseline_kwargs.get(method, {}))
                if seeded:
                    kw.setdefault("seed", int(seed))
                    kw.setdefault("device", self.device)
                out_shape = (2 * mask.shape[0], 2 * mask.shape[1])
                want = np.zeros(shape, dtype=bool)
                want[P, Q] = True
                t0 = time.perf_counter()
                hr = _bl.upsample(maps, mask, self.data.lattice, method, out_mask=_pad_to(want, out_shape), **kw)
                self._tick(f"baseline:{method}", t0)
                vals = _crop(hr, shape)[:, P, Q].T
                if not np.isfinite(vals).all():
                    raise RuntimeError(f"baseline {method} returned non-finite values")
                self.baseline_cache[key] = np.ascontiguousarray(vals, dtype=np.float32)
            return self.baseline_cache[key][:, spec.gene_idx]
        raise InputError(None, "methods", f"unknown method {method!r}: choose from {', '.join(DEFAULT_METHODS + ABLATION_METHODS[1:])}")


# ---------------------------------------------------------------------------
# the driver
# ---------------------------------------------------------------------------
def _as_protocols(protocol, has_truth: bool) -> list[str]:
    if isinstance(protocol, str):
        protocol = [p.strip() for p in protocol.split(",") if p.strip()]
    out: list[str] = []
    for p in protocol:
        if p == "all":
            out += [x for x in PROTOCOLS if x != "truth" or has_truth]
        elif p in PROTOCOLS:
            out.append(p)
        else:
            raise InputError(None, "protocol", f"{p!r}: must be one of {', '.join(PROTOCOLS)} or all")
    return list(dict.fromkeys(out))


def _as_methods(methods, ablation: bool) -> list[str]:
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    methods = [m.lower() for m in methods]
    if ablation:
        methods = list(methods) + [m for m in ABLATION_METHODS if m not in methods]
    known = set(BASELINE_METHODS) | set(STENTRANS_VARIANTS) | set(ROBUST_VARIANTS)
    bad = [m for m in methods if m not in known]
    if bad:
        raise InputError(None, "methods", f"unknown method(s) {', '.join(bad)}: choose from {', '.join(sorted(known))}")
    if not methods:
        raise InputError(None, "methods", "no method to evaluate")
    return list(dict.fromkeys(methods))


def evaluate(
    adata,
    protocol="nested",
    methods: Sequence[str] = DEFAULT_METHODS,
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int = DEFAULT_EPOCHS,
    model_kwargs: dict | None = None,
    ablation: bool = False,
    heldout_fraction: float = 0.2,
    device="auto",
    progress: bool = True,
    genes=None,
    layer: str | None = None,
    train_kwargs: dict | None = None,
    baseline_kwargs: dict | None = None,
    keep_genes=None,
    dataset: str | None = None,
) -> dict:
    """Per-gene PCC of stEnTrans and the baselines under the evaluation protocols.

    Parameters
    ----------
    adata
        Measured AnnData (:func:`stentrans.read`, usually after
        :func:`stentrans.pp.filter`); simulated data (``uns["truth"]``) also
        allows the ``truth`` protocol.
    protocol
        ``"paper"``, ``"nested"`` (default), ``"heldout-genes"``, ``"truth"``,
        a list of them, or ``"all"`` (``truth`` only when the data has a
        truth). See the module documentation.
    methods
        ``"stentrans"`` and the baselines ``"dist"``, ``"linear"``,
        ``"cubic"``, ``"nn"``, ``"nedi"``; ablations ``"stentrans-nopos"``,
        ``"stentrans-nores"``, ``"stentrans-noposres"``.
    seeds
        Model seeds (init and batch order of stEnTrans and DIST; the
        held-out gene split).
    epochs
        Training epochs of stEnTrans.
    model_kwargs
        :class:`~stentrans.model.ModelConfig` arguments (e.g. ``depth``).
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
    train_kwargs
        Further :class:`~stentrans.train.TrainConfig` arguments
        (``batch_size``, ``lr``, ...).
    baseline_kwargs
        Per-method arguments of :func:`stentrans.baselines.upsample`, e.g.
        ``{"dist": {"epochs": 50}}``.
    keep_genes
        Genes whose predicted maps (first seed) are returned in ``"maps"``
        for :func:`stentrans.plotting.plot_gene_panels`.
    dataset
        Label added as a ``dataset`` column to both tables.

    Returns
    -------
    dict with

    ``per_gene``
        DataFrame ``gene, method, protocol, seed, pcc, n_spots``.
    ``summary``
        DataFrame ``method, protocol, median_seed<k>..., mean, sd, n_genes,
        n_excluded, n_spots``: the median PCC over genes per seed, its mean
        and sample sd over seeds, the number of genes scored and excluded
        (zero variance) per seed (mean over seeds, rounded).
    ``maps``
        ``{protocol: {method: (n_keep, u, v)}}`` for ``keep_genes``
        (measured-grid protocols, first seed; zeros off ``M``).
    ``info``
        Settings and timings.
    """
    from tqdm.auto import tqdm

    from .grid import lattice_of

    lattice_of(adata)  # one-line error for data not read with stentrans.read
    seeds = [int(s) for s in (range(int(seeds)) if np.isscalar(seeds) else seeds)]
    if not seeds:
        raise InputError(None, "seeds", "no seed given")
    if not 0 < float(heldout_fraction) < 1:
        raise InputError(None, "heldout_fraction", f"{heldout_fraction!r}: must be in (0, 1)")
    protocols = _as_protocols(protocol, isinstance(adata.uns.get("truth"), dict))
    methods = _as_methods(methods, ablation)
    data = _Data(adata, genes, layer)
    tk = {"epochs": int(epochs), **(train_kwargs or {})}
    tk.pop("seed", None)
    runner = _Runner(data, model_kwargs, tk, baseline_kwargs, device, progress)
    keep_idx = None
    if keep_genes is not None:
        pos = pd.Index(data.genes).get_indexer([str(g) for g in keep_genes])
        if (pos < 0).any():
            raise InputError(None, "keep_genes", f"not evaluated: {', '.join(str(g) for g, i in zip(keep_genes, pos) if i < 0)}")
        keep_idx = pos
    kept_maps: dict = {}
    frames = []
    t_start = time.perf_counter()
    total = len(protocols) * len(seeds) * len(methods)
    bar = tqdm(total=total, desc="evaluate", unit="run", disable=not progress)
    for proto in protocols:
        for si, seed in enumerate(seeds):
            spec = _spec(proto, seed, data, heldout_fraction)
            for method in methods:
                bar.set_postfix_str(f"{proto} seed {seed} {method}")
                vals = runner.predict(method, spec, seed)
                for name, sel, truth in spec.score_sets:
                    r = pcc(vals[sel], truth)
                    frames.append(
                        pd.DataFrame(
                            {
                                "gene": data.genes[spec.gene_idx],
                                "method": method,
                                "protocol": name,
                                "seed": seed,
                                "pcc": r,
                                "n_spots": int(sel.sum()),
                            }
                        )
                    )
                    med = np.nanmedian(r) if np.isfinite(r).any() else np.nan
                    log.info("%-22s %-18s seed %d: median PCC %.4f over %d genes (%d excluded), %d spots", name, method, seed, med, int(np.isfinite(r).sum()), int(np.isnan(r).sum()), int(sel.sum()))
                if keep_idx is not None and si == 0 and spec.input_key == "DG":
                    where = pd.Index(spec.gene_idx).get_indexer(keep_idx)
                    if (where >= 0).all():
                        m = np.zeros((len(keep_idx),) + data.M.shape, dtype=np.float32)
                        m[:, data.P, data.Q] = vals[:, where].T
                        kept_maps.setdefault(proto, {})[method] = m
                bar.update(1)
    bar.close()
    per_gene = pd.concat(frames, ignore_index=True)[PER_GENE_COLUMNS]
    per_gene["seed"] = per_gene["seed"].astype(np.int64)
    per_gene["n_spots"] = per_gene["n_spots"].astype(np.int64)
    if dataset is not None:
        per_gene.insert(0, "dataset", str(dataset))
    summary = summarize(per_gene)
    info = {
        "protocols": protocols,
        "methods": methods,
        "seeds": seeds,
        "epochs": int(epochs),
        "model_kwargs": dict(model_kwargs or {}),
        "train_kwargs": tk,
        "baseline_kwargs": dict(baseline_kwargs or {}),
        "heldout_fraction": float(heldout_fraction),
        "lattice": data.lattice,
        "n_genes": int(len(data.genes)),
        "n_spots": int(data.M.sum()),
        "n_removed": int(data.removed.sum()),
        "seconds": time.perf_counter() - t_start,
        "timings": dict(runner.timings),
    }
    return {"per_gene": per_gene, "summary": summary, "maps": kept_maps, "info": info}


# ---------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------
def _ordered(values, order) -> list:
    seen = list(dict.fromkeys(values))
    rank = {v: i for i, v in enumerate(order)}
    return sorted(seen, key=lambda v: (rank.get(v, len(rank)), seen.index(v)))


def summarize(per_gene: pd.DataFrame) -> pd.DataFrame:
    """Median PCC per method, protocol and seed; mean and sd of the medians over seeds.

    Columns: (``dataset``,) ``method, protocol, median_seed<k>..., mean, sd,
    n_genes, n_excluded, n_spots``. ``sd`` is the sample standard deviation
    (``NaN`` with one seed); ``n_genes``/``n_excluded`` count the genes with
    a PCC and the genes excluded (zero variance), averaged over seeds.
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
    out = wide.join(counts).reset_index()
    vals = out[med_cols].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"), _quiet():
        out["mean"] = np.nanmean(vals, axis=1)
        sd = np.nanstd(vals, axis=1, ddof=1) if len(seeds) > 1 else np.full(len(out), np.nan)
        sd[np.nanmax(vals, axis=1) == np.nanmin(vals, axis=1)] = 0.0  # deterministic methods: exactly 0
        out["sd"] = sd if len(seeds) > 1 else np.nan
    out = out[keys + med_cols + ["mean", "sd", "n_genes", "n_excluded", "n_spots"]]
    order_m = _ordered(out["method"], DEFAULT_METHODS + ABLATION_METHODS[1:])
    order_p = _ordered(out["protocol"], [n for p in PROTOCOLS for n in SCORE_NAMES[p]])
    out["_p"] = out["protocol"].map({p: i for i, p in enumerate(order_p)})
    out["_m"] = out["method"].map({m: i for i, m in enumerate(order_m)})
    out = out.sort_values((["dataset"] if "dataset" in keys else []) + ["_p", "_m"], kind="stable").drop(columns=["_p", "_m"])
    return out.reset_index(drop=True)


class _quiet:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)


def _pm(mean, sd, digits=3) -> str:
    if not np.isfinite(mean):
        return "NA"
    if not np.isfinite(sd):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def ablation_table(summary: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Paper Table 1: mean ± sd (over seeds) of the median PCC of stEnTrans and its ablations.

    One row per (dataset and) protocol, one column per variant (stEnTrans,
    w/o Pos, w/o Res, w/o Pos & Res), cells ``"0.636 ± 0.018"``.
    """
    sub = summary[summary["method"].isin(ABLATION_METHODS)]
    if sub.empty:
        raise InputError(None, "summary", "no stEnTrans ablation in the summary (run evaluate with ablation=True)")
    keys = (["dataset"] if "dataset" in sub.columns else []) + ["protocol"]
    rows = []
    for key, grp in sub.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(keys, key))
        for m in ABLATION_METHODS:
            hit = grp[grp["method"] == m]
            row[ABLATION_LABELS[m]] = _pm(float(hit["mean"].iloc[0]), float(hit["sd"].iloc[0]), digits) if len(hit) else "NA"
        row["n_genes"] = int(grp["n_genes"].max())
        rows.append(row)
    return pd.DataFrame(rows, columns=keys + [ABLATION_LABELS[m] for m in ABLATION_METHODS] + ["n_genes"])


def to_markdown(df: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""

    def fmt(v):
        if isinstance(v, (float, np.floating)):
            return "NA" if not np.isfinite(v) else f"{v:.{digits}f}"
        return str(v).replace("|", "\\|")

    cols = [str(c) for c in df.columns]
    num = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---:" if n else ":---" for n in num) + " |"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(fmt(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _write_text(path: Path, text: str) -> Path:
    from ._utils import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return path


def _write_tsv(path: Path, df: pd.DataFrame) -> Path:
    from ._utils import write_tsv

    return write_tsv(df, path, float_format="%.6g", na_rep="NA")


def write_results(result: dict, outdir, ablation: bool | None = None) -> dict[str, Path]:
    """Write ``per_gene.tsv``, ``summary.tsv``, ``summary.md`` (and ``table1.tsv``/``.md``), atomically."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "per_gene": _write_tsv(out / "per_gene.tsv", result["per_gene"]),
        "summary": _write_tsv(out / "summary.tsv", result["summary"]),
    }
    info = result.get("info", {})
    head = "# Evaluation: median per-gene PCC\n\n"
    if info:
        head += f"lattice {info.get('lattice')}, {info.get('n_genes')} genes, {info.get('n_spots')} in-tissue spots ({info.get('n_removed')} removed by down-sampling), seeds {info.get('seeds')}, {info.get('epochs')} epochs.\n\n"
    paths["summary_md"] = _write_text(out / "summary.md", head + to_markdown(result["summary"]))
    has_abl = result["summary"]["method"].isin(ABLATION_METHODS[1:]).any()
    if ablation or (ablation is None and has_abl):
        t1 = ablation_table(result["summary"])
        paths["table1"] = _write_tsv(out / "table1.tsv", t1)
        paths["table1_md"] = _write_text(out / "table1.md", "# Table 1: ablation (median PCC, mean ± sd over seeds)\n\n" + to_markdown(t1))
    return paths


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------
def _top_variance_genes(adata, k: int, layer=None) -> list[str]:
    from .grid import dense

    X = dense(adata.layers[layer] if layer else adata.X).astype(np.float64)
    X = np.log1p(np.maximum(X, 0))
    var = X.var(0)
    return [str(g) for g in np.asarray(adata.var_names)[np.argsort(-var, kind="stable")[:k]]]


def _cmd_evaluate(args) -> int:
    from . import pp
    from .io import read

    adata = read(args.input, lattice=args.lattice)
    if not args.no_filter:
        adata = pp.qc(adata, min_spot_fraction=args.min_spot_fraction)
    out = Path(args.output)
    panel = [g.strip() for g in args.genes.split(",") if g.strip()] if args.genes else None
    if panel:
        missing = [g for g in panel if g not in adata.var_names]
        if missing:
            raise InputError(args.input, "--genes", f"not among the {adata.n_vars} genes after QC: {', '.join(missing)}")
    else:
        panel = _top_variance_genes(adata, args.n_panel_genes)
    seeds = list(range(args.seeds))
    model_kwargs = {"depth": args.depth, "patch_size": args.patch_size, "heads": args.heads}
    train_kwargs = {"batch_size": args.batch_size, "lr": args.lr}
    baseline_kwargs = {"dist": {"epochs": args.dist_epochs}} if args.dist_epochs is not None else None
    dataset = args.dataset or Path(args.input).name.split(".")[0]
    res = evaluate(
        adata,
        protocol=args.protocol,
        methods=args.methods,
        seeds=seeds,
        epochs=args.epochs,
        model_kwargs=model_kwargs,
        ablation=args.ablation,
        heldout_fraction=args.heldout_fraction,
        device=args.device,
        progress=not args.no_progress,
        train_kwargs=train_kwargs,
        baseline_kwargs=baseline_kwargs,
        keep_genes=panel,
        dataset=dataset,
    )
    paths = write_results(res, out, ablation=args.ablation)
    from . import plotting

    paths["boxplot"] = plotting.plot_pcc_boxplots(res["per_gene"], out / "boxplot")
    proto = next((p for p in ("nested", "paper", "heldout-genes") if p in res["maps"]), None)
    if proto is not None:
        paths["gene_panels"] = plotting.plot_gene_panels(adata, panel, res["maps"][proto], out / "gene_panels", title=f"{dataset}: protocol {proto}, seed {seeds[0]}")
    else:
        log.info("no measured-grid protocol run: gene panels skipped")
    for _, row in res["summary"].iterrows():
        log.info("%-22s %-18s median PCC %s", row["protocol"], row["method"], _pm(row["mean"], row["sd"]))
    flat = [p for v in paths.values() for p in (v if isinstance(v, list) else [v])]
    log.info("wrote %s", ", ".join(str(p) for p in flat))
    return 0


def register_cli(subparsers) -> None:
    """Add ``stentrans evaluate``."""
    import argparse

    p = subparsers.add_parser(
        "evaluate",
        help="per-gene PCC of stEnTrans and the baselines (paper, nested, heldout-genes, truth protocols)",
        description="Down-sample the measured data, predict it back with stEnTrans and the baselines, "
        "and score every method with the per-gene Pearson correlation (design.md section 5).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("input", help="h5ad, Space Ranger outs folder, ST table ...")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--protocol", default="nested", help="paper, nested, heldout-genes, truth (simulated data), a comma list, or all")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS), help="comma list of stentrans, dist, linear, cubic, nn, nedi")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (0 .. N-1)")
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="stEnTrans training epochs")
    p.add_argument("--ablation", action="store_true", help="add w/o Pos, w/o Res, w/o both; writes table1.tsv/.md")
    p.add_argument("--genes", default=None, help="comma list of genes for the gene panels (default: the top-variance genes)")
    p.add_argument("--n-panel-genes", type=int, default=4, help="genes in the panels when --genes is not given")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda")
    p.add_argument("--min-spot-fraction", type=float, default=0.1, help="genes detected in more than this fraction of spots")
    p.add_argument("--no-filter", action="store_true", help="use the input's genes as they are")
    p.add_argument("--lattice", default="auto", choices=["auto", "square", "hex"])
    p.add_argument("--heldout-fraction", type=float, default=0.2)
    p.add_argument("--depth", type=int, default=12, help="transformer blocks")
    p.add_argument("--patch-size", type=int, default=3)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--dist-epochs", type=int, default=None, help="DIST training epochs (default: DIST's own, 200)")
    p.add_argument("--dataset", default=None, help="label of the data set in the tables (default: input file name)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_evaluate)
