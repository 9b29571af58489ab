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

from .._errors import DATA_FIELDS, InputError
from .._version import __version__

# modules providing a ``register_cli(subparsers)`` function, in help order
COMMAND_MODULES = [
    "stentrans.cli.data",
    "stentrans.cli.read",
    "stentrans.cli.bin",
    "stentrans.cli.enhance",
    "stentrans.cli.evaluate",
    "stentrans.cli.patterns",
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




class _LineTracker:
    """``sys.stderr`` that remembers whether the last text written ended a line.

    Progress bars (``\r`` updates) and some libraries' warnings leave the
    cursor mid-line; the error line must still stand alone.
    """

    def __init__(self, stream):
        self._stream = stream
        self.at_line_start = True

    def write(self, text):
        if text:
            self.at_line_start = text.endswith("\n")
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _print_error(command: str, message: str) -> None:
    """``stentrans COMMAND: error: MESSAGE`` on a line of its own on stderr."""
    err = sys.stderr
    sys.stdout.flush()
    start = "" if getattr(err, "at_line_start", True) else "\n"
    err.write(f"{start}stentrans {command}: error: {message}\n")
    err.flush()


def _set_threads(args) -> None:
    """One thread count for torch and BLAS, before any work (``--threads``, else STENTRANS_THREADS, else the available cores)."""
    import os

    from .._errors import InputError
    from .._utils import configure_threads

    n = getattr(args, "threads", None)
    if n is not None:
        if n < 1:
            raise InputError(None, "--threads", f"{n}: must be at least 1")
        os.environ["STENTRANS_THREADS"] = str(n)  # the fits configure their threads again from it
    # torch's OpenMP threads sleep between parallel regions instead of spinning
    # (read once, when torch is first imported: here, before any work). With
    # other jobs on the cores, spinning threads doubled the CPU time of the
    # default fit on 2 threads (Visium mouse slide: 81 s -> 47 s, 45 s on one thread)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    logging.getLogger("stentrans").debug("threads: %d (torch and BLAS)", configure_threads("cpu", n))


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s: %(message)s")
    # Python warnings become log records: whole lines through the same handler
    logging.captureWarnings(True)
    saved = sys.stderr
    sys.stderr = _LineTracker(saved)
    try:
        if hasattr(args, "threads"):  # commands that compute: torch and BLAS threads first
            _set_threads(args)
        rc = args.func(args)
    except InputError as err:
        if err.file == "<memory>" and err.field in DATA_FIELDS and isinstance(getattr(args, "input", None), str):
            # raised on arrays outside the API's naming (stentrans._errors.naming_file): the data came from the command's input
            err = InputError(args.input, err.field, err.problem)
        _print_error(args.command, str(err))
        return 2
    except FileNotFoundError as err:
        _print_error(args.command, f"{err.filename}: file not found")
        return 2
    finally:
        sys.stderr = saved
        logging.captureWarnings(False)
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
