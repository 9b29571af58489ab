"""Commands ``train`` (pretraining; writes a checkpoint) and ``enhance`` (2x enhancement to ``.h5ad`` / ``.zarr``).

The model and training arguments are the fields of the methods' config
dataclasses (``ModelConfig``, ``TrainConfig``; ``RobustConfig`` with the
prefix ``--robust-``), so their defaults are written once, there; ``enhance
--help`` groups them by method, the default method first. Lost spots
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
from ..tl import EnhanceConfig
from ._args import add_config_args, config_from_args
from ._common import add_input_args, add_threads_arg, load_input

log = logging.getLogger("stentrans.enhance")

#: config dataclasses (and their flag prefix) of each kind of method; the seed is --seed for all
_CONFIGS = {"network": ((ModelConfig, ""), (TrainConfig, "")), "robust": ((RobustConfig, "robust-"),)}
#: ``--variant`` (before the method registry): its values that are not registry names
_VARIANT_ALIASES = {"paper": registry.PAPER_METHOD}


def _method(args, default: str) -> str:
    """The registry name of ``--method`` (or of the older ``--variant``, which warns); ``default`` when neither is given."""
    variant = getattr(args, "variant", None)
    if variant is not None:
        alias = _VARIANT_ALIASES.get(variant, variant)
        if args.method is not None and args.method != alias:
            raise InputError(None, "--variant", f"{variant!r} contradicts --method {args.method}; give only --method")
        log.warning("--variant is the older name of --method: use --method %s", alias)
        return registry.get(alias).name
    return registry.get(args.method or default).name


def _add_method_args(p, *, default: str) -> None:
    """``--method`` (and its older name ``--variant``), ``--seed``, ``--device`` and ``--threads``."""
    kinds = {k: ", ".join(registry.names(k)) for k in registry.KINDS}
    p.add_argument(
        "--method",
        default=None,
        choices=list(registry.METHODS),
        metavar="METHOD",
        help=f"a method of the registry (default: {default}): the robust method ({kinds['robust']}), "
        f"network methods ({kinds['network']}; {registry.PAPER_METHOD} is the paper's network) or baselines ({kinds['baseline']})",
    )
    p.add_argument("--seed", type=int, default=TrainConfig().seed, help="seed of the fit (initialisation, batch order, self-supervised splits) (default: %(default)s)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:1 ... (default: %(default)s)")
    add_threads_arg(p)


def _add_network_args(g) -> None:
    """The network methods' model and training settings (the authors' defaults)."""
    add_config_args(g, ModelConfig)
    add_config_args(g, TrainConfig, skip=("seed",))


def _add_older_names(p) -> None:
    g = p.add_argument_group("older names")
    g.add_argument("--variant", default=None, choices=[*_VARIANT_ALIASES, *registry.METHODS], metavar="VARIANT", help=f"older name of --method (warns); paper is {registry.PAPER_METHOD}")


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
    from .._utils import check_output

    check_output(args.output, suffixes=("",), field="--output")  # before any work
    method = _method(args, registry.PAPER_METHOD)
    if _kind(method) != "network":
        raise InputError(args.output, "--method", f"{method!r}: only network methods ({', '.join(registry.names('network'))}) write a checkpoint; use `stentrans enhance --method {method}`")
    adata = load_input(args)
    fitted = tl.train(adata, method=method, seed=args.seed, device=args.device, checkpoint=args.output, resume=args.resume, **_settings(args, method))
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


def _cmd_enhance(args) -> int:
    from .._utils import check_output
    from ..run import OUTPUT_SUFFIXES, enhance_to

    check_output(args.output, suffixes=OUTPUT_SUFFIXES, field="--output")  # before any work
    method = _method(args, registry.PAPER_METHOD if args.model else registry.DEFAULT_METHOD)
    network = ", ".join(registry.names("network"))
    if args.save_model and _kind(method) != "network":
        raise InputError(args.save_model, "--method", f"{method!r}: --save-model keeps the checkpoint of a network method ({network}); add --method {registry.PAPER_METHOD}")
    if args.model and _kind(method) != "network":
        raise InputError(args.model, "--method", f"{method!r}: --model takes the checkpoint of a network method ({network})")
    given = _given_lost(args)  # syntax errors before reading the input
    adata = load_input(args)
    enhance_to(
        adata,
        args.output,
        method=method,
        model=args.model,
        seed=args.seed,
        device=args.device,
        settings=None if args.model else _settings(args, method),
        checkpoint=None if args.model else args.save_model,
        resume=args.resume,
        chunk=args.chunk,
        fill_lost=args.fill_lost if given is None else given[0],
        fill_lost_source=args.input if given is None else given[1],
        measured=args.measured,
        interval=args.interval,
    )
    log.info("%s", gene_filter_note(adata))  # the last line: the genes kept and how to change it
    return 0


def register_cli(sub) -> None:
    """Add ``train`` and ``enhance``."""
    p = sub.add_parser(
        "train",
        help="self-supervised pretraining of a network method; writes a checkpoint",
        description=f"Pretrain a network method ({', '.join(registry.names('network'))}) on the input's own genes and write its checkpoint, for `stentrans enhance --model`.",
    )
    p.add_argument("-o", "--output", required=True, metavar="MODEL.pt", help="checkpoint file to write (checked before any work)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint OUTPUT when it exists (an interrupted run picks up where it stopped)")
    _add_method_args(p, default=registry.PAPER_METHOD)
    _add_network_args(p.add_argument_group("model and training (defaults: the authors' code)"))
    add_input_args(p)
    _add_older_names(p)
    p.set_defaults(func=_cmd_train)

    robust = ", ".join(registry.names("robust"))
    p = sub.add_parser(
        "enhance",
        help=f"enhance resolution 2x; the {registry.DEFAULT_METHOD} method by default, or the paper network from --model / --method {registry.PAPER_METHOD}",
        description=f"Fit a method on the input and write every gene on the doubled lattice (measured spots and new ones). The {registry.DEFAULT_METHOD} method is the default "
        f"(README, which method to use); --method picks another one of the registry, --model enhances with a network's checkpoint from `stentrans train`. "
        "Each method reads only its own group of options below.",
    )
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="enhanced data to write: OUT.h5ad (AnnData) or OUT.zarr (SpatialData); checked before any work")
    _add_method_args(p, default=f"{registry.DEFAULT_METHOD}; {registry.PAPER_METHOD} with --model")
    g = p.add_argument_group("enhancement (every method)")
    add_config_args(g, EnhanceConfig)
    g.add_argument("--lost", metavar="IDS", help="lost positions to fill, as ST spot ids XxY (array_col = X, array_row = Y), comma-separated, e.g. 5x10,10x14,15x22; replaces --fill-lost")
    g.add_argument("--lost-file", metavar="FILE", help="lost positions to fill, one per line: array_row,array_col or an ST id XxY; replaces --fill-lost")
    add_config_args(p, RobustConfig, prefix="robust-", skip=("seed",), title=f"the robust method (the default; --method {robust})")
    g = p.add_argument_group(f"network methods (--method {registry.PAPER_METHOD} and its ablations, or --model): checkpoint, model and training (defaults: the authors' code)")
    g.add_argument("--model", metavar="MODEL.pt", help="enhance with this checkpoint of `stentrans train` instead of fitting here")
    g.add_argument("--save-model", metavar="MODEL.pt", help="keep the checkpoint of the network fitted here at this path")
    g.add_argument("--resume", action="store_true", help="with --save-model: continue from that checkpoint when it exists (an interrupted fit picks up where it stopped)")
    _add_network_args(g)
    add_input_args(p)
    _add_older_names(p)
    p.set_defaults(func=_cmd_enhance)
