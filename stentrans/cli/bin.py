"""Command ``bin``: finer data (molecules, GEM, beads, cells) -> pseudo-spots on a hex or square lattice, and the truth at the enhanced positions.

Two modes:

* ``--spacing A --lattice hex|square`` (:func:`stentrans.io.pseudospots`):
  disks of diameter ``D`` on a Visium-like or ST-like lattice, in tissue
  only; ``--truth`` also writes the same disks at the positions ``stentrans
  enhance`` creates for those spots.
* ``--bin-size S`` (:func:`stentrans.io.square_bins`): square bins of side
  ``S`` covering the plane, every square holding ``--min-cells`` cells.

Both read the input with :func:`stentrans.io.read_finer` (one reader, one
binning module, :mod:`stentrans.io.binning`).
"""

from __future__ import annotations

import logging

from .._errors import InputError
from .._utils import atomic_path, check_output
from ..io import POINT_FORMATS, BinConfig, read_finer, square_bins
from ._args import add_config_args, config_from_args

log = logging.getLogger("stentrans")

__all__ = ["register_cli"]

_FORMATS = ("auto", *POINT_FORMATS)


def _drop(args) -> list[str]:
    return [d.strip() for d in (args.drop or "").split(",") if d.strip()]


def _cmd_bin_squares(args) -> int:
    """Square bins of side ``--bin-size`` covering the plane: the points of :func:`~stentrans.io.read_finer`, binned by :func:`~stentrans.io.square_bins`."""
    cfg = config_from_args(BinConfig, args, skip=("x", "y", "gene"))
    points = read_finer(args.input, args.format, x=args.x, y=args.y, gene=args.gene, count=args.count, drop=_drop(args), query=args.query)
    out = square_bins(points, args.bin_size, origin=args.origin, min_cells=cfg.min_cells)
    with atomic_path(args.output, suffix=".h5ad") as tmp:
        out.write_h5ad(tmp)
    log.info("binned %s -> %s (%d spots x %d genes)", args.input, args.output, out.n_obs, out.n_vars)
    return 0


def _cmd_bin(args) -> int:
    check_output(args.output, field="--output")  # before any work
    if args.truth is not None:
        check_output(args.truth, field="--truth")
    if args.bin_size is not None:
        for flag, value in (("--spacing", args.spacing), ("--truth", args.truth)):
            if value is not None:
                raise InputError(args.input, flag, "not with --bin-size (square full-coverage bins); use --spacing for disk spots")
        if args.lattice not in (None, "square"):
            raise InputError(args.input, "--lattice", f"{args.lattice!r}: --bin-size bins are square; use --spacing for a hex lattice")
        return _cmd_bin_squares(args)
    from ..io import PseudoSpotConfig, write_pseudospots

    if args.lattice is None:
        raise InputError(args.input, "--lattice", "give hex or square with --spacing")
    cfg = config_from_args(PseudoSpotConfig, args)
    columns = dict(x=args.x, y=args.y, gene=args.gene, count=args.count, drop=_drop(args), query=args.query)
    spots, truth = write_pseudospots(args.input, args.output, args.lattice, args.spacing, truth_output=args.truth, config=cfg, origin=args.origin, reader=args.format, **columns)
    b = spots.uns["binning"]
    log.info("binned %s -> %s: %d %s spots x %d genes (spacing %g, diameter %g)", args.input, args.output, spots.n_obs, args.lattice, spots.n_vars, b["spacing"], b["spot_diameter"])
    if truth is not None:
        log.info("truth -> %s: %d positions (%d new)", args.truth, truth.n_obs, int(truth.obs["is_imputed"].sum()))
    return 0


def register_cli(subparsers) -> None:
    """Add ``bin``."""
    from ..io import PseudoSpotConfig

    p = subparsers.add_parser(
        "bin",
        help="bin molecules, beads or cells into pseudo-spots (.h5ad), with the truth at the enhanced positions",
        description="Bin finer data into Visium-like (hex) or ST-like (square) disk spots with --spacing (and the truth at the positions stentrans enhance adds, --truth), or into square bins covering the plane with --bin-size.",
    )
    p.add_argument("input", help="molecule table (.csv/.tsv[.gz], .parquet), Stereo-seq GEM, bead table (XxY ids), cell .h5ad or cell table")
    p.add_argument("-o", "--output", required=True, metavar="SPOTS.h5ad", help="pseudo-spot .h5ad")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--spacing", type=float, default=None, metavar="A", help="centre-to-centre distance of neighbouring spots, in the input's coordinate units")
    mode.add_argument("--bin-size", type=float, default=None, help="square full-coverage bins of this side instead (cells or molecules, input units)")
    p.add_argument("--lattice", choices=["hex", "square"], default=None, help="spot lattice (with --spacing): hex (Visium-like) or square (ST-like)")
    p.add_argument("--truth", default=None, metavar="TRUTH.h5ad", help="also write the disks at every enhanced-lattice position in tissue")
    p.add_argument("--origin", type=float, nargs=2, default=None, metavar=("X", "Y"), help="position of lattice point (0, 0) (default: smallest x and y of the data)")
    add_config_args(p, PseudoSpotConfig, title="pseudo-spots (--spacing)")
    g = p.add_argument_group("input columns")
    g.add_argument("--format", choices=_FORMATS, default="auto", help="input layout: " + "; ".join(f"{k}, {f.what}" for k, f in POINT_FORMATS.items()) + " (default: detected from the name and header)")
    g.add_argument("--x", default=None, help="x column (default: detected, any case: a molecule layout's x_location, global_x, x_global_px or x; a cell table's x, x_centroid, center_x or CenterX_global_px)")
    g.add_argument("--y", default=None, help="y column (default: detected as --x)")
    g.add_argument("--gene", "--gene-column", dest="gene", default=None, help="gene column of one-molecule-per-row tables (default: detected, any case: feature_name, gene, target; GEM: geneID)")
    g.add_argument("--count", default=None, help="count column of molecule tables (default: detected, else 1 per row)")
    g.add_argument("--drop", default="", help="cell tables: comma-separated numeric columns that are not genes")
    g.add_argument("--query", default=None, help="cell tables: pandas query selecting rows first, e.g. 'Animal_ID == 1'")
    add_config_args(p.add_argument_group("square bins (--bin-size)"), BinConfig, skip=("x", "y", "gene"))
    p.set_defaults(func=_cmd_bin)

