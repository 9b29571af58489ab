"""Command ``evaluate``: per-gene PCC of the registry's methods under the protocols, tables and figures."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from .._errors import InputError
from ..models import registry
from ..models.baselines.config import DISTConfig, NEDIConfig
from ..models.paper.config import ModelConfig, TrainConfig
from ..tl._evaluate import EvaluateConfig
from ..tl._protocols import PROTOCOLS
from ._args import add_config_args, config_from_args
from ._common import add_input_args, add_threads_arg, load_input

log = logging.getLogger("stentrans.evaluate")

#: stEnTrans settings that are methods of their own here (the ablations) or belong to checkpoints
_MODEL_SKIP = ("use_pos", "use_res")
_TRAIN_SKIP = ("seed", "checkpoint_every")
#: settings of the baselines, by method (flags --dist-..., --nedi-...)
_BASELINE_CONFIGS = {"dist": DISTConfig, "nedi": NEDIConfig}


def _save(fig, prefix) -> list:
    """Write a figure of :mod:`stentrans.pl` as ``prefix.png``/``.pdf``; the paths."""
    import matplotlib.pyplot as plt

    from .. import pl

    paths = pl.save_figure(fig, prefix, rc=pl.RC)
    plt.close(fig)
    return paths


def _cmd_evaluate(args) -> int:
    from .. import pl, tl
    from ..report import format_pm, write_results

    from ..pp import gene_filter_note

    adata = load_input(args)
    out = Path(args.output)
    panel = [g.strip() for g in args.genes.split(",") if g.strip()] if args.genes else None
    # fitted: every gene QC keeps (as enhance fits them); scored: those detected in more than 10 % of the spots
    panel, _, score = tl.evaluation_genes(adata, panel, args.n_panel_genes, source=args.input, field="--genes")
    seeds = list(range(args.seeds))
    model_kwargs = dataclasses.asdict(config_from_args(ModelConfig, args, skip=_MODEL_SKIP))
    for k in _MODEL_SKIP:
        model_kwargs.pop(k)
    train_kwargs = dataclasses.asdict(config_from_args(TrainConfig, args, skip=_TRAIN_SKIP))
    for k in _TRAIN_SKIP + ("epochs",):
        train_kwargs.pop(k)
    baseline_kwargs = {m: dataclasses.asdict(config_from_args(cls, args, prefix=f"{m}-")) for m, cls in _BASELINE_CONFIGS.items()}
    dataset = args.dataset or Path(args.input).name.split(".")[0]
    res = tl.evaluate(
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
        truth=args.truth,
        score_genes=score,
    )
    paths = write_results(res, out, ablation=args.ablation)
    paths["boxplot"] = _save(pl.pcc_boxplots(res["per_gene"]), out / "boxplot")
    # the panels show the default protocol when it ran, else the first measured-grid one
    proto = next((p for p in dict.fromkeys([EvaluateConfig().protocol, *PROTOCOLS]) if p in res["maps"]), None)
    if proto is not None:
        paths["gene_panels"] = _save(pl.gene_panels(adata, panel, res["maps"][proto], title=f"{dataset}: protocol {proto}, seed {seeds[0]}"), out / "gene_panels")
    else:
        log.info("no measured-grid protocol run: gene panels skipped")
    for _, row in res["summary"].iterrows():
        log.info("%-22s %-18s median PCC %s", row["protocol"], row["method"], format_pm(row["mean"], row["sd"]))
    flat = [p for v in paths.values() for p in (v if isinstance(v, list) else [v])]
    log.info("wrote %s", ", ".join(str(p) for p in flat))
    log.info("%s", gene_filter_note(adata))
    return 0


def register_cli(subparsers) -> None:
    """Add ``stentrans evaluate``."""
    import argparse

    p = subparsers.add_parser(
        "evaluate",
        help="per-gene PCC of stEnTrans and the baselines (paper, nested, heldout-genes, truth, realtruth protocols)",
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
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda")
    add_threads_arg(p)
    g = p.add_argument_group("stEnTrans model and training (defaults: the authors' code)")
    add_config_args(g, TrainConfig, skip=_TRAIN_SKIP)
    add_config_args(g, ModelConfig, skip=_MODEL_SKIP)
    add_config_args(p, DISTConfig, prefix="dist-", title="DIST")
    add_config_args(p, NEDIConfig, prefix="nedi-", title="NEDI")
    p.add_argument("--dataset", default=None, help="label of the data set in the tables (default: input file name)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_input_args(p)
    p.set_defaults(func=_cmd_evaluate)
