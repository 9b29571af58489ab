"""Enhancement: ``G_hr = Phi(G) * H(M)`` of every gene, in memory or streamed to ``.h5ad``.

Any fitted method of the registry enhances the same way: its predictions on
the doubled grid are read at the positions ``H(M)`` gene chunk by gene chunk
and assembled into the enhanced AnnData (:mod:`._anndata`, docs/method.md
section 3). Lost positions (:mod:`stentrans.lost`, ``fill_lost``) join the
measured spots in the mask ``H`` is built from, so they and their midpoints
to neighbouring spots are predicted too; every method still predicts from the
measured spots alone (its input mask stays ``M``).
"""

from __future__ import annotations

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


def _fitted(adata, model, method, *, genes, layer, device, train_kwargs, checkpoint_path, progress) -> Fitted:
    """The :class:`Fitted` that enhances: given, loaded from a checkpoint, or fitted here."""
    if isinstance(model, Fitted):
        return model
    if isinstance(model, (str, Path)) and not (isinstance(model, str) and model in registry.METHODS):
        from ..models.paper.enhancer import PaperFitted

        return PaperFitted.load(model, device=device)
    if model is not None and not isinstance(model, str):
        raise InputError(None, "model", f"a {type(model).__name__}: give a fitted model (tl.train), a method name or a checkpoint path")
    from ._train import train

    kw = dict(train_kwargs or {})
    if checkpoint_path is not None:
        kw["checkpoint"] = checkpoint_path
    return train(adata, model if model is not None else method, genes=genes, layer=layer, device=device, progress=progress, **kw)


def enhance(
    adata,
    model=None,
    genes=None,
    layer: str | None = None,
    chunk: int = _EN.chunk,
    device="auto",
    train_kwargs: dict | None = None,
    checkpoint_path=None,
    progress: bool = True,
    clip_negative: bool = True,
    out_path=None,
    *,
    method: str | None = None,
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
        ``None``: fit ``method`` first with ``tl.train(adata, method,
        **train_kwargs)``.
    method
        Method fitted when ``model`` is None; default
        :data:`~stentrans.models.registry.DEFAULT_METHOD` (``"robust"``),
        ``"stentrans"`` for the paper's network.
    genes, layer
        Genes to enhance (default all) and the layer to read (default X).
    chunk
        Genes per prediction; memory for the output stays bounded by the chunk size.
    train_kwargs, checkpoint_path
        Settings of the fit (``model`` None or a method name); the paper
        network's checkpoint written while training.
    clip_negative
        Negative predictions become 0.
    out_path
        Stream the result to this ``.h5ad`` (written atomically) instead of
        returning it: X is written one gene chunk at a time, so the output
        never has to fit in memory. Returns the path.
    fill_lost
        Lost positions to fill (:func:`stentrans.lost.resolve`): ``"auto"``
        (default, :func:`stentrans.lost.detect`), ``"none"`` (no lost
        positions: they stay empty), ``"tissue"``
        (Space Ranger in-tissue positions without a spot), or positions: ST
        ids ``"5x10,10x14"`` / a list of ids or ``(array_row, array_col)``
        pairs, or a bool mask on the measured grid. They are predicted with
        the new spots (``is_imputed`` and ``is_lost`` True); the mode and the
        positions go to ``uns["stentrans"]["fill_lost"]`` / ``["lost"]``.

    Returns
    -------
    AnnData of docs/method.md section 3: measured and new spots,
    ``obs["is_imputed"]``, ``obs["is_lost"]``, half-step ``array_row``/``array_col``, pixel
    ``obsm["spatial"]``, ``uns["spatial"]`` with the spot diameter halved and
    provenance in ``uns["stentrans"]`` (with the model's ``method``).

    Errors about the data (e.g. too few spots for the robust variant's
    self-supervision) are :class:`~stentrans.InputError` naming the input
    file when ``adata`` knows it (``uns["stentrans"]["source"]``).
    """
    from tqdm.auto import tqdm

    from .. import lost as _lost
    from ..grid import lattice_of, source_of, to_grid
    from ..lattice import enhanced_mask
    from ._anndata import build_enhanced

    t0 = time.perf_counter()
    fitted = _fitted(adata, model, method, genes=genes, layer=layer, device=device, train_kwargs=train_kwargs, checkpoint_path=checkpoint_path, progress=progress)
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

    if out_path is None:
        out = np.empty((len(P), n_genes), dtype=np.float32)
        for s, block in blocks():
            out[:, s : s + block.shape[1]] = block
        prov["enhance_seconds"] = time.perf_counter() - t0
        return build_enhanced(adata, out, H, gd.grid, gd.p, gd.q, gd.genes, provenance=prov, clip_negative=clip_negative, lost=lost)

    # streamed: the file gets obs/var/uns first, then X one gene chunk at a time,
    # so peak memory is one chunk of the output, whatever the number of genes
    import h5py
    from anndata.io import write_elem

    from .._utils import atomic_path

    prov["streamed"] = True
    skeleton = build_enhanced(adata, None, H, gd.grid, gd.p, gd.q, gd.genes, provenance=prov, clip_negative=clip_negative, lost=lost)
    out_path = Path(out_path)
    with atomic_path(out_path, suffix=".h5ad") as tmp:
        skeleton.write_h5ad(tmp)
        with h5py.File(tmp, "r+") as f:
            dset = f.create_dataset("X", shape=(len(P), n_genes), dtype="float32", chunks=(min(len(P), 4096), max(1, min(n_genes, 64))))
            dset.attrs["encoding-type"] = "array"
            dset.attrs["encoding-version"] = "0.2.0"
            for s, block in blocks():
                if clip_negative:
                    np.maximum(block, 0, out=block)
                dset[:, s : s + block.shape[1]] = block
            write_elem(f["uns/stentrans"], "enhance_seconds", float(time.perf_counter() - t0))
    return out_path
