"""Shared start of the workflow scripts: package on the path, logging, threads.

Snakemake puts this folder on ``sys.path`` when it runs a script, so every
script can ``from _common import start, run_cli``.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

log = logging.getLogger("stentrans.workflow")


def start(snakemake) -> logging.Logger:
    """Use this checkout's package, log to the rule's log, use the rule's threads."""
    if (REPO / "stentrans" / "__init__.py").is_file() and str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    os.environ["STENTRANS_THREADS"] = str(max(1, int(snakemake.threads)))
    # progress bars go to the terminal; keep their updates rare in batch jobs
    os.environ.setdefault("TQDM_MININTERVAL", "10")
    from stentrans._utils import setup_logging

    setup_logging(snakemake.log[0] if snakemake.log else None)
    logging.captureWarnings(True)
    log.info("rule %s, wildcards %s, %d thread(s)", snakemake.rule, dict(snakemake.wildcards), snakemake.threads)
    return log


def run_cli(argv) -> None:
    """Run ``stentrans ARGV``; errors are logged as one line and end the job."""
    from stentrans import cli
    from stentrans._errors import InputError

    argv = [str(a) for a in argv]
    log.info("stentrans %s", " ".join(shlex.quote(a) for a in argv))
    args = cli.build_parser().parse_args(argv)
    try:
        rc = int(args.func(args) or 0)
    except InputError as err:
        log.error("stentrans %s: error: %s", args.command, err)
        raise SystemExit(2) from None
    except FileNotFoundError as err:
        log.error("stentrans %s: error: %s: file not found", args.command, err.filename)
        raise SystemExit(2) from None
    except Exception:  # a bug, not bad input: keep the traceback in the rule's log
        log.exception("stentrans %s failed", args.command)
        raise SystemExit(1) from None
    if rc:
        log.error("stentrans %s exited with status %d", args.command, rc)
        raise SystemExit(rc)


def fail(message: str) -> None:
    """Log one line and end the job with status 2."""
    log.error("%s", message)
    raise SystemExit(2)
