"""Enhancement: ``G_hr = Phi(G) * H(M)`` of every gene, in memory or streamed to ``.h5ad``.

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

    ``skeleton`` is the enhanced AnnData without ``X`` (obs, var, obsm, uns
    as :func:`enhance` returns them); iterating gives ``(start, block)``:
    ``block`` the ``(n_obs, k)`` float32 values of genes ``start .. start +
    k`` (negative values clipped at 0 where asked). Peak memory is one chunk
    of the output, whatever the number of genes, so a caller may write each
    block to a file as it comes (:func:`stentrans.run.enhance_to`).
    """

    def __init__(self, skeleton, blocks, n_genes: int, clip_negative: bool, started: float):
        self.skeleton = skeleton
        self.n_obs = skeleton.n_obs
        self.n_genes = int(n_genes)
        self.clip_negative = bool(clip_negative)
        self._blocks = blocks
        self._started = started

    def __iter__(self):
        for s, block in self._blocks():
            if self.clip_negative:
                np.maximum(block, 0, out=block)
            yield s, block

    def seconds(self) -> float:
        """Seconds since the enhancement started (the fit included)."""
        return time.perf_counter() - self._started


def _chunks(adata, model, method, genes, layer, chunk, device, settings, checkpoint, progress, clip_negative, fill_lost) -> EnhancedChunks:
    """The fit (when ``model`` is not a fitted model) and the lost positions now; the predictions as the chunks are iterated."""
    from tqdm.auto import tqdm

    from .. import lost as _lost
    from ..grid import lattice_of, source_of, to_grid
    from ..lattice import enhanced_mask
    from ._anndata import build_enhanced

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

    def blocks():
        for s in tqdm(range(0, n_genes, chunk), desc="enhance", unit="chunk", disable=not progress):
            with naming_file(source):  # the method sees arrays only: name the input
                hr = fitted.predict(gd.maps, gd.mask, H, genes=np.arange(s, min(s + chunk, n_genes)), chunk=chunk)
            yield s, np.ascontiguousarray(hr[:, P, Q].T)

    skeleton = build_enhanced(adata, None, H, gd.grid, gd.p, gd.q, gd.genes, provenance=prov, clip_negative=clip_negative, lost=lost)
    return EnhancedChunks(skeleton, blocks, n_genes, clip_negative, t0)


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

    Returns
    -------
    AnnData of docs/method.md section 3: measured and new spots,
    ``obs["is_imputed"]``, ``obs["is_lost"]``, half-step ``array_row``/``array_col``, pixel
    ``obsm["spatial"]``, ``uns["spatial"]`` with the spot diameter halved and
    provenance in ``uns["stentrans"]`` (with the model's ``method``). To
    write a large result without holding it in memory:
    :func:`stentrans.run.enhance_to` (one gene chunk at a time).

    Errors about the data (e.g. too few spots for the robust method's
    self-supervision) are :class:`~stentrans.InputError` naming the input
    file when ``adata`` knows it (``uns["stentrans"]["source"]``).
    """
    chunks = _chunks(adata, model, method, genes, layer, chunk, device, settings, checkpoint, progress, clip_negative, fill_lost)
    out = chunks.skeleton
    X = np.empty((out.n_obs, chunks.n_genes), dtype=np.float32)
    for s, block in chunks:
        X[:, s : s + block.shape[1]] = block
    out.X = X
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
