"""Result tables: the evaluation summary, paper Table 1, the real-truth table, Markdown, and writing them.

Everything here works on the tables of :func:`stentrans.tl.evaluate`: the
per-gene table (columns ``(dataset,) gene, method, protocol, seed, pcc,
n_spots``) and its summary (:func:`stentrans.tl.summarize`); method names,
their order and labels come from the method registry.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .._errors import InputError
from .._utils import ordered
from ..models import registry

__all__ = ["ablation_table", "realtruth_table", "to_markdown", "write_results", "format_pm"]

def format_pm(mean, sd, digits: int = 3) -> str:
    """``"0.636 ± 0.018"``; the mean alone when ``sd`` is not finite, ``"NA"`` without a mean."""
    if not np.isfinite(mean):
        return "NA"
    if not np.isfinite(sd):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def ablation_table(summary: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Paper Table 1: mean ± sd (over seeds) of the median PCC of stEnTrans and its ablations.

    One row per (dataset and) protocol, one column per ablation (stEnTrans,
    w/o Pos, w/o Res, w/o Pos & Res: the registry's labels), cells
    ``"0.636 ± 0.018"``.
    """
    sub = summary[summary["method"].isin(registry.ABLATIONS)]
    if sub.empty:
        raise InputError(None, "summary", "no stEnTrans ablation in the summary (run evaluate with ablation=True)")
    keys = (["dataset"] if "dataset" in sub.columns else []) + ["protocol"]
    rows = []
    for key, grp in sub.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(keys, key))
        for m in registry.ABLATIONS:
            hit = grp[grp["method"] == m]
            row[registry.label(m)] = format_pm(float(hit["mean"].iloc[0]), float(hit["sd"].iloc[0]), digits) if len(hit) else "NA"
        row["n_genes"] = int(grp["n_genes"].max())
        rows.append(row)
    return pd.DataFrame(rows, columns=keys + [registry.label(m) for m in registry.ABLATIONS] + ["n_genes"])


#: the real-truth table's score columns: column -> (protocol, method or None for each method)
REALTRUTH_COLUMNS = {
    "realtruth": ("realtruth", None),
    "ceiling": ("realtruth", "ceiling"),
    "realtruth-log": ("realtruth-log", None),
    "ceiling-log": ("realtruth-log", "ceiling"),
    "realtruth-denoise": ("realtruth-denoise", None),
    "raw-half": ("realtruth-denoise", "raw-half"),
}


def realtruth_table(summary: pd.DataFrame, keys=None, pseudo=("ceiling", "raw-half")) -> pd.DataFrame:
    """The real-truth table: one row per case (``keys``) and method, the ``realtruth`` scores as columns.

    Parameters
    ----------
    summary
        :func:`stentrans.tl.summarize` of a per-gene table with protocols ``realtruth``,
        ``realtruth-log`` and ``realtruth-denoise`` (several cases stacked,
        told apart by ``keys``).
    keys
        Columns naming a case, e.g. ``["set", "lattice", "spacing"]``
        (default: ``["dataset"]`` when present).
    pseudo
        The pseudo-methods, which become columns instead of rows.

    Returns
    -------
    DataFrame ``keys..., method, realtruth, ceiling, fraction,
    realtruth-log, ceiling-log, fraction-log, realtruth-denoise, raw-half,
    n_genes, n_excluded, n_new, n_measured``: the median PCC (mean over
    seeds) of the method, the ceiling's median, the fraction of it
    (``realtruth / ceiling``), the same on the log scale, the denoising
    score at the measured positions beside raw half A's, the genes scored
    and excluded (zero variance, ``realtruth``), and the new and measured
    positions scored. Methods in :data:`stentrans.models.registry.TABLE_ORDER`.
    """
    if keys is None:
        keys = ["dataset"] if "dataset" in summary.columns else []
    keys = list(keys)
    sub = summary[summary["protocol"].isin({p for p, _ in REALTRUTH_COLUMNS.values()})]
    if sub.empty:
        raise InputError(None, "summary", "no realtruth score in the summary (run evaluate with protocol='realtruth')")
    val = sub.set_index(keys + ["protocol", "method"])
    rows = []
    cases = sub[keys].drop_duplicates().itertuples(index=False) if keys else [()]
    for case in cases:
        case = tuple(case)
        here = sub if not keys else sub[(sub[keys] == pd.Series(dict(zip(keys, case)))).all(axis=1)]
        methods = ordered([m for m in here["method"] if m not in pseudo], registry.TABLE_ORDER)

        def get(protocol, method, col="mean"):
            k = case + (protocol, method)
            return float(val.loc[k, col]) if k in val.index else float("nan")

        for m in methods:
            row = dict(zip(keys, case))
            row["method"] = m
            for col, (protocol, who) in REALTRUTH_COLUMNS.items():
                row[col] = get(protocol, who or m)
            with np.errstate(invalid="ignore", divide="ignore"):
                row["fraction"] = row["realtruth"] / row["ceiling"]
                row["fraction-log"] = row["realtruth-log"] / row["ceiling-log"]
            row["n_genes"] = get("realtruth", m, "n_genes")
            row["n_excluded"] = get("realtruth", m, "n_excluded")
            row["n_new"] = get("realtruth", m, "n_spots")
            row["n_measured"] = get("realtruth-denoise", m, "n_spots")
            rows.append(row)
    cols = keys + ["method", "realtruth", "ceiling", "fraction", "realtruth-log", "ceiling-log", "fraction-log", "realtruth-denoise", "raw-half", "n_genes", "n_excluded", "n_new", "n_measured"]
    out = pd.DataFrame(rows, columns=cols)
    for c in ("n_genes", "n_excluded", "n_new", "n_measured"):
        out[c] = out[c].astype("Int64")
    return out


def to_markdown(df: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""

    def fmt(v):
        if v is pd.NA:
            return "NA"
        if isinstance(v, (float, np.floating)):
            return "NA" if not np.isfinite(v) else f"{v:.{digits}f}"
        return str(v).replace("|", "\\|")

    cols = [str(c) for c in df.columns]
    num = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---:" if n else ":---" for n in num) + " |"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(fmt(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _write_text(path: Path, text: str) -> Path:
    from .._utils import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return path


def _write_tsv(path: Path, df: pd.DataFrame) -> Path:
    from .._utils import write_tsv

    return write_tsv(df, path, float_format="%.6g", na_rep="NA")


def write_results(result: dict, outdir, ablation: bool | None = None) -> dict[str, Path]:
    """Write ``per_gene.tsv``, ``summary.tsv``, ``summary.md`` (and ``table1.tsv``/``.md``, ``realtruth.tsv``/``.md``), atomically.

    ``result`` is what :func:`stentrans.tl.evaluate` returns; ``table1`` is
    written with ``ablation=True``, or (``None``) when the summary holds an
    ablation.
    """
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "per_gene": _write_tsv(out / "per_gene.tsv", result["per_gene"]),
        "summary": _write_tsv(out / "summary.tsv", result["summary"]),
    }
    info = result.get("info", {})
    head = "# Evaluation: median per-gene PCC\n\n"
    if info:
        head += f"lattice {info.get('lattice')}, {info.get('n_genes')} genes, {info.get('n_spots')} in-tissue spots ({info.get('n_removed')} removed by down-sampling), seeds {info.get('seeds')}, {info.get('epochs')} epochs.\n\n"
    paths["summary_md"] = _write_text(out / "summary.md", head + to_markdown(result["summary"]))
    if result["summary"]["protocol"].isin({p for p, _ in REALTRUTH_COLUMNS.values()}).any():
        rt = realtruth_table(result["summary"])
        paths["realtruth"] = _write_tsv(out / "realtruth.tsv", rt)
        paths["realtruth_md"] = _write_text(out / "realtruth.md", "# Real truth: median per-gene PCC at the new positions, noise ceiling and fraction of it\n\n" + to_markdown(rt))
    has_abl = result["summary"]["method"].isin([m for m in registry.ABLATIONS if m != registry.PAPER_METHOD]).any()
    if ablation or (ablation is None and has_abl):
        t1 = ablation_table(result["summary"])
        paths["table1"] = _write_tsv(out / "table1.tsv", t1)
        paths["table1_md"] = _write_text(out / "table1.md", "# Table 1: ablation (median PCC, mean ± sd over seeds)\n\n" + to_markdown(t1))
    return paths
