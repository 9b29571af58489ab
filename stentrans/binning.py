"""Compatibility shim: moved to stentrans.read.cells; removed at the end of the refactor.

The command ``bin`` moved to :mod:`stentrans.cli.bin`.
"""

from .cli.bin import register_cli
from .read import bin_cells, read_cells

__all__ = ["bin_cells", "read_cells", "register_cli"]
