"""Shared start of the workflow scripts: the rule's log, its threads, one-line errors.

Snakemake puts this folder on ``sys.path`` when it runs a script, so every
script can ``from _common import run``. Each script is a thin call of the
stentrans Python API with ``snakemake.input/output/params``; the package
comes from the environment (``envs/stentrans.yaml`` installs this checkout,
or ``pip install -e .`` in your own environment).
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("stentrans.workflow")

#: a sample's ``binning`` settings -> the reader options of :func:`stentrans.io.read_finer` (rules bin_cells and bin_finer)
READER_OPTIONS = {"x": "x", "y": "y", "gene_column": "gene", "count": "count", "drop": "drop", "query": "query"}


def reader_options(binning: dict) -> tuple[str, dict]:
    """``(format, column options)`` of :func:`stentrans.io.read_finer` from a sample's ``binning`` settings (unset ones left out)."""
    return binning.get("reader", "auto"), {arg: binning[key] for key, arg in READER_OPTIONS.items() if binning.get(key)}


def start(snakemake) -> logging.Logger:
    """Log to the rule's log and let the package use the rule's threads (torch and BLAS alike)."""
    os.environ["STENTRANS_THREADS"] = str(max(1, int(snakemake.threads)))  # torch and BLAS threads (stentrans._utils.configure_threads)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the command line: waiting OpenMP threads sleep (docs/performance.md)
    # progress bars go to the terminal; keep their updates rare in batch jobs
    os.environ.setdefault("TQDM_MININTERVAL", "10")
    from stentrans.run import setup_logging

    setup_logging(snakemake.log[0] if snakemake.log else None)
    logging.captureWarnings(True)
    log.info("rule %s, wildcards %s, %d thread(s)", snakemake.rule, dict(snakemake.wildcards), snakemake.threads)
    return log


def run(snakemake, main) -> None:
    """:func:`start`, then ``main(snakemake, log)``.

    Bad input (:class:`stentrans.InputError`, a missing file) ends the job
    with status 2 and one line in the log; anything else is a bug: its
    traceback goes to the log and the job ends with status 1.
    """
    start(snakemake)
    from stentrans import InputError

    try:
        main(snakemake, log)
    except InputError as err:
        log.error("%s: error: %s", snakemake.rule, err)
        raise SystemExit(2) from None
    except FileNotFoundError as err:
        log.error("%s: error: %s: file not found", snakemake.rule, err.filename)
        raise SystemExit(2) from None
    except Exception:
        log.exception("%s failed", snakemake.rule)
        raise SystemExit(1) from None
