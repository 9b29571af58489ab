"""The results page: every table and figure of a workflow run beside the paper's.

Built by the workflow's ``results_page`` rule from the run's own outputs
(``results/<sample>/evaluate``, ``ablation``, ``patterns``, ``summary``), so
no number on the page is typed by hand. Figures are copied next to the page
and shrunk until each PNG is under a size limit (default 300 KB) so the page
can be committed (``docs/results.md`` came from ``config/paper_reduced.yaml``).

Layout: run and settings; nested protocol first (what users get on spots no
model saw), with paired Wilcoxon tests across genes; the paper's protocol
beside the paper's published medians; held-out genes; Table 1; Fig. 2 / 3
style figures; Fig. 4 pattern analysis; which of the paper's claims hold here,
each decided from the numbers above; cost (wall time, peak memory per job).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from ._utils import atomic_path
from .evaluate import ABLATION_LABELS, ABLATION_METHODS, BASELINE_METHODS, _pm, to_markdown

log = logging.getLogger("stentrans.resultspage")

LABELS = {
    "stentrans": "stEnTrans (paper)",
    "robust": "stEnTrans robust",
    "robust+net": "robust + net",
    "dist": "DIST",
    "linear": "Linear",
    "cubic": "Cubic",
    "nn": "NN",
    "nedi": "NEDI",
}
PROTOCOL_TEXT = {
    "nested": "`nested`: the model sees only the down-sampled data D(G) and predicts the spots D removed; PCC over those spots only (what a user gets)",
    "paper": "`paper`: the authors' protocol; train on (D(G), G) of all genes, predict G, PCC over all in-tissue spots (the model trained on these values)",
    "paper-removed": "`paper-removed`: the `paper` predictions scored over the removed spots only",
    "heldout-genes": "`heldout-genes`: as `paper`, trained on 80 % of the genes, scored on the 20 % never seen",
    "truth": "`truth`: simulated data, scored against the simulator's 2x truth at the new positions",
}


def _p(p: float) -> str:
    """A p-value for the page: below double precision it is a bound, not zero."""
    return "< 1e-300" if p < 1e-300 else f"= {p:.1e}"


def shrink_png(src, dst, max_bytes: int = 300_000) -> Path:
    """Copy a PNG, halving its resolution step by step until it is under ``max_bytes``."""
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
                row[LABELS.get(m, m)] = _pm(float(hit["mean"].iloc[0]), float(hit["sd"].iloc[0]))
        bm, bv = best_baseline(grp, ds, protocol)
        if bm:
            row["best baseline"] = f"{LABELS.get(bm, bm)} {bv:.3f}"
        row["seeds"] = int(grp[[c for c in grp.columns if c.startswith("median_seed")]].notna().sum(axis=1).max())
        row["genes"] = int(grp["n_genes"].max())
        row["spots scored"] = int(grp["n_spots"].max())
        rows.append(row)
    return pd.DataFrame(rows)


def best_baseline(summary: pd.DataFrame, dataset: str, protocol: str):
    """(method, mean) of the best interpolation/DIST baseline, or (None, nan)."""
    sub = summary[(summary["dataset"] == dataset) & (summary["protocol"] == protocol) & summary["method"].isin(BASELINE_METHODS)]
    if sub.empty:
        return None, float("nan")
    best = sub.loc[sub["mean"].idxmax()]
    return str(best["method"]), float(best["mean"])


def mean_of(summary: pd.DataFrame, dataset: str, protocol: str, method: str) -> float:
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


def _read_tsv(path) -> pd.DataFrame | None:
    path = Path(path)
    return pd.read_csv(path, sep="\t") if path.is_file() else None


def collect(results: Path, samples) -> dict:
    """Read what the run wrote for ``samples`` (missing parts stay None)."""
    results = Path(results)
    out: dict = {"summary": [], "per_gene": [], "ablation": [], "patterns": {}, "figures": {}}
    for s in samples:
        ev = results / s / "evaluate"
        summ = _read_tsv(ev / "summary.tsv")
        if summ is not None:
            summ["dataset"] = s
            out["summary"].append(summ)
        pg = _read_tsv(ev / "per_gene.tsv")
        if pg is not None:
            pg["dataset"] = s
            out["per_gene"].append(pg)
        ab = _read_tsv(results / s / "ablation" / "summary.tsv")
        if ab is not None:
            ab["dataset"] = s
            out["ablation"].append(ab)
        pat = results / s / "patterns"
        if (pat / "summary.json").is_file():
            out["patterns"][s] = {
                "summary": json.loads((pat / "summary.json").read_text()),
                "new_terms": _read_tsv(pat / "new_terms.tsv"),
                "figures": [pat / f for f in ("fig4b_ranked_genes.png", "fig4c_family_summary.png", "fig4d_new_terms.png") if (pat / f).is_file()],
            }
        out["figures"][s] = [p for p in (ev / "boxplot.png", ev / "gene_panels.png", results / s / "figures" / "enhanced_genes.png") if p.is_file()]
    for k in ("summary", "per_gene", "ablation"):
        out[k] = pd.concat(out[k], ignore_index=True) if out[k] else None
    out["benchmarks"] = _read_tsv(results / "summary" / "benchmarks.tsv")
    return out


def _claims(summary, per_gene, ablation, patterns, paper_medians, paper_new_terms) -> list[str]:
    """The paper's claims, each decided from the measured numbers."""
    lines = []
    if summary is None:
        return lines
    for ds in dict.fromkeys(summary["dataset"]):
        st_p = mean_of(summary, ds, "paper", "stentrans")
        bm, bv = best_baseline(summary, ds, "paper")
        if np.isfinite(st_p) and bm:
            verdict = "holds" if st_p > bv else "does not hold"
            ref = f"; the paper reports {paper_medians[ds]:.3f}" if ds in paper_medians else ""
            lines.append(f"**{ds}, `paper` protocol** — stEnTrans beats every baseline: {verdict} (stEnTrans {st_p:.3f} vs {LABELS[bm]} {bv:.3f}{ref}).")
        st_n = mean_of(summary, ds, "nested", "stentrans")
        bm_n, bv_n = best_baseline(summary, ds, "nested")
        if np.isfinite(st_n) and bm_n:
            verdict = "holds" if st_n > bv_n else "does not hold"
            line = f"**{ds}, `nested`** (spots no model saw) — the paper's network beats interpolation: {verdict} (stEnTrans {st_n:.3f} vs {LABELS[bm_n]} {bv_n:.3f})."
            rb = mean_of(summary, ds, "nested", "robust")
            if np.isfinite(rb):
                t = paired_test(per_gene[per_gene["dataset"] == ds], "nested", "robust", bm_n) if per_gene is not None else None
                tt = f", paired Wilcoxon across {t['n']} genes p {_p(t['p'])}, better on {100 * t['frac_better']:.0f} % of genes" if t else ""
                line += f" The robust variant: {rb:.3f} ({'beats' if rb > bv_n else 'does not beat'} {LABELS[bm_n]}{tt})."
            lines.append(line)
        st_h = mean_of(summary, ds, "heldout-genes", "stentrans")
        bm_h, bv_h = best_baseline(summary, ds, "heldout-genes")
        if np.isfinite(st_h) and bm_h:
            verdict = "holds" if st_h > bv_h else "does not hold"
            lines.append(f"**{ds}, `heldout-genes`** — stEnTrans generalises to genes it never trained on: {verdict} ({st_h:.3f} vs {LABELS[bm_h]} {bv_h:.3f}; on `paper` {st_p:.3f}).")
    if ablation is not None:
        for ds, grp in ablation.groupby("dataset", sort=False):
            vals = {m: float(grp.loc[grp["method"] == m, "mean"].iloc[0]) for m in ABLATION_METHODS if (grp["method"] == m).any()}
            if "stentrans" in vals and len(vals) == len(ABLATION_METHODS):
                worse = [ABLATION_LABELS[m] for m in ABLATION_METHODS[1:] if vals[m] < vals["stentrans"]]
                verdict = "holds" if len(worse) == len(ABLATION_METHODS) - 1 else "does not hold"
                detail = ", ".join(f"{ABLATION_LABELS[m]} {vals[m]:.3f}" for m in ABLATION_METHODS)
                lines.append(f"**{ds}, Table 1** — the full model beats every ablation: {verdict} ({detail}).")
    for ds, pat in patterns.items():
        n_new = pat["summary"].get("n_new_terms", {}).get("overall")
        if n_new is not None:
            ref = f" (the paper: {paper_new_terms})" if paper_new_terms is not None else ""
            verdict = "holds" if n_new > 0 else "does not hold"
            lines.append(f"**{ds}, Fig. 4** — enhancement reveals GO:BP terms the original data does not: {verdict}, {n_new} new terms{ref}.")
    return lines


def render(results, samples, title: str = "stEnTrans results", paper_medians=None, paper_table1=None, paper_new_terms=None, run_info=None, fig_dir=None, page_dir=None, max_png_bytes: int = 300_000, notes: str = "") -> str:
    """The page's Markdown; figures copied (and shrunk) into ``fig_dir``."""
    paper_medians = dict(paper_medians or {})
    paper_table1 = dict(paper_table1 or {})
    data = collect(Path(results), samples)
    summary, per_gene, ablation = data["summary"], data["per_gene"], data["ablation"]
    out = [f"# {title}\n"]
    out.append("Generated by the workflow's `results_page` rule from this run's outputs; every number below is measured by the run, except the columns marked *paper*, which are the published values.\n")
    if run_info:
        out.append("## Run\n")
        for k, v in run_info.items():
            out.append(f"- {k}: {v}")
        out.append("")
    if notes:
        out.append(notes.strip() + "\n")
    if summary is not None:
        methods = [m for m in LABELS if m in set(summary["method"])]
        for protocol in ("nested", "paper", "paper-removed", "heldout-genes", "truth"):
            if not (summary["protocol"] == protocol).any():
                continue
            out.append(f"## Median per-gene PCC, {protocol} protocol\n")
            out.append(PROTOCOL_TEXT[protocol] + ". Mean ± sd over seeds of the per-seed median over genes.\n")
            tab = method_table(summary, protocol, methods)
            if protocol == "paper" and paper_medians:
                tab.insert(1, "stEnTrans *paper*", [f"{paper_medians[d]:.3f}" if d in paper_medians else "" for d in tab["data set"]])
            out.append(to_markdown(tab))
            if per_gene is not None:
                tests = []
                for ds in tab["data set"]:
                    bm, _ = best_baseline(summary, ds, protocol)
                    for m in ("robust", "stentrans"):
                        t = paired_test(per_gene[per_gene["dataset"] == ds], protocol, m, bm) if bm and m in set(summary["method"]) else None
                        if t:
                            tests.append({"data set": ds, "comparison": f"{LABELS[m]} vs {LABELS[bm]}", "genes": t["n"], "median difference": round(t["median_diff"], 4), "genes better": f"{100 * t['frac_better']:.0f} %", "Wilcoxon p": _p(t["p"]).lstrip("= ")})
                if tests:
                    extra = " (each seed holds out other genes: the tests run over every gene held out in some seed)" if protocol.startswith("heldout") else ""
                    out.append(f"Paired two-sided Wilcoxon signed-rank tests across genes (per-gene PCC averaged over seeds), against the best baseline{extra}:\n")
                    out.append(to_markdown(pd.DataFrame(tests), digits=4))
    if ablation is not None:
        from .evaluate import ablation_table

        out.append("## Table 1: ablation\n")
        t1 = ablation_table(ablation)
        if paper_table1:
            for m in ABLATION_METHODS:
                lab = ABLATION_LABELS[m]
                t1[f"{lab} *paper*"] = [paper_table1.get(d, {}).get(m, "") for d in t1["dataset"]]
        out.append("Median per-gene PCC, mean ± sd over seeds; same protocol, seeds and genes for every variant.\n")
        out.append(to_markdown(t1))
    figs = data["figures"]
    copied = []

    def place(src: Path, name: str) -> str:
        dst = Path(fig_dir) / name
        shrink_png(src, dst, max_png_bytes)
        copied.append(dst)
        rel = Path(dst).relative_to(page_dir) if page_dir else dst
        return rel.as_posix()

    if fig_dir is not None and any(figs.values()):
        out.append("## Figures: Fig. 2 (gene panels) and Fig. 3 (PCC boxplots)\n")
        for ds, paths in figs.items():
            for src in paths:
                caption = {"boxplot.png": "per-gene PCC per method and protocol (Fig. 3 style)", "gene_panels.png": "measured, down-sampled input and every method's prediction (Fig. 2 style)", "enhanced_genes.png": "measured and enhanced maps of the top-variance genes"}[src.name]
                out.append(f"**{ds}**: {caption}\n\n![{ds} {src.stem}]({place(src, f'{ds}_{src.name}')})\n")
    for ds, pat in data["patterns"].items():
        s = pat["summary"]
        out.append(f"## Fig. 4: spatial patterns on {ds}\n")
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
        nt = pat["new_terms"]
        if nt is not None and len(nt):
            cols = [c for c in ("scope", "family_enhanced", "term", "adj_p", "overlap") if c in nt.columns]
            out.append("The first new terms:\n")
            out.append(to_markdown(nt[cols].head(10), digits=4))
        if fig_dir is not None:
            for src in pat["figures"]:
                out.append(f"![{ds} {src.stem}]({place(src, f'{ds}_{src.name}')})\n")
    claims = _claims(summary, per_gene, ablation, data["patterns"], paper_medians, paper_new_terms)
    if claims:
        out.append("## Which of the paper's claims hold here\n")
        out.append("Each line is decided by comparing the numbers above.\n")
        out += [f"- {c}" for c in claims]
        out.append("")
    b = data["benchmarks"]
    if b is not None and len(b):
        out.append("## Cost of this run\n")
        tot = float(b["s"].sum())
        peak = float(b["max_rss"].max()) if "max_rss" in b else float("nan")
        out.append(f"{len(b)} jobs, {tot / 60:.1f} min of job wall time in total (sum over jobs; jobs ran one at a time when they needed every core), peak resident memory of one job {peak / 1024:.2f} GiB (Snakemake `benchmark:` files).\n")
        per_rule = b.groupby("rule").agg(jobs=("s", "size"), minutes=("s", lambda x: x.sum() / 60), peak_rss_gib=("max_rss", lambda x: x.max() / 1024)).reset_index().sort_values("minutes", ascending=False)
        out.append(to_markdown(per_rule, digits=2))
    return "\n".join(out).rstrip() + "\n"


def write(path, markdown: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".md") as tmp:
        Path(tmp).write_text(markdown)
    return path
