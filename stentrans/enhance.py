"""Enhancement and the enhanced AnnData (design.md section 3).

``G_hr = Phi(G) * H(M)``, computed over gene chunks, written as one AnnData
with the measured spots and the new ones on the half-step lattice.
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from ._utils import atomic_path, sha256_file
from ._version import __version__
from .grid import dense, grid_of, lattice_of
from .lattice import Grid, enhanced_mask, mask_from_pixels, spots_to_pixels

log = logging.getLogger("stentrans.enhance")


def affine_fit(rows, cols, xy) -> np.ndarray:
    """Least-squares affine map ``(array_row, array_col, 1) -> (x, y)``; (3, 2) matrix."""
    A = np.column_stack([np.asarray(rows, float), np.asarray(cols, float), np.ones(len(rows))])
    coef, *_ = np.linalg.lstsq(A, np.asarray(xy, float), rcond=None)
    return coef


def _halved_spatial(uns_spatial) -> dict:
    out = copy.deepcopy(dict(uns_spatial))
    for lib in out.values():
        sf = lib.get("scalefactors") if isinstance(lib, dict) else None
        if sf and "spot_diameter_fullres" in sf:
            sf["spot_diameter_fullres"] = float(sf["spot_diameter_fullres"]) / 2.0
    return out


def _jsonable(d):
    """uns must be h5ad-writable: no None, tuples become lists, lists of dicts become dicts."""
    if isinstance(d, dict):
        return {str(k): _jsonable(v) for k, v in d.items() if v is not None}
    if isinstance(d, (list, tuple)):
        if any(isinstance(v, dict) for v in d):  # h5ad cannot store a list of mappings
            return {str(i): _jsonable(v) for i, v in enumerate(d)}
        return [_jsonable(v) for v in d]
    if isinstance(d, (np.floating, np.integer)):
        return d.item()
    return d


def build_enhanced(adata, hr_values: np.ndarray, H: np.ndarray, grid: Grid, p: np.ndarray, q: np.ndarray, genes, provenance: dict | None = None, clip_negative: bool = True) -> ad.AnnData:
    """Assemble the enhanced AnnData.

    Parameters
    ----------
    adata
        The measured AnnData (obs, obsm["spatial"], uns["spatial"] are used).
    hr_values
        ``(n_new_spots, n_genes)`` values at the ``H`` pixels in C order
        (``np.nonzero(H)``).
    H
        Enhanced mask on the doubled grid ``grid.up()``.
    grid, p, q
        Measured grid and the measured spots' pixels (obs order).
    """
    up = grid.up()
    P, Q = np.nonzero(H)
    rows, cols = up.coords(P, Q)
    measured_pix = np.full(grid.shape, -1, dtype=np.int64)
    measured_pix[p, q] = np.arange(len(p))
    is_meas = (P % 2 == 0) & (Q % 2 == 0)
    src_idx = np.full(len(P), -1, dtype=np.int64)
    src_idx[is_meas] = measured_pix[P[is_meas] // 2, Q[is_meas] // 2]
    is_meas &= src_idx >= 0
    barcodes = np.where(is_meas, np.asarray(adata.obs_names)[np.maximum(src_idx, 0)], "")
    names = np.where(is_meas, barcodes, np.char.add(np.char.add(np.char.add("new_r", np.char.mod("%g", rows)), "_c"), np.char.mod("%g", cols)))
    obs = pd.DataFrame(
        {
            "is_imputed": ~is_meas,
            "array_row": rows.astype(np.float64),
            "array_col": cols.astype(np.float64),
            "barcode": barcodes.astype(str),
            "in_tissue": np.ones(len(P), dtype=np.int64),
        },
        index=pd.Index(names.astype(str), name=None),
    )
    X = None
    if hr_values is not None:  # None: a skeleton whose X is streamed to the file later
        X = np.asarray(hr_values, dtype=np.float32)
        if clip_negative:
            np.maximum(X, 0, out=X)
    out = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=pd.Index(list(map(str, genes)))))
    if "spatial" in adata.obsm:
        coef = affine_fit(adata.obs["array_row"], adata.obs["array_col"], np.asarray(adata.obsm["spatial"])[:, :2])
        out.obsm["spatial"] = np.column_stack([rows, cols, np.ones(len(rows))]) @ coef
    if "spatial" in adata.uns:
        out.uns["spatial"] = _halved_spatial(adata.uns["spatial"])
    st_in = dict(adata.uns.get("stentrans", {}))
    st = {k: st_in[k] for k in ("lattice", "source", "format", "input_sha256", "qc", "scale") if k in st_in}
    st["grid"] = up.to_dict()
    st["measured_grid"] = grid.to_dict()
    st["version"] = __version__
    st["clipped_negative"] = bool(clip_negative)
    st["n_measured"] = int(is_meas.sum())
    st["n_imputed"] = int((~is_meas).sum())
    st.update(provenance or {})
    out.uns["stentrans"] = _jsonable(st)
    return out


def enhance(adata, model=None, genes=None, layer: str | None = None, chunk: int = 512, device="auto", train_kwargs: dict | None = None, checkpoint_path=None, progress: bool = True, clip_negative: bool = True, out_path=None):
    """Enhance every gene: ``Phi(G) * H(M)`` on the doubled lattice.

    Parameters
    ----------
    adata
        Measured AnnData (from :func:`stentrans.read`, usually after
        :func:`stentrans.pp.filter`).
    model
        A trained :class:`~stentrans.model.StEnTrans`, a :class:`TrainResult`,
        a checkpoint path, a :class:`~stentrans.robust.RobustResult`, or
        ``None`` to fit first with ``tl.train(adata, **train_kwargs)``; then the
        robust variant is the default (``train_kwargs={"variant": "paper"}``
        for the paper's network).
    chunk
        Genes per forward batch; memory stays bounded by the chunk size.
    out_path
        Stream the result to this ``.h5ad`` (written atomically) instead of
        returning it: X is written one gene chunk at a time, so the output
        never has to fit in memory. Returns the path.

    Returns
    -------
    AnnData of design.md section 3: measured and new spots, ``obs["is_imputed"]``,
    half-step ``array_row``/``array_col``, pixel ``obsm["spatial"]``,
    ``uns["spatial"]`` with the spot diameter halved and provenance in
    ``uns["stentrans"]``.
    """
    from .train import TrainResult, model_from_checkpoint, predict
    from .train import train as _train

    t0 = time.perf_counter()
    prov: dict = {}
    if model is None:
        kw = {"variant": "robust", **(train_kwargs or {})}
        if kw["variant"] == "paper":
            kw["checkpoint"] = checkpoint_path
        res = _train(adata, layer=layer, genes=genes, device=device, progress=progress, **kw)
        model = res
    if isinstance(model, (str, Path)):
        ckpt = Path(model)
        model, state = model_from_checkpoint(ckpt, device=device)
        prov.update({"model_config": state["model_config"], "train_config": state["train_config"], "epochs_run": state["epoch"], "final_loss": state["losses"][-1] if state["losses"] else float("nan"), "checkpoint_sha256": sha256_file(ckpt), **state.get("extra", {})})
        trained_lattice = state.get("lattice")
    elif isinstance(model, TrainResult):
        res = model
        model = res.model
        prov.update({"variant": "paper", "model_config": res.model_config.to_dict(), "train_config": res.train_config.to_dict(), "epochs_run": res.epochs_run, "final_loss": res.final_loss, "train_seconds": res.seconds, "device": res.device})
        if checkpoint_path is not None and Path(checkpoint_path).is_file():
            prov["checkpoint_sha256"] = sha256_file(checkpoint_path)
        trained_lattice = res.lattice
    else:
        from .robust import RobustResult

        trained_lattice = None
        if isinstance(model, RobustResult):
            prov.update(model.provenance())
            trained_lattice = model.lattice
    lattice = lattice_of(adata)
    if trained_lattice and trained_lattice != lattice:
        log.warning("model was trained on a %s lattice, enhancing a %s lattice", trained_lattice, lattice)
    grid = grid_of(adata)
    obs_r, obs_c = adata.obs["array_row"].to_numpy(), adata.obs["array_col"].to_numpy()
    p, q = spots_to_pixels(obs_r, obs_c, grid, source=adata.uns.get("stentrans", {}).get("source"), ids=adata.obs_names)
    mask = mask_from_pixels(p, q, grid.shape)
    H = enhanced_mask(mask, lattice)
    P, Q = np.nonzero(H)
    sub = adata if genes is None else adata[:, list(genes)]
    Xsrc = sub.layers[layer] if layer else sub.X
    n_genes = sub.n_vars
    out = np.empty((len(P), n_genes), dtype=np.float32)
    from tqdm.auto import tqdm

    from .robust import RobustResult

    robust = isinstance(model, RobustResult)
    if robust:  # library size and shared factors come from all genes, so chunks are exact
        maps_all = np.zeros((n_genes,) + grid.shape, dtype=np.float32)
        maps_all[:, p, q] = dense(Xsrc).astype(np.float32).T
        context = model.context_for(maps_all, mask)
        del maps_all

    def blocks():
        for s in tqdm(range(0, n_genes, chunk), desc="enhance", unit="chunk", disable=not progress):
            vals = dense(Xsrc[:, s : s + chunk]).astype(np.float32)
            maps = np.zeros((vals.shape[1],) + grid.shape, dtype=np.float32)
            maps[:, p, q] = vals.T
            hr = model.predict(maps, mask, context=context, chunk=chunk) if robust else predict(model, maps, batch_size=chunk)
            yield s, np.ascontiguousarray(hr[:, P, Q].T)

    if out_path is None:
        out = np.empty((len(P), n_genes), dtype=np.float32)
        for s, block in blocks():
            out[:, s : s + block.shape[1]] = block
        prov["enhance_seconds"] = time.perf_counter() - t0
        return build_enhanced(adata, out, H, grid, p, q, sub.var_names, provenance=prov, clip_negative=clip_negative)

    # streamed: the file gets obs/var/uns first, then X one gene chunk at a time,
    # so peak memory is one chunk of the output, whatever the number of genes
    import h5py
    from anndata.io import write_elem

    prov["streamed"] = True
    skeleton = build_enhanced(adata, None, H, grid, p, q, sub.var_names, provenance=prov, clip_negative=clip_negative)
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


def write_h5ad(adata, path) -> Path:
    """Write an AnnData atomically (temp file + rename)."""
    path = Path(path)
    with atomic_path(path, suffix=".h5ad") as tmp:
        adata.write_h5ad(tmp)
    return path


# ---------------------------------------------------------------- CLI
def _add_model_args(p) -> None:
    g = p.add_argument_group("model and training (defaults: the authors' code)")
    g.add_argument("--epochs", type=int, default=500)
    g.add_argument("--batch-size", type=int, default=512)
    g.add_argument("--lr", type=float, default=1e-3)
    g.add_argument("--betas", type=float, nargs=2, default=(0.5, 0.6))
    g.add_argument("--eps", type=float, default=1e-6)
    g.add_argument("--patch-size", type=int, default=3)
    g.add_argument("--depth", type=int, default=12)
    g.add_argument("--heads", type=int, default=4)
    g.add_argument("--no-pos", action="store_true", help="ablation: no position encoding")
    g.add_argument("--no-res", action="store_true", help="ablation: no residual add of the input")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:1 ...")
    g.add_argument("--checkpoint-every", type=int, default=10)
    g.add_argument("--crop", type=int, default=None, help="train on random windows of this side (pixels of the half-resolution input); default: whole maps up to 2,048 patch tokens, ~1,024-token windows beyond (Visium HD); 0: always whole maps")
    g.add_argument("--variant", default=None, choices=["paper", "robust"], help="robust: beats interpolation on spots never seen (default of `enhance` without --model; README); paper: the paper-faithful network (default of `train` and with --model)")
    g.add_argument("--robust-net", action="store_true", help="robust variant: add the transformer correction (off by default: it did not help under the nested protocol)")
    q = p.add_argument_group("input and QC")
    q.add_argument("--lattice", default="auto", choices=["auto", "square", "hex"])
    q.add_argument("--min-spot-fraction", type=float, default=0.1, help="genes detected in more than this fraction of spots")
    q.add_argument("--no-filter", action="store_true", help="use the input's genes as they are (already QC-ed)")


def _train_kwargs(args) -> dict:
    return dict(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, betas=tuple(args.betas), eps=args.eps,
        patch_size=args.patch_size, depth=args.depth, heads=args.heads, use_pos=not args.no_pos, use_res=not args.no_res,
        seed=args.seed, device=args.device, checkpoint_every=args.checkpoint_every, crop=args.crop,
        variant=args.variant, robust_kwargs={"net": True} if args.robust_net else None,
    )


def _load_input(args):
    from . import pp
    from .io import read

    adata = read(args.input, lattice=args.lattice)
    if not args.no_filter:
        adata = pp.qc(adata, min_spot_fraction=args.min_spot_fraction)
    return adata


def _cmd_train(args) -> int:
    from ._errors import InputError
    from .train import train

    args.variant = args.variant or "paper"
    if args.variant != "paper":
        raise InputError(args.output, "variant", f"{args.variant!r}: only the paper variant writes a checkpoint; use `stentrans enhance --variant robust`")
    adata = _load_input(args)
    res = train(adata, checkpoint=args.output, resume=args.resume, **_train_kwargs(args))
    log.info("trained %d epochs in %.1f s, final loss %.5g -> %s", res.epochs_run, res.seconds, res.final_loss, args.output)
    return 0


def _cmd_enhance(args) -> int:
    args.variant = args.variant or ("paper" if args.model else "robust")
    adata = _load_input(args)
    out_path = Path(args.output)
    if args.model:
        if args.variant != "paper":
            from ._errors import InputError

            raise InputError(args.model, "variant", f"{args.variant!r}: --model takes a paper-variant checkpoint")
        model = args.model
        ckpt = None
    else:
        from .train import train

        ckpt = args.save_model
        if ckpt and args.variant != "paper":
            from ._errors import InputError

            raise InputError(ckpt, "variant", f"{args.variant!r}: --save-model keeps a paper-variant checkpoint; add --variant paper")
        model = train(adata, checkpoint=ckpt, resume=args.resume and ckpt is not None, **_train_kwargs(args))
    enhance(adata, model, chunk=args.chunk, device=args.device, checkpoint_path=ckpt, out_path=out_path)
    enh = ad.read_h5ad(out_path, backed="r")
    log.info("enhanced %d genes: %d measured + %d new spots -> %s", enh.n_vars, enh.uns["stentrans"]["n_measured"], enh.uns["stentrans"]["n_imputed"], out_path)
    enh.file.close()
    return 0


def register_cli(sub) -> None:
    p = sub.add_parser("train", help="self-supervised pretraining; writes a checkpoint")
    p.add_argument("input", help="h5ad, Space Ranger outs folder, ST table ...")
    p.add_argument("-o", "--output", required=True, help="checkpoint file (.pt)")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT if it exists")
    _add_model_args(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("enhance", help="enhance resolution 2x; robust variant by default, or the paper network from --model / --variant paper")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True, help="enhanced .h5ad")
    p.add_argument("--model", help="checkpoint from `stentrans train`")
    p.add_argument("--save-model", help="where to keep the checkpoint when training here")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--chunk", type=int, default=512, help="genes per forward batch")
    _add_model_args(p)
    p.set_defaults(func=_cmd_enhance)
