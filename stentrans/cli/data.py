"""Commands that make data sets: ``simulate`` (a section with a 2x-resolution truth) and ``download`` (checked)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

from .._utils import atomic_path, check_output
from ..datasets import DownloadConfig, SimConfig, download, simulate, write_program_gmt
from ._args import add_config_args, config_from_args

log = logging.getLogger("stentrans")

# simulate's settings that are not on the command line (their defaults apply)
_SIM_OFF_CLI = ("library_sd", "noise_fraction", "boundary_width", "tissue_fraction")


# ---------------------------------------------------------------------------
# simulate
# ---------------------------------------------------------------------------
def _cmd_simulate(args) -> int:
    check_output(args.output, field="--output")  # before any work
    if args.gmt:
        check_output(args.gmt, suffixes=("",), field="--gmt")
    cfg = config_from_args(SimConfig, args, skip=_SIM_OFF_CLI, shape=tuple(args.shape) if args.shape else None)
    adata = simulate(**dataclasses.asdict(cfg))
    with atomic_path(args.output) as tmp:
        adata.write_h5ad(tmp)
    log.info("wrote %s (%d spots x %d genes)", args.output, adata.n_obs, adata.n_vars)
    if args.gmt:
        write_program_gmt(adata, args.gmt)
        log.info("wrote the planted programs as gene sets: %s", args.gmt)
    return 0


def register_simulate(subparsers) -> None:
    """Add ``simulate``."""
    p = subparsers.add_parser(
        "simulate",
        help="write simulated spatial transcriptomics with a 2x-resolution truth",
        description="Simulate a tissue section on an ST (square) or Visium (hex) lattice; the truth at twice the resolution is stored in uns['truth'].",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_config_args(p, SimConfig, skip=_SIM_OFF_CLI)
    p.add_argument("--shape", type=int, nargs=2, metavar=("ROWS", "COLS"), help="explicit array shape (overrides --size)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.h5ad", help="simulated data to write (checked before any work)")
    p.add_argument("--gmt", help="also write the planted programs as a GMT gene-set file")
    p.set_defaults(func=_cmd_simulate)


# ---------------------------------------------------------------------------
# download
# ---------------------------------------------------------------------------
def _cmd_download(args) -> int:
    out = Path(args.output)
    check_output(out, suffixes=("",), field="--output", folder=out.is_dir())  # before any work
    cfg = config_from_args(DownloadConfig, args)
    path = download(args.url, args.output, sha256=args.sha256, **dataclasses.asdict(cfg))
    print(path)
    return 0


def register_download(subparsers) -> None:
    """Add ``download``."""
    p = subparsers.add_parser("download", help="download a file (http, https, file://) and verify its sha256")
    p.add_argument("url", help="http(s):// or file:// address of the file")
    p.add_argument("-o", "--output", required=True, help="destination file (or existing folder)")
    p.add_argument("--sha256", help="expected sha256 hex digest; on mismatch nothing is kept")
    add_config_args(p, DownloadConfig)
    p.set_defaults(func=_cmd_download)


def register_cli(subparsers) -> None:
    """Add ``simulate`` and ``download`` to the ``stentrans`` command line."""
    register_simulate(subparsers)
    register_download(subparsers)
