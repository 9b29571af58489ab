"""``stentrans patterns``: Sepal ranking, pattern families and GO enrichment (paper Fig. 4)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from .._errors import InputError
from ._args import add_config_args, config_from_args
from ._common import add_input_args, add_threads_arg, load_input


def register_cli(subparsers) -> None:
    """``stentrans patterns INPUT [--enhanced E.h5ad] [--gmt FILE] [--top 150] [--species human|mouse] [--seeds 3] [--control linear] -o DIR``."""
    from ..tl import PatternsConfig

    p = subparsers.add_parser(
        "patterns",
        help="Sepal ranking, pattern families and GO enrichment (paper Fig. 4)",
        description="Rank genes by Sepal diffusion time on the measured (and enhanced) data, group the top genes into pattern families, test them for GO:BP enrichment and list terms found only after enhancement; "
        "with --enhanced and --gmt also Fig. 4's control: the new terms after the same method at further seeds and after linear interpolation of the same spots.",
    )
    # Sepal ranks the genes of the authors' filter (detected in more than 10 % of the spots), not every gene enhance keeps
    add_input_args(p, qc_defaults={"min_spot_fraction": 0.1})
    p.add_argument("--enhanced", metavar="ENHANCED.h5ad", help="enhanced AnnData from 'stentrans enhance'")
    p.add_argument("--gmt", metavar="FILE", help="gene sets (GMT), e.g. GO_BP_human_propagated.gmt; without it no enrichment")
    add_config_args(p, PatternsConfig, title="patterns")
    p.add_argument("-o", "--outdir", required=True, metavar="DIR", help="folder the tables, summary.json and figures go to (checked before any work)")
    add_threads_arg(p)
    p.set_defaults(func=_cli_run)


def _read_enhanced(path):
    """The enhanced AnnData (an ``.h5ad`` written by ``stentrans enhance``), lattice checked."""
    import anndata

    from ..grid import lattice_of

    if not Path(path).is_file():
        raise InputError(path, None, "file not found")
    enhanced = anndata.read_h5ad(path)
    st = enhanced.uns.get("stentrans")
    if isinstance(st, dict):
        st.setdefault("source", str(path))
    lattice_of(enhanced)
    return enhanced


def _cli_run(args) -> int:
    from .._utils import check_output
    from ..pp import gene_filter_note
    from ..run import patterns_to
    from ..tl import PatternsConfig, read_gmt

    check_output(args.outdir, folder=True, field="--outdir")  # before any work
    cfg = config_from_args(PatternsConfig, args)
    if cfg.top < 3:
        raise InputError(None, "--top", f"must be >= 3, got {cfg.top}")
    # the gene sets first: a missing, binary or malformed GMT stops before any work (and any output)
    sets = read_gmt(args.gmt) if args.gmt else None
    adata = load_input(args)
    enhanced = _read_enhanced(args.enhanced) if args.enhanced else None
    res = patterns_to(adata, args.outdir, enhanced=enhanced, gmt=sets, **dataclasses.asdict(cfg))
    s = res["summary"]
    print(f"top-10 (original): {', '.join(s['top10']['original'])}")
    if "enhanced" in s["top10"]:
        print(f"top-10 (enhanced): {', '.join(s['top10']['enhanced'])}")
    print(f"wrote {len(res['files'])} files to {args.outdir}")
    logging.getLogger("stentrans").info("%s", gene_filter_note(adata))
    return 0
