"""The downstream table (issue 28): what clustering and spatially variable genes see on each output, against the truth.

:func:`downstream_table` turns :func:`stentrans.tl.downstream`'s result into
one row per output (the truth itself first, the truth's binomial halves
last: how far two half-depth measurements of the same tissue agree);
:func:`write_downstream` writes it (``downstream.tsv`` and ``.md``,
atomically); :func:`downstream_section` is its part of the results page,
with a verdict per data set that says where enhancement does not help.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..models import registry
from .tables import _write_text, _write_tsv, to_markdown

#: the score columns, in table order, and what each is
COLUMNS = {
    "mixing": "measured positions' share of measured kNN neighbours minus the global share (0: one data set)",
    "ari_kmeans": "k-means (k = 8) domains, ARI against the truth's",
    "ari_kmeans_new": "the same at the new positions alone",
    "ari_leiden": "Leiden (resolution 1) domains, ARI against the truth's",
    "moran_spearman": "Spearman of the genes' Moran's I against the truth's",
    "moran_top_overlap": "overlap of the top spatially variable genes",
}
#: labels of the rows that are no method of the registry
LABELS = {"truth": "truth itself", "truth halves": "truth halves", "measured-only": "measured only", "robust-counts": "default, counts kept", "robust-shrink": "default, --measured shrink"}


def label(name: str) -> str:
    """A row's name on the page: the registry's label of a method, else :data:`LABELS`."""
    return LABELS.get(name) or registry.label(name)


def downstream_table(result: dict, *, dataset: str | None = None) -> pd.DataFrame:
    """One row per output of :func:`stentrans.tl.downstream`'s ``result``, the truth's halves last (scores: :data:`COLUMNS`)."""
    rows = [{"output": r["output"], **{c: r.get(c, np.nan) for c in COLUMNS}} for r in result["rows"] if r["output"] != "measured spots"]
    rows.append({"output": "truth halves", **{c: result["ceiling"].get(c, np.nan) for c in COLUMNS}})
    df = pd.DataFrame(rows, columns=["output", *COLUMNS])
    df["n_positions"], df["n_measured"], df["n_genes"] = result["n_positions"], result["n_measured"], result["n_genes"]
    if dataset is not None:
        df.insert(0, "dataset", dataset)
    return df.dropna(axis=1, how="all")


def write_downstream(result: dict, outdir, *, dataset: str | None = None) -> dict[str, Path]:
    """Write ``downstream.tsv`` and ``downstream.md`` into ``outdir`` (atomically)."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    t = downstream_table(result, dataset=dataset)
    head = "# Downstream analysis against the truth at every position\n\n" + "\n".join(f"- `{c}`: {d}" for c, d in COLUMNS.items() if c in t.columns) + "\n\n"
    return {"downstream": _write_tsv(out / "downstream.tsv", t), "downstream_md": _write_text(out / "downstream.md", head + to_markdown(t))}


def verdicts(table: pd.DataFrame, *, default: str = registry.DEFAULT_METHOD, against=("linear", "measured-only"), bound: float | None = None) -> list[str]:
    """One line per data set: the default's mixing against ``bound`` (default :data:`stentrans.tl.MIXING_BOUND`), and where it is below ``against`` on domains and SVGs."""
    from ..tl import MIXING_BOUND

    bound = MIXING_BOUND if bound is None else bound
    out = []
    for ds, t in table.groupby("dataset", sort=False) if "dataset" in table.columns else [("", table)]:
        by = t.set_index("output")
        if default not in by.index:
            continue
        d = by.loc[default]
        parts = [f"mixing of the default {d['mixing']:+.3f} ({'within' if abs(d['mixing']) <= bound else 'outside'} ±{bound:g})"]
        for col, what, advice in (("ari_kmeans", "k-means domains", "cluster the measured spots or Linear's output"), ("moran_spearman", "spatially variable genes", 'rank them on `layers["counts"]`')):
            if col not in by.columns or not np.isfinite(d[col]):
                continue
            others = {o: float(by.loc[o, col]) for o in against if o in by.index}
            worse = [o for o, v in others.items() if d[col] < v]
            vs = ", ".join(f"{label(o)} {v:.3f}" for o, v in others.items())
            tail = f"enhancement does not help {what} here ({advice})" if worse else f"at or above {' and '.join(label(o) for o in others)}"
            parts.append(f"{what}: default {d[col]:.3f} vs {vs}: {tail}")
        out.append(f"**{ds or 'data'}**: " + "; ".join(parts) + ".")
    return out


def downstream_section(table: pd.DataFrame) -> list[str]:
    """The results page's downstream part: what the scores are, where enhancement does not help, the table."""
    show = table.assign(output=[label(o) for o in table["output"]])
    left_out = [what for col, what in (("ari_leiden", "Leiden domains (the `leiden` extra)"), ("moran_spearman", "spatially variable genes (Moran's I: the `squidpy` extra)")) if col not in table.columns]
    return [
        "## Downstream: what clustering and spatially variable genes see\n",
        "The first things users do with the enhanced file, on each output refitted with its defaults from the same QC'd spots "
        f"({label(registry.DEFAULT_METHOD)}, the package's default, is what `enhanced.h5ad` holds when `enhance` is left at its defaults), "
        "against the truth at every position of the enhanced lattice (measured and new; `stentrans.tl.downstream`, docs/downstream.md): "
        + "; ".join(f"`{c}`: {d}" for c, d in COLUMNS.items() if c in table.columns)
        + ". *truth halves*: two binomial halves of the truth against each other (what half-depth measurements of the same tissue reach)."
        + (f" Left out (not installed): {'; '.join(left_out)}." if left_out else "")
        + "\n",
        *[f"- {v}" for v in verdicts(table)],
        "",
        to_markdown(show),
        "",
    ]
