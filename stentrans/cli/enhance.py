"""Commands ``train`` (pretraining; writes a checkpoint) and ``enhance`` (2x enhancement to ``.h5ad``).

The model and training arguments are the fields of the methods' config
dataclasses (``ModelConfig``, ``TrainConfig``; ``RobustConfig`` with the
prefix ``--robust-``), so their defaults are written once, there. Lost spots
(:mod:`stentrans.lost`): ``--fill-lost none|auto|tissue``, or the positions
themselves with ``--lost 5x10,10x14`` (ST ids) / ``--lost-file FILE``, which
replace ``--fill-lost``; bad positions are refused before any training.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from .._errors import InputError
from ..models import registry
from ..models.paper.config import ModelConfig, TrainConfig
from ..models.robust.config import RobustConfig
from ..pp import gene_filter_note
from ..tl._enhance import EnhanceConfig
from ..tl._train import VARIANT_ALIASES, method_name
from ._args import add_config_args, config_from_args
from ._common import add_input_args, add_threads_arg, load_input

log = logging.getLogger("stentrans.enhance")

#: config dataclasses (and their flag prefix) of each kind of method; the seed is --seed for all
_CONFIGS = {"network": ((ModelConfig, ""), (TrainConfig, "")), "robust": ((RobustConfig, "robust-"),)}


def _add_model_args(p) -> None:
    g = p.add_argument_group("model and training (defaults: the authors' code)")
    add_config_args(g, ModelConfig)
    add_config_args(g, TrainConfig)
    g.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:1 ...")
    add_threads_arg(g)
    g.add_argument(
        "--variant",
        default=None,
        choices=[*VARIANT_ALIASES, *registry.METHODS],
        help=f"method (registry name; {', '.join(f'{k} = {v}' for k, v in VARIANT_ALIASES.items())}). {registry.DEFAULT_METHOD}: beats interpolation on spots never seen "
        f"(default of `enhance` without --model; README); {registry.PAPER_METHOD}: the paper-faithful network (default of `train`, the one that writes a checkpoint, and with --model)",
    )
    add_config_args(p, RobustConfig, prefix="robust-", skip=("seed",), title="robust variant (--variant robust)")
    add_input_args(p)


def _kind(method: str) -> str:
    return registry.get(method).kind


def _settings(args, method: str) -> dict:
    """The settings of ``method`` given on the command line (its kind's config fields, without the seed)."""
    out: dict = {}
    for cls, prefix in _CONFIGS.get(_kind(method), ()):
        d = dataclasses.asdict(config_from_args(cls, args, prefix=prefix))
        d.pop("seed", None)
        out.update(d)
    return out


def _cmd_train(args) -> int:
    from .. import tl

    method = method_name(variant=args.variant or registry.PAPER_METHOD)
    if _kind(method) != "network":
        raise InputError(args.output, "variant", f"{args.variant!r}: only the paper variant writes a checkpoint; use `stentrans enhance --variant {args.variant}`")
    adata = load_input(args)
    fitted = tl.train(adata, method, seed=args.seed, device=args.device, checkpoint=args.output, resume=args.resume, **_settings(args, method))
    log.info("trained %d epochs in %.1f s, final loss %.5g -> %s", fitted.epochs_run, fitted.seconds, fitted.final_loss, args.output)
    return 0


def _given_lost(args):
    """Positions of ``--lost`` / ``--lost-file`` (None when neither is given); errors name the value."""
    from .. import lost

    if args.lost is None and args.lost_file is None:
        return None
    out = []
    if args.lost is not None:
        if not args.lost.strip():
            raise InputError("--lost", None, "empty list of lost positions")
        out += lost.parse_positions(args.lost, source="--lost")
    if args.lost_file is not None:
        out += lost.read_positions_file(args.lost_file)
    return list(dict.fromkeys(out)), ("--lost" if args.lost_file is None else args.lost_file if args.lost is None else "--lost/--lost-file")


def _fill_lost(args, adata):
    """The ``fill_lost`` of ``tl.enhance``: the mode, or the given positions checked on the data's grid."""
    from ..grid import to_grid
    from ..lost import resolve

    given = _given_lost(args)
    gd = to_grid(adata[:, :0])
    if given is None:
        resolve(args.fill_lost, gd.grid, gd.mask, adata=adata, source=args.input)  # e.g. tissue without a positions file
        return args.fill_lost
    positions, source = given
    return resolve(positions, gd.grid, gd.mask, source=source)[1]


def _cmd_enhance(args) -> int:
    import anndata as ad

    from .. import tl
    from ..spatialdata import is_spatialdata_path, write_spatialdata

    method = method_name(variant=args.variant or (registry.PAPER_METHOD if args.model else None))
    _given_lost(args)  # syntax errors before reading the input
    adata = load_input(args)
    fill_lost = _fill_lost(args, adata)  # positions checked before training
    out_path = Path(args.output)
    if args.model:
        if _kind(method) != "network":
            raise InputError(args.model, "variant", f"{args.variant!r}: --model takes a paper-variant checkpoint")
        model = args.model
    else:
        ckpt = args.save_model
        if ckpt and _kind(method) != "network":
            raise InputError(ckpt, "variant", f"{args.variant or method!r}: --save-model keeps a paper-variant checkpoint; add --variant paper")
        model = tl.train(adata, method, seed=args.seed, device=args.device, checkpoint=ckpt, resume=args.resume and ckpt is not None, **_settings(args, method))
    if is_spatialdata_path(out_path):  # SpatialData: built in memory, written atomically (stentrans.spatialdata)
        enh = tl.enhance(adata, model, chunk=args.chunk, device=args.device, fill_lost=fill_lost)
        write_spatialdata(enh, out_path)
    else:  # .h5ad, streamed to the file
        tl.enhance(adata, model, chunk=args.chunk, device=args.device, out_path=out_path, fill_lost=fill_lost)
        enh = ad.read_h5ad(out_path, backed="r")
    prov = enh.uns["stentrans"]
    log.info("enhanced %d genes: %d measured + %d new spots (%d lost filled) -> %s", enh.n_vars, prov["n_measured"], prov["n_imputed"], prov.get("n_lost", 0), out_path)
    log.info("%s", gene_filter_note(adata))
    if enh.isbacked:
        enh.file.close()
    return 0


def register_cli(sub) -> None:
    """Add ``train`` and ``enhance``."""
    p = sub.add_parser("train", help="self-supervised pretraining; writes a checkpoint")
    p.add_argument("-o", "--output", required=True, help="checkpoint file (.pt)")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT if it exists")
    _add_model_args(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("enhance", help=f"enhance resolution 2x; {registry.DEFAULT_METHOD} variant by default, or the paper network from --model / --variant paper")
    p.add_argument("-o", "--output", required=True, help="enhanced .h5ad, or SpatialData when it ends in .zarr")
    p.add_argument("--model", help="checkpoint from `stentrans train`")
    p.add_argument("--save-model", help="where to keep the checkpoint when training here")
    p.add_argument("--resume", action="store_true")
    add_config_args(p, EnhanceConfig)
    p.add_argument("--lost", metavar="IDS", help="lost positions to fill, as ST spot ids XxY (array_col = X, array_row = Y), comma-separated, e.g. 5x10,10x14,15x22; replaces --fill-lost")
    p.add_argument("--lost-file", metavar="FILE", help="lost positions to fill, one per line: array_row,array_col or an ST id XxY; replaces --fill-lost")
    _add_model_args(p)
    p.set_defaults(func=_cmd_enhance)
