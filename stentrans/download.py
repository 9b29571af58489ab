"""Compatibility shim: moved to stentrans.datasets; removed at the end of the refactor.

The command ``download`` moved to :mod:`stentrans.cli.data`.
"""

from .cli.data import register_download as register_cli
from .datasets import check_sha256, data_path, download, fetch, parse_locations, parse_sha256s

__all__ = ["download", "fetch", "data_path", "parse_locations", "parse_sha256s", "check_sha256", "register_cli"]
