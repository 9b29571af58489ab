"""Command ``evaluate``: per-gene PCC of the registry's methods under the protocols, tables and figures."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from ..models import registry
from ..models.baselines.config import DISTConfig, NEDIConfig
from ..models.paper.config import ModelConfig, TrainConfig
from ..tl import PROTOCOLS, EvaluateConfig
from ._args import add_config_args, config_from_args
from ._common import add_input_args, add_threads_arg, load_input

#: stEnTrans settings that are methods of their own here (the ablations) or belong to checkpoints
_MODEL_SKIP = ("use_pos", "use_res")
_TRAIN_SKIP = ("seed", "checkpoint_every")
#: settings of the baselines, by method (flags --dist-..., --nedi-...)
_BASELINE_CONFIGS = {"dist": DISTConfig, "nedi": NEDIConfig}

log = logging.getLogger("stentrans.evaluate")


def _cmd_evaluate(args) -> int:
    from .._utils import check_output
    from ..pp import gene_filter_note
    from ..run import evaluate_to

    check_output(args.output, folder=True, field="--output")  # before any work
    adata = load_input(args)
    network = dataclasses.asdict(config_from_args(ModelConfig, args, skip=_MODEL_SKIP))
    for k in _MODEL_SKIP:
        network.pop(k)
    train = dataclasses.asdict(config_from_args(TrainConfig, args, skip=_TRAIN_SKIP))
    for k in _TRAIN_SKIP:
        train.pop(k)
    settings = {"network": {**network, **train}}
    settings.update({m: dataclasses.asdict(config_from_args(cls, args, prefix=f"{m}-")) for m, cls in _BASELINE_CONFIGS.items()})
    evaluate_to(
        adata,
        args.output,
        protocols=args.protocol,
        methods=args.methods,
        seeds=args.seeds,
        settings=settings,
        truth=args.truth,
        panel_genes=args.genes.split(",") if args.genes else None,
        n_panel_genes=args.n_panel_genes,
        max_genes=args.max_genes,
        ablation=args.ablation,
        heldout_fraction=args.heldout_fraction,
        dataset=args.dataset or Path(args.input).name.split(".")[0],
        device=args.device,
        progress=not args.no_progress,
    )
    log.info("%s", gene_filter_note(adata))  # the last line: the genes kept and how to change it
    return 0


def register_cli(subparsers) -> None:
    """Add ``stentrans evaluate``."""
    import argparse

    p = subparsers.add_parser(
        "evaluate",
        help=f"per-gene PCC of the methods under the protocols ({', '.join(PROTOCOLS)})",
        description="Down-sample the measured data, predict it back with stEnTrans and the baselines, "
        "and score every method with the per-gene Pearson correlation (docs/method.md section 5); "
        "with pseudo-spots of finer data and --truth, score the enhanced lattice against the real truth "
        "(--protocol realtruth, section 6).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("-o", "--output", required=True, help="output folder")
    add_config_args(p, EvaluateConfig)
    p.add_argument("--truth", default=None, metavar="TRUTH.h5ad", help="truth of finer data at the enhanced positions of INPUT's spots (stentrans bin --truth), for --protocol realtruth")
    p.add_argument("--methods", default=",".join(registry.DEFAULT_EVAL_METHODS), help=f"comma list of {', '.join(registry.METHODS)}")
    p.add_argument("--ablation", action="store_true", help="add w/o Pos, w/o Res, w/o both; writes table1.tsv/.md")
    p.add_argument("--genes", default=None, help="comma list of genes for the gene panels (default: the top-variance genes)")
    p.add_argument("--n-panel-genes", type=int, default=4, help="genes in the panels when --genes is not given")
    p.add_argument("--max-genes", type=int, default=None, help="fit and score at most this many genes, the most variable (and the panel's); default: every method fitted on every gene QC keeps, the genes detected in more than 10 %% of the spots scored")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda")
    add_threads_arg(p)
    g = p.add_argument_group("stEnTrans model and training (defaults: the authors' code)")
    add_config_args(g, TrainConfig, skip=_TRAIN_SKIP)
    add_config_args(g, ModelConfig, skip=_MODEL_SKIP)
    add_config_args(p, DISTConfig, prefix="dist-", title="DIST")
    add_config_args(p, NEDIConfig, prefix="nedi-", title="NEDI")
    p.add_argument("--dataset", default=None, help="label of the data set in the tables (default: input file name)")
    p.add_argument("--no-progress", action="store_true", help="turn off the progress bars")
    add_input_args(p)
    p.set_defaults(func=_cmd_evaluate)
