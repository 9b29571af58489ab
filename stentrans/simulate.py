"""Compatibility shim: moved to stentrans.datasets; removed at the end of the refactor.

The command ``simulate`` moved to :mod:`stentrans.cli.data`; the spot spacing
and diameter tables to :mod:`stentrans.lattice`.
"""

from .cli.data import register_simulate as register_cli
from .datasets import SIZES, SimConfig, program_gene_sets, simulate, write_program_gmt
from .lattice import SPACING_UM, SPOT_DIAMETER_UM

__all__ = ["simulate", "SimConfig", "SIZES", "program_gene_sets", "write_program_gmt", "SPACING_UM", "SPOT_DIAMETER_UM", "register_cli"]
