"""The run's summary over samples: median PCC of every method on every sample (rule ``summarize``).

One long table (TSV) and its Markdown, a table per protocol; the figure is
:func:`stentrans.pl.median_pcc_bars`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..models import registry
from .tables import format_pm, to_markdown

__all__ = ["median_pcc_table", "median_pcc_markdown", "write_median_pcc"]

#: columns of :func:`median_pcc_table`
COLUMNS = ["dataset", "protocol", "method", "mean", "sd", "n_seeds", "n_genes", "n_excluded", "n_spots", "paper_median"]


def median_pcc_table(summaries, paper_medians=None) -> pd.DataFrame:
    """The evaluation summaries of several samples in one table.

    Parameters
    ----------
    summaries
        ``{sample: summary}``, each a ``summary.tsv`` of ``stentrans
        evaluate`` (path or DataFrame), in table order.
    paper_medians
        ``{sample: value}``: the paper's stEnTrans median PCC, put in
        ``paper_median`` on the sample's stEnTrans rows.

    Returns
    -------
    Columns :data:`COLUMNS`; ``n_seeds`` counts the seeds with a median.
    """
    paper = dict(paper_medians or {})
    frames = []
    for sample, summary in summaries.items():
        df = summary.copy() if isinstance(summary, pd.DataFrame) else pd.read_csv(summary, sep="\t")
        df["dataset"] = sample
        frames.append(df)
    long = pd.concat(frames, ignore_index=True)
    seed_cols = [c for c in long.columns if c.startswith("median_seed")]
    long["n_seeds"] = long[seed_cols].notna().sum(axis=1)
    long["paper_median"] = [paper.get(d, np.nan) if m == registry.PAPER_METHOD else np.nan for d, m in zip(long["dataset"], long["method"])]
    return long[COLUMNS]


def median_pcc_markdown(table: pd.DataFrame, paper_medians=None) -> str:
    """Markdown of :func:`median_pcc_table`: per protocol, a row per sample, "mean ± sd" per method."""
    paper = dict(paper_medians or {})
    methods = list(dict.fromkeys(table["method"]))
    parts = ["# Median per-gene PCC (mean ± sd over seeds)\n"]
    for proto in dict.fromkeys(table["protocol"]):
        sub = table[table["protocol"] == proto]
        wide = sub.assign(v=[format_pm(m, s) for m, s in zip(sub["mean"], sub["sd"])]).pivot(index="dataset", columns="method", values="v")
        wide = wide.reindex(columns=[m for m in methods if m in wide.columns]).rename(columns=registry.label).reset_index()
        if paper:
            wide[f"paper ({registry.label(registry.PAPER_METHOD)})"] = [f"{paper[d]:.3f}" if d in paper else "" for d in wide["dataset"]]
        parts.append(f"\n## protocol `{proto}`\n\n" + to_markdown(wide))
    return "".join(parts)


def write_median_pcc(table: pd.DataFrame, tsv=None, md=None, paper_medians=None) -> list[Path]:
    """Write the table as TSV (4 decimals, ``NA``) and/or its Markdown, atomically."""
    from .._utils import atomic_path, write_tsv

    paths = []
    if tsv is not None:
        paths.append(Path(write_tsv(table, tsv, float_format="%.4f", na_rep="NA")))
    if md is not None:
        with atomic_path(md) as tmp:
            Path(tmp).write_text(median_pcc_markdown(table, paper_medians), encoding="utf-8")
        paths.append(Path(md))
    return paths
