"""The results page: every table and figure of a workflow run beside the paper's.

Built from the files a run wrote, each named by the caller: :func:`collect`
and :func:`render` take ``files``, a mapping ``sample -> {kind: path}`` (the
kinds are :data:`SAMPLE_FILES`; any may be left out), so this module knows
no folder layout (the workflow's ``rules/common.smk`` does and passes the
paths in). No number on the page is typed by hand. Figures are copied next
to the page and shrunk until each PNG is under a size limit (default
300 KB), so the page can be committed.

Layout: run and settings; the stand-ins (the run's data sets that take the
place of the paper's, which are not reachable here: named on the page, and
the paper's values beside them marked); the lattice mapping of each sample; the real 2x
truth first (samples binned from finer data: every method against truth at
the new positions, the noise ceiling, whether the default beats the best
baseline; then what clusters and SVGs see, downstream); then the nested protocol (what users get on spots no model saw),
with paired Wilcoxon tests across genes; the paper's protocol beside the paper's published
medians; held-out genes; lost spots (holes punched in the tissue); Table 1; Fig. 2 / 3 style figures; Fig. 4 pattern
analysis; which of the paper's claims hold here, each decided from the
numbers above; cost (wall time, peak memory per job). Method names are the
registry's labels.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from .._utils import atomic_path
from ..models import registry
from .downstream import downstream_section
from .tables import ablation_table, format_pm, realtruth_table, to_markdown

log = logging.getLogger("stentrans.report.page")

#: the per-sample files the page reads: kind -> what it is
SAMPLE_FILES = {
    "summary": "evaluation summary table (summary.tsv of stentrans evaluate)",
    "per_gene": "per-gene PCC table (per_gene.tsv)",
    "ablation": "summary table of the ablation run",
    "downstream": "downstream table (downstream.tsv of the workflow's downstream rule)",
    "grid": "lattice mapping (JSON of stentrans.report.mapping.write_grid_mapping)",
    "patterns": "summary.json of stentrans.tl.run_patterns",
    "new_terms": "new_terms.tsv of the pattern analysis",
    "boxplot": "PNG: per-gene PCC boxplots",
    "gene_panels": "PNG: gene panels",
    "enhanced_genes": "PNG: measured vs enhanced maps",
    "interval_map": "PNG: a gene's enhanced map beside its interval width, low-confidence positions marked",
    "grid_figure": "PNG: the lattice mapping figure",
    "ranked_genes": "PNG: Fig. 4b",
    "family_summary": "PNG: Fig. 4c",
    "new_terms_plot": "PNG: Fig. 4d",
}
#: captions of the Fig. 2 / 3 style figures, in page order
FIGURE_CAPTIONS = {
    "grid_figure": "lattice mapping: measured spots, what down-sampling D keeps and the positions H(M) enhancement fills",
    "boxplot": "per-gene PCC per method and protocol (Fig. 3 style)",
    "gene_panels": "measured, down-sampled input and every method's prediction (Fig. 2 style)",
    "enhanced_genes": "measured and enhanced maps of the top-variance genes",
    "interval_map": "where enhancement is unsure: a gene's enhanced map, its 90 % interval width over the gene's trivial range, and each position's uncertainty scale with the low-confidence positions outlined",
}
PATTERN_FIGURES = ("ranked_genes", "family_summary", "new_terms_plot")


def page_scores() -> dict[str, str]:
    """The scores with a section of their own, in page order, and their texts (the protocol table's).

    The default protocol's scores first, then the table's order; the real
    truth has a section of its own (:func:`_realtruth_section`).
    """
    from ..tl import PROTOCOLS, SCORES, EvaluateConfig

    default = EvaluateConfig().protocol
    first = [s.name for s in PROTOCOLS[default].scores]
    names = list(dict.fromkeys([*first, *SCORES]))
    return {n: SCORES[n].text for n in names if SCORES[n].text}


def format_p(p: float) -> str:
    """A p-value for the page: below double precision it is a bound, not zero."""
    return "< 1e-300" if p < 1e-300 else f"= {p:.1e}"


def shrink_png(src, dst, max_bytes: int = 300_000) -> Path:
    """Copy a PNG, shrinking it step by step (to 3/4 each time) until it is under ``max_bytes``."""
    from PIL import Image

    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.stat().st_size <= max_bytes:
        shutil.copyfile(src, dst)
        return dst
    img = Image.open(src)
    img.load()
    scale = 1.0
    while True:
        scale *= 0.75
        size = (max(1, int(img.width * scale)), max(1, int(img.height * scale)))
        small = img.resize(size, Image.LANCZOS)
        if small.mode == "RGBA":  # smaller files; figures have white backgrounds
            bg = Image.new("RGB", small.size, (255, 255, 255))
            bg.paste(small, mask=small.split()[3])
            small = bg
        with atomic_path(dst, suffix=".png") as tmp:
            small.save(tmp, format="PNG", optimize=True)
        if dst.stat().st_size <= max_bytes or min(size) < 64:
            return dst


def method_table(summary: pd.DataFrame, protocol: str, methods) -> pd.DataFrame:
    """One row per data set, one column per method: "mean ± sd" of the median PCC over seeds."""
    sub = summary[summary["protocol"] == protocol]
    rows = []
    for ds, grp in sub.groupby("dataset", sort=False):
        row = {"data set": ds}
        for m in methods:
            hit = grp[grp["method"] == m]
            if len(hit):
                row[registry.label(m)] = format_pm(float(hit["mean"].iloc[0]), float(hit["sd"].iloc[0]))
        bm, bv = best_baseline(grp, ds, protocol)
        if bm:
            row["best baseline"] = f"{registry.label(bm)} {bv:.3f}"
        row["seeds"] = int(grp[[c for c in grp.columns if c.startswith("median_seed")]].notna().sum(axis=1).max())
        row["genes"] = int(grp["n_genes"].max())
        row["spots scored"] = int(grp["n_spots"].max())
        rows.append(row)
    return pd.DataFrame(rows)


def best_baseline(summary: pd.DataFrame, dataset: str, protocol: str):
    """(method, mean) of the best of the paper's baselines (interpolation, DIST), or (None, nan)."""
    sub = summary[(summary["dataset"] == dataset) & (summary["protocol"] == protocol) & summary["method"].isin(registry.BASELINES)]
    if sub.empty:
        return None, float("nan")
    best = sub.loc[sub["mean"].idxmax()]
    return str(best["method"]), float(best["mean"])


def mean_of(summary: pd.DataFrame, dataset: str, protocol: str, method: str) -> float:
    """The mean over seeds of ``method``'s median PCC, or nan."""
    hit = summary[(summary["dataset"] == dataset) & (summary["protocol"] == protocol) & (summary["method"] == method)]
    return float(hit["mean"].iloc[0]) if len(hit) else float("nan")


def paired_test(per_gene: pd.DataFrame, protocol: str, a: str, b: str) -> dict | None:
    """Two-sided Wilcoxon signed-rank test across genes of method ``a`` vs ``b``.

    Per-gene PCC averaged over seeds first; genes scored by both methods only.
    """
    from scipy.stats import wilcoxon

    sub = per_gene[(per_gene["protocol"] == protocol) & per_gene["method"].isin([a, b])]
    wide = sub.groupby(["gene", "method"])["pcc"].mean().unstack("method").dropna()
    if a not in wide or b not in wide or len(wide) < 10:
        return None
    d = (wide[a] - wide[b]).to_numpy()
    p = float(wilcoxon(d).pvalue) if np.any(d != 0) else 1.0
    return {"n": int(len(d)), "median_diff": float(np.median(d)), "frac_better": float(np.mean(d > 0)), "p": p}


def _file(files: dict, kind: str) -> Path | None:
    path = files.get(kind)
    if not path:
        return None
    if not Path(path).is_file():
        log.info("%s (%s): not found, left out of the page", path, kind)
        return None
    return Path(path)


def _tsv(files: dict, kind: str, sample: str) -> pd.DataFrame | None:
    path = _file(files, kind)
    return pd.read_csv(path, sep="\t").assign(dataset=sample) if path else None


def collect(files, benchmarks=None) -> dict:
    """Read the files of every sample (kinds of :data:`SAMPLE_FILES`; missing ones stay None).

    Parameters
    ----------
    files
        ``{sample: {kind: path}}``, samples in page order.
    benchmarks
        The run's job table (``s``, ``max_rss``, ``rule`` per job), or None.
    """
    out: dict = {"summary": [], "per_gene": [], "ablation": [], "downstream": [], "coverage": [], "grid": {}, "patterns": {}, "figures": {}}
    for s, f in files.items():
        f = dict(f)
        unknown = set(f) - set(SAMPLE_FILES)
        if unknown:
            raise ValueError(f"sample {s}: unknown kinds of file {sorted(unknown)}; expected some of {list(SAMPLE_FILES)}")
        for kind in ("summary", "per_gene", "ablation", "downstream"):
            t = _tsv(f, kind, s)
            if t is not None:
                out[kind].append(t)
        grid, patterns = _file(f, "grid"), _file(f, "patterns")
        if grid:
            out["grid"][s] = json.loads(grid.read_text())
        if patterns:
            out["patterns"][s] = {
                "summary": json.loads(patterns.read_text()),
                "new_terms": _tsv(f, "new_terms", s),
                "figures": [p for p in (_file(f, k) for k in PATTERN_FIGURES) if p],
            }
        figures = {k: _file(f, k) for k in FIGURE_CAPTIONS}
        out["figures"][s] = {k: p for k, p in figures.items() if p}
        summary = _file(f, "summary")
        cov = summary.parent / "coverage_summary.tsv" if summary else None  # written beside it by the coverage protocols
        if cov is not None and cov.is_file():
            out["coverage"].append(pd.read_csv(cov, sep="\t").assign(dataset=s))
    for k in ("summary", "per_gene", "ablation", "downstream", "coverage"):
        out[k] = pd.concat(out[k], ignore_index=True) if out[k] else None
    out["benchmarks"] = pd.read_csv(benchmarks, sep="\t") if benchmarks and Path(benchmarks).is_file() else None
    return out


def named(ds: str, stand_ins=()) -> str:
    """A data set's name on the page: stand-ins for the paper's data sets say so."""
    return f"{ds} (stand-in)" if ds in stand_ins else ds


def claims(summary, per_gene, ablation, patterns, paper_medians, paper_new_terms, stand_ins=()) -> list[str]:
    """The paper's claims, each decided from the measured numbers (``stand_ins``: data sets that are not the paper's, named so)."""
    lines = []
    if summary is None:
        return lines
    lab = registry.label
    st = lab(registry.PAPER_METHOD)
    for ds in dict.fromkeys(summary["dataset"]):
        name = named(ds, stand_ins)
        st_p = mean_of(summary, ds, "paper", "stentrans")
        bm, bv = best_baseline(summary, ds, "paper")
        if np.isfinite(st_p) and bm:
            verdict = "holds" if st_p > bv else "does not hold"
            ref = (f"; the paper reports {paper_medians[ds]:.3f} on its own {ds}, not this stand-in" if ds in stand_ins else f"; the paper reports {paper_medians[ds]:.3f}") if ds in paper_medians else ""
            lines.append(f"**{name}, `paper` protocol** — {st} beats every baseline: {verdict} ({st} {st_p:.3f} vs {lab(bm)} {bv:.3f}{ref}).")
        st_n = mean_of(summary, ds, "nested", "stentrans")
        bm_n, bv_n = best_baseline(summary, ds, "nested")
        if np.isfinite(st_n) and bm_n:
            verdict = "holds" if st_n > bv_n else "does not hold"
            line = f"**{name}, `nested`** (spots no model saw) — the paper's network beats interpolation: {verdict} ({st} {st_n:.3f} vs {lab(bm_n)} {bv_n:.3f})."
            rb = mean_of(summary, ds, "nested", "robust")
            if np.isfinite(rb):
                t = paired_test(per_gene[per_gene["dataset"] == ds], "nested", "robust", bm_n) if per_gene is not None else None
                tt = f", paired Wilcoxon across {t['n']} genes p {format_p(t['p'])}, better on {100 * t['frac_better']:.0f} % of genes" if t else ""
                line += f" The robust method: {rb:.3f} ({'beats' if rb > bv_n else 'does not beat'} {lab(bm_n)}{tt})."
            lines.append(line)
        st_h = mean_of(summary, ds, "heldout-genes", "stentrans")
        bm_h, bv_h = best_baseline(summary, ds, "heldout-genes")
        if np.isfinite(st_h) and bm_h:
            verdict = "holds" if st_h > bv_h else "does not hold"
            lines.append(f"**{name}, `heldout-genes`** — {st} generalises to genes it never trained on: {verdict} ({st_h:.3f} vs {lab(bm_h)} {bv_h:.3f}; on `paper` {st_p:.3f}).")
    if ablation is not None:
        abl = registry.ABLATIONS
        for ds, grp in ablation.groupby("dataset", sort=False):
            vals = {m: float(grp.loc[grp["method"] == m, "mean"].iloc[0]) for m in abl if (grp["method"] == m).any()}
            if "stentrans" in vals and len(vals) == len(abl):
                worse = [lab(m) for m in abl[1:] if vals[m] < vals["stentrans"]]
                verdict = "holds" if len(worse) == len(abl) - 1 else "does not hold"
                detail = ", ".join(f"{lab(m)} {vals[m]:.3f}" for m in abl)
                lines.append(f"**{named(ds, stand_ins)}, Table 1** — the full model beats every ablation: {verdict} ({detail}).")
    for ds, pat in patterns.items():
        n_new = pat["summary"].get("n_new_terms", {}).get("overall")
        if n_new is not None:
            ref = f" (the paper: {paper_new_terms})" if paper_new_terms is not None else ""
            verdict = "holds" if n_new > 0 else "does not hold"
            line = f"**{named(ds, stand_ins)}, Fig. 4** — enhancement reveals GO:BP terms the original data does not: {verdict}, {n_new} new terms{ref}."
            ctl = dict(pat["summary"].get("new_terms_control") or {})
            enh = ctl.pop("enhanced", None)
            for d, c in ctl.items():
                e, b = float(np.mean(enh["overall"])) if enh else float(n_new), float(np.mean(c["overall"]))
                seeds = f" (mean over {len(enh['overall'])} seeds)" if enh else ""
                beyond = "holds" if e > b else "does not hold"
                line += f" Beyond the control ({d} interpolation of the same spots, no model: {b:.0f} new terms): {beyond}, {e:.1f} new terms after enhancement{seeds}."
            lines.append(line)
    return lines


def _paper_value(value: str, ds: str, stand_ins) -> str:
    """A paper value for a table cell: marked † where the run's data set is a stand-in."""
    return f"{value} †" if value and ds in stand_ins else value


def _stand_in_footnote(datasets, stand_ins) -> list[str]:
    hit = [d for d in dict.fromkeys(datasets) if d in stand_ins]
    if not hit:
        return []
    return [f"† {', '.join(hit)}: stand-in{'s' if len(hit) > 1 else ''} for the paper's data set{'s' if len(hit) > 1 else ''} of that name (see *Stand-ins* above); the *paper* value is the paper's result on its own data, not on this one.\n"]


def _grid_table(grid: dict) -> pd.DataFrame:
    rows = []
    for s, g in grid.items():
        u, v = g["grid"]["shape"]
        o = g["grid"]["origin"]
        rows.append({"data set": s, "lattice": g["lattice"], "grid": f"{u} x {v}", "origin (row, col)": f"({o['array_row']:g}, {o['array_col']:g})", "spots M": g["n_measured"], "kept by D": g["n_kept"], "removed by D": g["n_removed"], "H(M) positions": g["n_enhanced"], "new": g["n_new"]})
    return pd.DataFrame(rows)


def _pcc_sections(summary, per_gene, paper_medians, stand_ins=()) -> list[str]:
    out = []
    present = set(summary["method"])
    methods = registry.order(summary["method"])
    for protocol, text in page_scores().items():
        if not (summary["protocol"] == protocol).any():
            continue
        out.append(f"## Median per-gene PCC, {protocol} protocol\n")
        out.append(text + ". Mean ± sd over seeds of the per-seed median over genes.\n")
        tab = method_table(summary, protocol, methods)
        if protocol == "paper" and paper_medians:
            tab.insert(1, f"{registry.label(registry.PAPER_METHOD)} *paper*", [_paper_value(f"{paper_medians[d]:.3f}", d, stand_ins) if d in paper_medians else "" for d in tab["data set"]])
        out.append(to_markdown(tab))
        if protocol == "paper" and paper_medians:
            out += _stand_in_footnote([d for d in tab["data set"] if d in paper_medians], stand_ins)
        if per_gene is None:
            continue
        tests = []
        for ds in tab["data set"]:
            bm, _ = best_baseline(summary, ds, protocol)
            for m in ("robust", "stentrans"):
                t = paired_test(per_gene[per_gene["dataset"] == ds], protocol, m, bm) if bm and m in present else None
                if t:
                    tests.append({"data set": ds, "comparison": f"{registry.label(m)} vs {registry.label(bm)}", "genes": t["n"], "median difference": round(t["median_diff"], 4), "genes better": f"{100 * t['frac_better']:.0f} %", "Wilcoxon p": format_p(t["p"]).lstrip("= ")})
        if tests:
            extra = " (each seed holds out other genes: the tests run over every gene held out in some seed)" if protocol.startswith("heldout") else ""
            out.append(f"Paired two-sided Wilcoxon signed-rank tests across genes (per-gene PCC averaged over seeds), against the best baseline{extra}:\n")
            out.append(to_markdown(pd.DataFrame(tests), digits=4))
    return out


def realtruth_verdicts(summary: pd.DataFrame) -> list[str]:
    """Per data set of ``summary``: the default against the best baseline under ``realtruth`` (new positions, raw counts)."""
    out = []
    for ds in dict.fromkeys(summary["dataset"]):
        dv = mean_of(summary, ds, "realtruth", registry.DEFAULT_METHOD)
        bm, bv = best_baseline(summary, ds, "realtruth")
        if not np.isfinite(dv) or bm is None:
            continue
        word = "beats" if dv > bv else "**loses to**"
        out.append(f"{ds}: the default ({registry.label(registry.DEFAULT_METHOD)}) {dv:.3f} {word} the best baseline ({registry.label(bm)}) {bv:.3f}.")
    return out


def _realtruth_section(summary) -> list[str]:
    if not (summary["protocol"] == "realtruth").any():
        return []
    table = realtruth_table(summary, keys=["dataset"])
    out = ["## Real 2x truth (samples binned from finer data)\n"]
    out.append(
        "Pseudo-spots binned from finer data (`finer` samples, `stentrans bin --spacing --truth`); every method fitted on the measured "
        "pseudo-spots only, scored at the new positions of the enhanced lattice against the same-disk truth (raw counts: `realtruth`; "
        "log-normalised: `realtruth-log`), the noise ceiling of the truth (binomial split, Spearman-Brown) and each method's fraction of it; "
        "`realtruth-denoise`: a fit on binomial half A scored against half B at the measured spots, beside half A itself (`raw-half`). "
        "Median per-gene PCC, mean over seeds. This is the real task (a -> a/2 on real tissue); the protocols below are proxies.\n"
    )
    show = table.assign(method=[registry.label(m) for m in table["method"]])
    out.append(to_markdown(show[["dataset", "method", "realtruth", "ceiling", "fraction", "realtruth-log", "realtruth-denoise", "raw-half", "n_genes", "n_new"]]))
    verdicts = realtruth_verdicts(summary)
    if verdicts:
        out += [f"- {v}" for v in verdicts]
        out.append("")
    return out


def _coverage_section(cov: pd.DataFrame) -> list[str]:
    """The coverage protocols' table: share of the truth inside the predictive intervals and their width."""
    cols = [c for c in ("dataset", "method", "protocol", "seed", "coverage", "coverage_p5", "coverage_p95", "width", "n_genes", "n_spots") if c in cov.columns]
    return [
        "## Predictive intervals\n",
        "Every enhanced value comes with an interval for the count a measurement there would give (`layers[\"lower\"]`/`[\"upper\"]`), "
        "calibrated from the data each method is given and nothing else (docs/method.md section 3.2). `coverage`: the share of the truth "
        "inside the interval (`realtruth-coverage`: the finer truth at the new positions; `nested-coverage`: the measured counts of the spots "
        "D removed); `coverage_p5`-`coverage_p95`: the spread of the per-gene coverage; `width`: the mean width over each gene's 5-95 % "
        "range at the measured spots (the interval that knows no position).\n",
        to_markdown(cov[cols]),
        "",
    ]


def realtruth_benchmark_section(path, page_dir=None) -> list[str]:
    """The benchmark's real-truth page (``benchmarks/realtruth.py``'s Markdown): its provenance line,
    where the default loses, and its raw-count table (every set at two spot sizes and both lattices).

    Raises ValueError naming the file when it has no raw-count table.
    """
    path = Path(path)
    lines = path.read_text().splitlines()
    made = next((x for x in lines if x.startswith("Made by")), None)
    verdict = []  # the bold line on the default against the best baseline and the bullets under it
    first = next((i for i, x in enumerate(lines) if x.startswith("**") and "best baseline" in x), None)
    if first is not None:
        verdict = [lines[first]]
        rest = lines[first + 1 :]
        while rest and not rest[0].strip():
            rest = rest[1:]
        for y in rest:
            if not y.startswith("- "):
                break
            verdict.append(y)
    start = next((i for i, x in enumerate(lines) if x.startswith("## ") and "raw counts" in x and "Median" in x), None)
    if start is None:
        raise ValueError(f"{path}: no section '## Median per-gene PCC ... raw counts' (expected the page written by benchmarks/realtruth.py)")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    table = [x for x in lines[start + 1 : end] if x.startswith("|")]
    link = Path(os.path.relpath(path, page_dir)).as_posix() if page_dir else path.as_posix()
    out = ["## Real 2x truth at two spot sizes and both lattices (benchmark)\n"]
    out.append(
        f"The run above bins each finer set at one spot size on one lattice. The same protocol over all four sets, both lattices and two spot sizes "
        f"each, from the benchmark page [{path.name}]({link}) (not made by this run; its command, settings and further tables are there). "
        f"{made or ''}\n"
    )
    if verdict:
        out += [verdict[0], ""] + verdict[1:] + [""]
    out.append("Median per-gene PCC at the new positions, raw counts:\n")
    out += table
    out.append("")
    return out


def _patterns_section(ds, pat, paper_new_terms) -> list[str]:
    s = pat["summary"]
    out = [f"## Fig. 4: spatial patterns on {ds}\n"]
    fam = s.get("families", {})
    rows = []
    for kind in ("original", "enhanced"):
        f = fam.get(kind, {})
        sig = f.get("significant_terms", {})
        rows.append({"data": kind, "spots": s.get("n_spots", {}).get(kind), "genes ranked": s.get("n_genes_ranked", {}).get(kind), "top genes": s.get("top"), "families": f.get("n_families"), "family sizes": ", ".join(str(v) for v in f.get("sizes", {}).values()), "GO:BP terms per family": ", ".join(str(v) for v in sig.values()), "top 10 (Sepal)": ", ".join(s.get("top10", {}).get(kind, []))})
    out.append(to_markdown(pd.DataFrame(rows)))
    n_new = s.get("n_new_terms", {})
    ref = f" (the paper: {paper_new_terms})" if paper_new_terms is not None else ""
    out.append(f"Terms enriched only after enhancement: {n_new.get('overall', 'NA')} overall, {n_new.get('paired', 'NA')} within paired families{ref}. Rank correlation (Spearman) of the two Sepal rankings: {s.get('rank_spearman', float('nan')):.3f}.\n")
    ctl = s.get("new_terms_control")
    if ctl:

        def over_seeds(v):  # mean ± sd over seeds (sd only with two or more)
            return format_pm(float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else float("nan"))

        rows = [{"enhanced data": d, "seeds": ", ".join(str(x) for x in c["seeds"]), "new terms overall": over_seeds(c["overall"]), "per seed": ", ".join(str(x) for x in c["overall"]), "new terms in paired families": over_seeds(c["paired"])} for d, c in ctl.items()]
        out.append("The control: the same ranking, families and enrichment after enhancement at further seeds and after interpolating the same spots (no model), each against the same original families:\n")
        out.append(to_markdown(pd.DataFrame(rows)))
    nt = pat["new_terms"]
    if nt is not None and len(nt):
        cols = [c for c in ("scope", "family_enhanced", "term", "adj_p", "overlap") if c in nt.columns]
        out.append("The first new terms:\n")
        out.append(to_markdown(nt[cols].head(10), digits=4))
    return out


def _cost_section(b: pd.DataFrame) -> list[str]:
    tot = float(b["s"].sum())
    peak = float(b["max_rss"].max()) if "max_rss" in b else float("nan")
    out = ["## Cost of this run\n"]
    out.append(f"{len(b)} jobs, {tot / 60:.1f} min of job wall time in total (sum over jobs; jobs ran one at a time when they needed every core), peak resident memory of one job {peak / 1024:.2f} GiB (Snakemake `benchmark:` files).\n")
    per_rule = b.groupby("rule").agg(jobs=("s", "size"), minutes=("s", lambda x: x.sum() / 60), peak_rss_gib=("max_rss", lambda x: x.max() / 1024)).reset_index().sort_values("minutes", ascending=False)
    out.append(to_markdown(per_rule, digits=2))
    return out


def render(files, title: str = "stEnTrans results", benchmarks=None, paper_medians=None, paper_table1=None, paper_new_terms=None, run_info=None, fig_dir=None, page_dir=None, max_png_bytes: int = 300_000, notes: str = "", realtruth_doc=None, stand_ins=None) -> str:
    """The page's Markdown; figures copied (and shrunk) into ``fig_dir``.

    Parameters
    ----------
    files, benchmarks
        As :func:`collect`.
    paper_medians, paper_table1, paper_new_terms
        The paper's published values, shown beside the run's.
    run_info
        ``{item: text}`` listed under "Run".
    fig_dir
        Where figures are copied (none copied without it); links on the
        page are relative to ``page_dir`` when given.
    realtruth_doc
        The benchmark's real-truth page (``docs/realtruth.md``), whose raw-count table follows the run's own
        real-truth table (see :func:`realtruth_benchmark_section`); None leaves it out.
    stand_ins
        ``{data set: what it is}`` for the run's data sets that stand in for the paper's (not reachable
        here): listed in a section of their own under the notes, named "(stand-in)" in the claims, and
        the paper's values beside them marked (they are the paper's results on its own data).
    """
    paper_medians = dict(paper_medians or {})
    paper_table1 = dict(paper_table1 or {})
    data = collect(files, benchmarks)
    summary, per_gene, ablation = data["summary"], data["per_gene"], data["ablation"]
    out = [f"# {title}\n"]
    out.append("Generated by the workflow's `results_page` rule from this run's outputs; every number below is measured by the run, except the columns marked *paper*, which are the published values.\n")
    if run_info:
        out.append("## Run\n")
        out += [f"- {k}: {v}" for k, v in run_info.items()]
        out.append("")
    if notes:
        out.append(notes.strip() + "\n")
    stand_ins = {d: t for d, t in dict(stand_ins or {}).items() if d in files}
    if stand_ins:
        out.append("## Stand-ins for the paper's data sets\n")
        out.append("These data sets are not the paper's (the paper's are not reachable here): their numbers are not the paper's results on its data, and a *paper* value shown beside one (marked †) is the paper's result on its own data set.\n")
        out += [f"- **{d}**: {t.strip()}" for d, t in stand_ins.items()]
        out.append("")
    if summary is not None:  # the real task first (a -> a/2 against real truth), then the mapping and the proxies
        out += _realtruth_section(summary)
    if realtruth_doc:
        out += realtruth_benchmark_section(realtruth_doc, page_dir)
    if data["downstream"] is not None:  # beside the accuracy: what clusters and SVGs see
        out += downstream_section(data["downstream"])
    if data.get("coverage") is not None:
        out += _coverage_section(data["coverage"])
    if data["grid"]:
        out.append("## Lattice mapping\n")
        out.append("Each sample's spots on its dense grid: the down-sampling D keeps the model's input, the enhancement fills the positions H(M).\n")
        out.append(to_markdown(_grid_table(data["grid"])))
    if summary is not None:
        out += _pcc_sections(summary, per_gene, paper_medians, stand_ins)
    if ablation is not None:
        out.append("## Table 1: ablation\n")
        t1 = ablation_table(ablation)
        if paper_table1:
            for m in registry.ABLATIONS:
                t1[f"{registry.label(m)} *paper*"] = [_paper_value(paper_table1.get(d, {}).get(m, ""), d, stand_ins) for d in t1["dataset"]]
        out.append("Median per-gene PCC, mean ± sd over seeds; same protocol, seeds and genes for every ablation.\n")
        out.append(to_markdown(t1))
        out += _stand_in_footnote([d for d in t1["dataset"] if d in paper_table1], stand_ins)

    def place(src: Path, name: str) -> str:
        dst = Path(fig_dir) / name
        shrink_png(src, dst, max_png_bytes)
        return (dst.relative_to(page_dir) if page_dir else dst).as_posix()

    figs = data["figures"]
    if fig_dir is not None and any(figs.values()):
        out.append("## Figures: Fig. 2 (gene panels) and Fig. 3 (PCC boxplots)\n")
        for ds, paths in figs.items():
            for kind, src in paths.items():
                out.append(f"**{ds}**: {FIGURE_CAPTIONS[kind]}\n\n![{ds} {src.stem}]({place(src, f'{ds}_{src.name}')})\n")
    for ds, pat in data["patterns"].items():
        out += _patterns_section(ds, pat, paper_new_terms)
        if fig_dir is not None:
            out += [f"![{ds} {src.stem}]({place(src, f'{ds}_{src.name}')})\n" for src in pat["figures"]]
    found = claims(summary, per_gene, ablation, data["patterns"], paper_medians, paper_new_terms, stand_ins)
    if found:
        out.append("## Which of the paper's claims hold here\n")
        out.append("Each line is decided by comparing the numbers above.\n")
        out += [f"- {c}" for c in found]
        out.append("")
    if data["benchmarks"] is not None and len(data["benchmarks"]):
        out += _cost_section(data["benchmarks"])
    return "\n".join(out).rstrip() + "\n"


def write(path, markdown: str) -> Path:
    """Write the page (its Markdown, or the HTML of :func:`to_html`) atomically; returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=path.suffix or ".md") as tmp:
        Path(tmp).write_text(markdown)
    return path


_HTML_STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:1em auto;padding:0 1em;line-height:1.4}"
    "table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #bbb;padding:2px 6px}"
    "th{background:#eee}img{max-width:100%}code{background:#f4f4f4}"
)


def to_html(markdown: str, page_dir=None, title: str = "stEnTrans results") -> str:
    """The page as one self-contained HTML file (what Snakemake's HTML report shows in place).

    The Markdown is rendered by markdown-it-py (CommonMark with tables); each
    figure under ``page_dir`` is embedded as a ``data:`` URI, so the file
    needs nothing beside it (the report keeps one file per item, and shows
    only images, HTML and PDF: a ``.md`` item opens nothing).
    """
    import base64
    import html
    import mimetypes

    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark").enable("table")
    tokens = md.parse(markdown)
    for tok in tokens:
        for child in tok.children or ():
            src = child.attrGet("src") if child.type == "image" else None
            if not src or page_dir is None or "://" in src or src.startswith("data:"):
                continue
            f = Path(page_dir) / src
            if f.is_file():
                mime = mimetypes.guess_type(f.name)[0] or "application/octet-stream"
                child.attrSet("src", f"data:{mime};base64,{base64.b64encode(f.read_bytes()).decode('ascii')}")
    body = md.renderer.render(tokens, md.options, {})
    head = f'<meta charset="utf-8"><title>{html.escape(title)}</title><style>{_HTML_STYLE}</style>'
    return f"<!DOCTYPE html>\n<html><head>{head}</head>\n<body>\n{body}</body></html>\n"
