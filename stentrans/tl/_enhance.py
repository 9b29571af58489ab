"""Enhancement: ``G_hr = Phi(G) * H(M)`` of every gene, in memory or streamed to ``.h5ad``.

One footing (docs/method.md section 3): ``X`` holds the method's estimate at
every position, measured spots included (:meth:`~stentrans.models.base.Fitted.estimate`;
``measured="counts"`` keeps the measured counts there instead, the
behaviour before); the counts stay unchanged in ``layers["counts"]``.
Predictive intervals (``interval``, :mod:`._intervals`) go to
``layers["lower"]`` / ``layers["upper"]``.

Any fitted method of the registry enhances the same way: its predictions on
the doubled grid are read at the positions ``H(M)`` gene chunk by gene chunk
(:func:`enhance_chunks`) and assembled into the enhanced AnnData
(:mod:`._anndata`, docs/method.md section 3): in memory (:func:`enhance`) or
streamed to a file by the caller (:func:`stentrans.run.enhance_to`). Lost positions (:mod:`stentrans.lost`, ``fill_lost``) join the
measured spots in the mask ``H`` is built from, so they and their midpoints
to neighbouring spots are predicted too; every method still predicts from the
measured spots alone (its input mask stays ``M``).
"""

from __future__ import annotations

import inspect
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._errors import InputError, naming_file
from ..models import registry
from ..models.base import Fitted

log = logging.getLogger("stentrans.enhance")


@dataclass
class EnhanceConfig:
    """Settings of the enhancement itself (their defaults, written once)."""

    chunk: int = field(default=512, metadata={"help": "genes per forward batch"})
    fill_lost: str = field(
        default="auto",
        metadata={
            "help": "lost spots to fill (in-tissue lattice positions without a measurement, docs/method.md section 3): auto (the default: unmeasured positions inside "
            "the outline with at least 3 of 4 (square) / 4 of 6 (hex) measured neighbours); tissue (Space Ranger in-tissue positions without a spot); none (leave them empty)",
            "choices": ("none", "auto", "tissue"),
        },
    )
    measured: str = field(
        default="estimate",
        metadata={
            "help": "X at the measured spots: the method's own estimate (estimate: one footing with the new positions, the counts kept in layers['counts']), the measured counts (counts: the behaviour before), "
            "or shrink: the estimate from the neighbours moved toward the counts by a per-gene factor measured on the slide (keeps what the counts carry, at the price of mixing; docs/downstream.md)",
            "choices": ("estimate", "counts", "shrink"),
        },
    )
    interval: float = field(default=0.9, metadata={"help": "level of the predictive intervals in layers lower/upper (0: none)"})


_EN = EnhanceConfig()


def _fitted(adata, model, method, *, genes, layer, device, settings, checkpoint, progress) -> Fitted:
    """The :class:`Fitted` that enhances: given, loaded from a checkpoint, or fitted here."""
    if isinstance(model, Fitted):
        return model
    if isinstance(model, (str, Path)) and not (isinstance(model, str) and model in registry.METHODS):
        from ..models.paper.enhancer import PaperFitted

        # a checkpoint of a network method: the one named, else the paper's
        name = method if method is not None and registry.get(method).kind == "network" else registry.PAPER_METHOD
        return PaperFitted.load(model, device=device, method=name)
    if model is not None and not isinstance(model, str):
        raise InputError(None, "model", f"a {type(model).__name__}: give a fitted model (tl.train), a method name or a checkpoint path")
    from ._train import train

    kw = dict(settings or {})
    if checkpoint is not None:
        kw["checkpoint"] = checkpoint
    return train(adata, method=model if model is not None else method, genes=genes, layer=layer, device=device, progress=progress, **kw)


class EnhancedChunks:
    """An enhancement computed one gene chunk at a time (:func:`enhance_chunks`).

    ``skeleton`` is the enhanced AnnData without ``X`` (obs, var, obsm, uns,
    ``layers["counts"]`` as :func:`enhance` returns them); iterating gives
    ``(start, block, layers)``: ``block`` the ``(n_obs, k)`` float32 values
    of genes ``start .. start + k`` (negative values clipped at 0 where
    asked), ``layers`` the same genes' ``"lower"`` and ``"upper"`` interval
    bounds (empty without intervals). Peak memory is one chunk of the
    output, whatever the number of genes, so a caller may write each block
    to a file as it comes (:func:`stentrans.run.enhance_to`). After the last
    chunk, :meth:`finish_obs` gives the obs with the per-position interval
    summary (``obs["interval_width"]``).
    """

    LAYERS = ("lower", "upper")

    def __init__(self, skeleton, blocks, n_genes: int, clip_negative: bool, started: float, calibration=None, trivial=None):
        self.skeleton = skeleton
        self.n_obs = skeleton.n_obs
        self.n_genes = int(n_genes)
        self.clip_negative = bool(clip_negative)
        self.calibration = calibration
        self._blocks = blocks
        self._started = started
        self._trivial = trivial
        self._width_sum = np.zeros(self.n_obs)
        self._width_n = 0

    @property
    def layer_names(self) -> tuple[str, ...]:
        return self.LAYERS if self.calibration is not None else ()

    def __iter__(self):
        for s, block, pos in self._blocks():
            if self.clip_negative:
                np.maximum(block, 0, out=block)
            layers = {}
            if self.calibration is not None:
                genes = np.arange(s, s + block.shape[1])
                lo, hi = self.calibration.bounds(block, *pos, genes=genes)
                layers = {"lower": lo, "upper": hi}
                triv = self._trivial[genes]
                ok = triv > 0
                if ok.any():
                    self._width_sum += ((hi[:, ok] - lo[:, ok]) / triv[ok]).sum(1)
                    self._width_n += int(ok.sum())
            yield s, block, layers

    def finish_obs(self):
        """The skeleton's obs, with ``interval_width`` once every chunk was iterated (intervals only)."""
        obs = self.skeleton.obs
        if self.calibration is not None and self._width_n:
            obs = obs.copy()
            obs["interval_width"] = (self._width_sum / self._width_n).astype(np.float32)
        return obs

    def seconds(self) -> float:
        """Seconds since the enhancement started (the fit included)."""
        return time.perf_counter() - self._started


def shrink_toward_counts(held: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``held + lambda_g (counts - held)`` (spots x genes): each gene's held-out estimate moved toward its counts.

    ``held``: every measured spot predicted without its own counts;
    ``lambda_g = max(0, 1 - mean(counts) / mean((counts - held)^2))``: the
    share of the counts' deviation from their neighbours that is not
    counting noise (Poisson: variance = mean), the linear shrinkage with the
    least expected squared error to the spot's expected count (James-Stein),
    measured per gene on the slide itself.
    """
    held = np.maximum(np.asarray(held, dtype=np.float64), 0.0)
    counts = np.asarray(counts, dtype=np.float64)
    dev = ((counts - held) ** 2).mean(0)
    lam = np.clip(1.0 - counts.mean(0) / np.where(dev > 0, dev, np.inf), 0.0, 1.0)
    return (held + lam * (counts - held)).astype(np.float32)


#: a position is low-confidence where its predictive variance is at least this many times the slide's average (obs["interval_scale"])
LOW_CONFIDENCE_SCALE = 1.5


def _chunks(adata, model, method, genes, layer, chunk, device, settings, checkpoint, progress, clip_negative, fill_lost, measured, interval) -> EnhancedChunks:
    """The fit (when ``model`` is not a fitted model) and the lost positions now; the predictions as the chunks are iterated."""
    from tqdm.auto import tqdm

    from .. import lost as _lost
    from ..grid import lattice_of, source_of, to_grid
    from ..lattice import enhanced_mask, measured_index
    from ._anndata import build_enhanced
    from ._intervals import calibrate, check_level, trivial_width

    if measured not in ("estimate", "counts", "shrink"):
        raise InputError(None, "measured", f"{measured!r}: must be 'estimate', 'counts' or 'shrink'")
    check_level(interval)

    t0 = time.perf_counter()
    fitted = _fitted(adata, model, method, genes=genes, layer=layer, device=device, settings=settings, checkpoint=checkpoint, progress=progress)
    prov = dict(fitted.provenance())
    lattice = lattice_of(adata)
    if fitted.lattice and fitted.lattice != lattice:
        log.warning("model was trained on a %s lattice, enhancing a %s lattice", fitted.lattice, lattice)
    # all genes' maps: what a method derives from all genes together (library
    # sizes, shared factors) comes from all of them, then exact gene chunks
    gd = to_grid(adata, genes=genes, layer=layer)
    source = source_of(adata)
    mode, lost = _lost.resolve(fill_lost, gd.grid, gd.mask, adata=adata, source=source)
    prov["fill_lost"] = mode
    if lost.any():
        log.info("filling %d lost position(s) (%s)", int(lost.sum()), mode)
    # the output mask gains the lost positions; the model's input mask stays M
    H = enhanced_mask(gd.mask | lost, lattice)
    P, Q = np.nonzero(H)
    n_genes = gd.maps.shape[0]
    src = measured_index(P, Q, gd.p, gd.q, gd.grid.shape)
    at_meas = np.flatnonzero(src >= 0)
    values = gd.maps[:, gd.p, gd.q].T  # the measured counts (spots in obs order x genes)
    predict = fitted.estimate if measured == "estimate" else fitted.predict
    prov["measured"] = measured
    if measured == "shrink" and not np.array_equal(values, np.rint(values)):
        raise InputError(source, "measured", "'shrink' weighs the counts against their counting noise: it needs counts, the input's values are not (non-integer)")
    if measured == "shrink":  # predict_held_out lists the spots in np.nonzero(mask) order
        held_order = np.searchsorted(np.ravel_multi_index(np.nonzero(gd.mask), gd.mask.shape), np.ravel_multi_index((gd.p, gd.q), gd.mask.shape))
    cal = trivial = None
    if interval and not np.array_equal(values, np.rint(values)):
        # the intervals are for the count a measurement would give: they need counts
        log.warning("%s: the input's values are not counts (non-integer); no predictive intervals (interval=0 turns this off)", source or "input")
        prov["interval"] = {"level": 0.0, "reason": "input values are not counts"}
        interval = 0
    if interval:
        with naming_file(source):
            cal = calibrate(fitted, gd.maps, gd.mask, lattice, level=float(interval), chunk=chunk)
        trivial = trivial_width(values)
        prov["interval"] = cal.provenance()

    def blocks():
        for s in tqdm(range(0, n_genes, chunk), desc="enhance", unit="chunk", disable=not progress):
            g = np.arange(s, min(s + chunk, n_genes))
            with naming_file(source):  # the method sees arrays only: name the input
                hr = predict(gd.maps, gd.mask, H, genes=g, chunk=chunk)
            block = np.ascontiguousarray(hr[:, P, Q].T)
            if measured == "counts":  # every method: the measured counts at the measured spots
                block[at_meas] = values[src[at_meas]][:, g]
            elif measured == "shrink":
                with naming_file(source):
                    held = fitted.predict_held_out(gd.maps, gd.mask, genes=g, chunk=chunk).T[held_order]  # spots in obs order
                block[at_meas] = shrink_toward_counts(held, values[:, g])[src[at_meas]]
            yield s, block, (P, Q)

    skeleton = build_enhanced(adata, None, H, gd.grid, gd.p, gd.q, gd.genes, provenance=prov, clip_negative=clip_negative, lost=lost, counts=values)
    if cal is not None:
        scale = cal.scale[P, Q]
        skeleton.obs["interval_scale"] = scale.astype(np.float32)
        skeleton.obs["low_confidence"] = scale >= LOW_CONFIDENCE_SCALE
        skeleton.var["interval_dispersion"] = cal.phi.astype(np.float32)
        skeleton.var["trivial_width"] = trivial
    return EnhancedChunks(skeleton, blocks, n_genes, clip_negative, t0, calibration=cal, trivial=trivial)


def enhance(
    adata,
    *,
    model=None,
    method: str | None = None,
    genes=None,
    layer: str | None = None,
    chunk: int = _EN.chunk,
    device="auto",
    settings: dict | None = None,
    checkpoint=None,
    progress: bool = True,
    clip_negative: bool = True,
    fill_lost=_EN.fill_lost,
    measured: str = _EN.measured,
    interval: float = _EN.interval,
):
    """Enhance every gene: ``Phi(G) * H(M)`` on the doubled lattice.

    Parameters
    ----------
    adata
        Measured AnnData (from :func:`stentrans.read`, usually after
        :func:`stentrans.pp.qc`).
    model
        A fitted model (:func:`stentrans.tl.train`), a registry method name
        to fit here, the path of a checkpoint of the paper's network, or
        ``None``: fit ``method`` first with ``tl.train(adata, method=method,
        **settings)``.
    method
        Method fitted when ``model`` is None; default
        :data:`~stentrans.models.registry.DEFAULT_METHOD` (``"robust"``),
        ``"stentrans"`` for the paper's network.
    genes, layer
        Genes to enhance (default all) and the layer to read (default X).
    chunk
        Genes per prediction.
    settings, checkpoint
        Settings of the fit (``model`` None or a method name; the fields of
        the method's config dataclass); the paper network's checkpoint
        written while training.
    clip_negative
        Negative predictions become 0.
    fill_lost
        Lost positions to fill (:func:`stentrans.lost.resolve`): ``"auto"``
        (default, :func:`stentrans.lost.detect`), ``"none"`` (no lost
        positions: they stay empty), ``"tissue"`` (Space Ranger in-tissue positions without a spot), or positions: ST
        ids ``"5x10,10x14"`` / a list of ids or ``(array_row, array_col)``
        pairs, or a bool mask on the measured grid. They are predicted with
        the new spots (``is_imputed`` and ``is_lost`` True); the mode and the
        positions go to ``uns["stentrans"]["fill_lost"]`` / ``["lost"]``.
    measured
        ``"estimate"`` (default): ``X`` at the measured spots is the method's
        own estimate (:meth:`~stentrans.models.base.Fitted.estimate`), the
        same kind of value as at the new positions; ``"counts"``: the
        measured counts (the behaviour before); ``"shrink"``: the estimate
        from the spot's neighbours moved toward its counts by a per-gene
        factor measured on the slide (:func:`shrink_toward_counts`). Either way
        ``layers["counts"]`` holds the measured counts unchanged (rows of
        new positions empty).
    interval
        Level of the predictive intervals (:mod:`stentrans.tl._intervals`;
        0: none): ``layers["lower"]`` / ``layers["upper"]``, the count a
        measurement at that position would give lies inside at this rate;
        ``obs["interval_width"]`` (mean width over each gene's 5-95 % range
        over the measured spots), ``obs["interval_scale"]`` (predictive
        variance over the slide's average) and ``obs["low_confidence"]``
        (``interval_scale`` at least 1.5); ``var["interval_dispersion"]``,
        ``var["trivial_width"]``; the calibration in
        ``uns["stentrans"]["interval"]``.

    Returns
    -------
    AnnData of docs/method.md section 3: measured and new spots,
    ``obs["is_imputed"]``, ``obs["is_lost"]``, half-step ``array_row``/``array_col``, pixel
    ``obsm["spatial"]``, ``uns["spatial"]`` with the spot diameter halved (one
    library without images where the input had none) and provenance in ``uns["stentrans"]`` (with the model's ``method``). To
    write a large result without holding it in memory:
    :func:`stentrans.run.enhance_to` (one gene chunk at a time).

    Errors about the data (e.g. too few spots for the robust method's
    self-supervision) are :class:`~stentrans.InputError` naming the input
    file when ``adata`` knows it (``uns["stentrans"]["source"]``).
    """
    chunks = _chunks(adata, model, method, genes, layer, chunk, device, settings, checkpoint, progress, clip_negative, fill_lost, measured, interval)
    out = chunks.skeleton
    X = np.empty((out.n_obs, chunks.n_genes), dtype=np.float32)
    layers = {name: np.empty_like(X) for name in chunks.layer_names}
    for s, block, bounds in chunks:
        X[:, s : s + block.shape[1]] = block
        for name, b in bounds.items():
            layers[name][:, s : s + b.shape[1]] = b
    out.X = X
    for name, arr in layers.items():
        out.layers[name] = arr
    out.obs = chunks.finish_obs()
    out.uns["stentrans"]["enhance_seconds"] = chunks.seconds()
    return out


def enhance_chunks(adata, **kwargs) -> EnhancedChunks:
    """:func:`enhance`, computed one gene chunk at a time: an :class:`EnhancedChunks`.

    Takes :func:`enhance`'s keywords (its signature is this function's). The
    fit (when ``model`` is not a fitted model) and the lost positions are
    done here; the predictions as the chunks are iterated.
    """
    bound = inspect.signature(enhance).bind(adata, **kwargs)
    bound.apply_defaults()
    return _chunks(**bound.arguments)


enhance_chunks.__signature__ = inspect.signature(enhance)
