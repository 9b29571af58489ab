"""What a run used and what it cost: software versions and device, its settings in words, job benchmarks."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pandas as pd

__all__ = ["run_info", "write_run_info", "workflow_command", "describe_run", "benchmark_table", "write_benchmark_table"]

#: distributions whose versions :func:`run_info` records
PACKAGES = ("torch", "numpy", "scipy", "pandas", "anndata", "scanpy", "scikit-learn", "gseapy", "matplotlib", "snakemake")
#: columns of Snakemake's benchmark files kept by :func:`benchmark_table`
BENCHMARK_COLUMNS = ("s", "h:m:s", "max_rss", "cpu_time", "mean_load")
#: environment variable with the command line that started the workflow; rules/report.smk
#: sets it in Snakemake's main process, and the jobs that process starts inherit it
COMMAND_ENV = "STENTRANS_WORKFLOW_COMMAND"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def run_info(**extra) -> dict:
    """Versions of stentrans, Python and :data:`PACKAGES`, the platform and CUDA; then ``extra`` (e.g. the config)."""
    import platform
    import sys

    from .._version import __version__

    info = {
        "stentrans": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {d: _version(d) for d in PACKAGES},
    }
    try:
        import torch

        info["cuda"] = {"available": bool(torch.cuda.is_available()), "torch_cuda": torch.version.cuda or "none"}
        if torch.cuda.is_available():
            info["cuda"]["device"] = torch.cuda.get_device_name(0)
    except ImportError:
        info["cuda"] = {"available": False}
    info.update(extra)
    return info


def write_run_info(info: dict, path) -> Path:
    """Write :func:`run_info` as YAML, atomically; returns ``path``."""
    import yaml

    from .._utils import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_text(yaml.safe_dump(info, sort_keys=False), encoding="utf-8")
    return Path(path)


def workflow_command(environ=None) -> str | None:
    """The command line that started the workflow this job belongs to, or None where it was not recorded.

    Read from :data:`COMMAND_ENV` of ``environ`` (default ``os.environ``): the
    main Snakemake process records its own command line there when it parses
    the Snakefile, and its jobs inherit it. A job's own ``sys.argv`` is not the
    user's command (a script job is ``python script.py``, a spawned or cluster
    job ``python -m snakemake --target-jobs ...``).
    """
    import os

    command = (os.environ if environ is None else environ).get(COMMAND_ENV, "").strip()
    return command or None


def describe_run(info: dict, settings: dict, command: str | None, samples, fallback: str = "") -> dict:
    """The results page's "Run" list: command, samples, evaluation, model, software, machine.

    ``info`` is :func:`run_info`; ``settings`` holds the workflow config's
    ``evaluate``, ``model``, ``train`` and ``enhance`` sections. ``command`` is
    what ran (:func:`workflow_command`); where it is None the page shows
    ``fallback`` (the config's ``results_page.command``) marked as not
    recorded, or says the command is not known.
    """
    if command:
        shown = f"`{command}`"
    elif fallback:
        shown = f"`{fallback}` (as the config's results_page.command gives it; the run did not record its command)"
    else:
        shown = "not known (the run did not record its command)"
    ev, tr, md = settings["evaluate"], settings["train"], settings["model"]
    cuda = info.get("cuda", {})
    pk = info.get("packages", {})
    from ..models.baselines.config import DISTConfig

    dist = ev["dist_epochs"] if ev["dist_epochs"] is not None else f"its default {DISTConfig().epochs}"
    return {
        "command": shown,
        "samples": ", ".join(samples),
        "evaluation": f"protocols {', '.join(ev['protocols'])}; methods {', '.join(ev['methods'])}; {ev['seeds']} seeds; stEnTrans {ev['epochs']} epochs (DIST {dist})",
        "model": f"patch size {md['patch_size']}, {md['depth']} blocks, {md['heads']} heads; batch {tr['batch_size']} genes, lr {tr['lr']}; enhanced by {settings['enhance']['method']}",
        "software": f"stentrans {info.get('stentrans')}, Python {info.get('python')}, torch {pk.get('torch')}, snakemake {pk.get('snakemake')}",
        "machine": f"{info.get('platform')}; CUDA {'device ' + cuda['device'] if cuda.get('available') else 'not available (CPU)'}",
    }


def benchmark_table(files) -> pd.DataFrame:
    """Snakemake benchmark files in one table: ``rule, job`` and :data:`BENCHMARK_COLUMNS`.

    ``files``: ``{(rule, job): path}``, in table order.
    """
    rows = []
    for (rule, job), path in files.items():
        df = pd.read_csv(Path(path), sep="\t")
        df.insert(0, "job", job)
        df.insert(0, "rule", rule)
        rows.append(df)
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["rule", "job", "s"])
    return table[[c for c in ("rule", "job", *BENCHMARK_COLUMNS) if c in table.columns]]


def write_benchmark_table(files, path) -> pd.DataFrame:
    """:func:`benchmark_table` of ``files`` written as TSV to ``path`` (atomically); returns the table."""
    from .._utils import write_tsv

    table = benchmark_table(files)
    write_tsv(table, path)
    return table
