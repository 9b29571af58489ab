"""Compatibility shim: moved to stentrans.read; removed at the end of the refactor.

The commands ``info`` and ``qc`` moved to :mod:`stentrans.cli.read`.
"""

from .cli.read import register_info, register_qc
from .lattice import SPACING_UM as SPOT_PITCH_UM
from .read import read, read_positions, snap_to_lattice, summary

__all__ = ["read", "read_positions", "snap_to_lattice", "summary", "register_cli", "SPOT_PITCH_UM"]


def register_cli(subparsers) -> None:
    """Add ``info`` and ``qc`` (now :func:`stentrans.cli.read.register_cli`)."""
    register_info(subparsers)
    register_qc(subparsers)
