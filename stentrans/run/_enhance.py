"""``enhance_to``: fit a method on a slide and write its enhancement to a file (command ``enhance``, rule ``enhance``)."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("stentrans.enhance")

#: suffixes an enhanced output may have: AnnData, or SpatialData
OUTPUT_SUFFIXES = (".h5ad", ".zarr")


def _stream_h5ad(chunks, path: Path) -> None:
    """Write an :class:`~stentrans.tl.EnhancedChunks` to ``path``: obs/var/uns first, then X one gene chunk at a time, atomically."""
    import h5py
    import numpy as np
    from anndata.io import write_elem

    from .._utils import atomic_path

    skeleton = chunks.skeleton
    skeleton.uns["stentrans"]["streamed"] = True
    n_obs, n_genes = chunks.n_obs, chunks.n_genes
    with atomic_path(path, suffix=".h5ad") as tmp:
        skeleton.write_h5ad(tmp)
        with h5py.File(tmp, "r+") as f:
            dset = f.create_dataset("X", shape=(n_obs, n_genes), dtype="float32", chunks=(min(n_obs, 4096), max(1, min(n_genes, 64))))
            dset.attrs["encoding-type"] = "array"
            dset.attrs["encoding-version"] = "0.2.0"
            for s, block in chunks:
                dset[:, s : s + block.shape[1]] = np.asarray(block, dtype=np.float32)
            write_elem(f["uns/stentrans"], "enhance_seconds", float(chunks.seconds()))


def enhance_to(
    adata,
    path,
    *,
    method: str | None = None,
    model=None,
    seed: int = 0,
    device="auto",
    settings: dict | None = None,
    checkpoint=None,
    resume: bool = False,
    chunk: int | None = None,
    fill_lost=None,
    fill_lost_source=None,
    progress: bool = True,
) -> dict:
    """Fit ``method`` on ``adata`` (or take ``model``) and write the enhanced data to ``path``.

    Parameters
    ----------
    adata
        Measured AnnData (:func:`stentrans.read`, usually after
        :func:`stentrans.pp.qc`).
    path
        ``.h5ad`` (X written one gene chunk at a time, so the output never
        has to fit in memory) or ``.zarr`` (SpatialData,
        :func:`stentrans.io.write_spatialdata`); written
        atomically. Checked before any work (:func:`stentrans.run.check_output`).
    method
        Registry name; default :data:`~stentrans.models.registry.DEFAULT_METHOD`,
        or :data:`~stentrans.models.registry.PAPER_METHOD` when ``model`` is a checkpoint.
    model
        A fitted model (:func:`stentrans.tl.train`) or the path of a
        checkpoint of a network method (``stentrans train``, the pretrain
        rule); None: fit ``method`` here.
    seed, device, settings
        Of the fit (:func:`stentrans.tl.train`; ``settings`` are the fields
        of the method's config dataclass).
    checkpoint, resume
        Network methods fitted here: where to keep the checkpoint, and
        whether to continue from it.
    chunk, fill_lost
        Of :func:`stentrans.tl.enhance` (defaults: ``EnhanceConfig``'s);
        lost positions are checked on the data's grid before the fit, their
        errors naming ``fill_lost_source`` (where the positions came from;
        default the data's file).

    Returns
    -------
    dict with ``path``, ``method``, ``n_genes``, ``n_measured``,
    ``n_imputed``, ``n_lost`` and ``fill_lost``.
    """
    from .. import lost, tl
    from .._errors import InputError
    from .._utils import check_output
    from ..grid import source_of, to_grid
    from ..models import registry
    from ..models.base import Fitted
    from ..io import is_spatialdata_path, write_spatialdata

    path = check_output(path, suffixes=OUTPUT_SUFFIXES)
    defaults = tl.EnhanceConfig()
    chunk = defaults.chunk if chunk is None else int(chunk)
    fill_lost = defaults.fill_lost if fill_lost is None else fill_lost
    if method is None:
        method = registry.PAPER_METHOD if model is not None and not isinstance(model, Fitted) else registry.DEFAULT_METHOD
    entry = registry.get(method)
    if model is not None and not isinstance(model, Fitted) and entry.kind != "network":
        raise InputError(model, "method", f"{method!r}: a checkpoint holds a network method ({', '.join(registry.names('network'))})")
    if checkpoint is not None and entry.kind != "network":
        raise InputError(checkpoint, "method", f"{method!r}: only network methods ({', '.join(registry.names('network'))}) write a checkpoint")
    # lost positions on the data's grid, before any fitting (errors name the value)
    gd = to_grid(adata[:, :0])
    lost.resolve(fill_lost, gd.grid, gd.mask, adata=adata, source=fill_lost_source or source_of(adata))
    if model is None:
        model = tl.train(adata, method=method, seed=seed, device=device, checkpoint=checkpoint, resume=bool(resume and checkpoint is not None), progress=progress, **(settings or {}))
    if is_spatialdata_path(path):  # SpatialData: built in memory, written atomically
        enh = tl.enhance(adata, model=model, method=method, chunk=chunk, device=device, fill_lost=fill_lost, progress=progress)
        write_spatialdata(enh, path)
        st = enh.uns["stentrans"]
        n_genes = enh.n_vars
    else:  # .h5ad, streamed to the file
        chunks = tl.enhance_chunks(adata, model=model, method=method, chunk=chunk, device=device, fill_lost=fill_lost, progress=progress)
        _stream_h5ad(chunks, path)
        st = chunks.skeleton.uns["stentrans"]
        n_genes = chunks.n_genes
    out = {"path": path, "method": st.get("method", method), "n_genes": int(n_genes), "fill_lost": st.get("fill_lost", "none")}
    out.update({k: int(st.get(k, 0)) for k in ("n_measured", "n_imputed", "n_lost")})
    log.info("enhanced %d genes (%s): %d measured + %d new spots (%d of them lost spots, fill_lost %s) -> %s", n_genes, out["method"], out["n_measured"], out["n_imputed"], out["n_lost"], out["fill_lost"], path)
    return out
