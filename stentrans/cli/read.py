"""Commands that read an input: ``info`` (what it holds) and ``qc`` (read, filter, write); ``bin`` is :mod:`stentrans.cli.bin`."""

from __future__ import annotations

import dataclasses
import logging

from .._utils import atomic_path, check_output
from ..io import DEFAULT_SNAP_TOL, read, summary
from ..pp import QCConfig, gene_filter_note, qc
from ._args import add_config_args, config_from_args
from ._common import add_input_args

log = logging.getLogger("stentrans")


def _add_read_args(p) -> None:
    """The reader's options besides those of every input (:func:`stentrans.read`)."""
    g = p.add_argument_group("reading")
    g.add_argument("--snap-tol", type=float, default=DEFAULT_SNAP_TOL, help="largest off-lattice distance that is snapped (default %(default)s)")


def _read_args(args):
    return read(args.input, lattice=args.lattice, counts=args.counts, coords=args.coords, snap_tol=args.snap_tol, bin_size=args.bin_size)


# ---------------------------------------------------------------------------
# info, qc
# ---------------------------------------------------------------------------
def _cmd_info(args) -> int:
    s = summary(_read_args(args))
    u, v = s["grid"]
    print(f"file: {s['source']}")
    print(f"format: {s['format']}")
    print(f"spots: {s['spots']}")
    print(f"genes: {s['genes']}")
    print(f"lattice: {s['lattice']}")
    print(f"grid: {u} x {v} (u x v)")
    print(f"occupied: {s['occupied']:.3f} ({s['spots']} of {s['lattice_points']} lattice points of the grid)")
    return 0


def _cmd_qc(args) -> int:
    check_output(args.output, field="--output")  # before any work
    adata = _read_args(args)
    out = qc(adata, **dataclasses.asdict(config_from_args(QCConfig, args)))
    with atomic_path(args.output) as tmp:
        out.write_h5ad(tmp)
    log.info("qc: %d spots x %d genes -> %s", out.n_obs, out.n_vars, args.output)
    log.info("%s", gene_filter_note(out))
    return 0


def register_info(subparsers) -> None:
    """Add ``info``."""
    p = subparsers.add_parser("info", help="read an input and print spots, genes, lattice and grid", description="Read the input and print spots, genes, lattice, grid shape (u x v), fraction of the grid's lattice points occupied, and the source format.")
    add_input_args(p, qc=False)
    _add_read_args(p)
    p.set_defaults(func=_cmd_info)


def register_qc(subparsers) -> None:
    """Add ``qc``."""
    q = subparsers.add_parser("qc", help="read, filter spots and genes, write .h5ad", description="Read the input, drop low-count spots and rarely detected genes (stentrans.pp.qc), write OUT.h5ad atomically.")
    add_input_args(q, qc=False)
    q.add_argument("-o", "--output", required=True, metavar="OUT.h5ad", help="filtered data to write (checked before any work)")
    _add_read_args(q)
    add_config_args(q, QCConfig, title="QC")
    q.set_defaults(func=_cmd_qc)


def register_cli(subparsers) -> None:
    """Add ``info`` and ``qc`` to the ``stentrans`` command line."""
    register_info(subparsers)
    register_qc(subparsers)
