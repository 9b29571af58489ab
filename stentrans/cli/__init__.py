"""Command line: ``stentrans <command> ...``.

Each command lives in the module that implements it, as a function
``register_cli(subparsers)`` adding a sub-parser whose ``func`` attribute runs
it. Bad input raises :class:`~stentrans.InputError`; it is printed as one line
and the process exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .._errors import InputError
from .._version import __version__

# modules providing a ``register_cli(subparsers)`` function, in help order
COMMAND_MODULES = [
    "stentrans.simulate",
    "stentrans.io",
    "stentrans.enhance",
    "stentrans.evaluate",
    "stentrans.patterns",
    "stentrans.download",
    "stentrans.binning",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stentrans", description="Resolution enhancement of spatial transcriptomics (stEnTrans).")
    parser.add_argument("--version", action="version", version=f"stentrans {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register_cli(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s: %(message)s")
    try:
        rc = args.func(args)
    except InputError as err:
        print(f"stentrans {args.command}: error: {err}", file=sys.stderr)
        return 2
    except FileNotFoundError as err:
        print(f"stentrans {args.command}: error: {err.filename}: file not found", file=sys.stderr)
        return 2
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
