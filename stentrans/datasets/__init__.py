"""Data sets: simulated sections with a known 2x-resolution truth, and checked downloads of real ones."""

from ._download import DownloadConfig, check_sha256, data_path, download, fetch, parse_locations, parse_sha256s
from ._simulate import SIZES, SimConfig, program_gene_sets, simulate, write_program_gmt

__all__ = [
    "simulate",
    "SimConfig",
    "SIZES",
    "program_gene_sets",
    "write_program_gmt",
    "download",
    "fetch",
    "data_path",
    "parse_locations",
    "parse_sha256s",
    "check_sha256",
    "DownloadConfig",
]
