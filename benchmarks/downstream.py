"""Downstream analysis on real 2x truth (issue 28): what users do first with an enhanced slide, scored against the truth.

Three parts, one command each (from the repository root)::

    nice python benchmarks/downstream.py                   # the table over the 16 real-truth cases (resumable)
    nice python benchmarks/downstream.py --mixing-slides   # mixing of `stentrans enhance` on the 4 real slides
    nice python benchmarks/downstream.py --layers          # DLPFC 151510: nested, domains vs the manual layers

**The table** (:mod:`stentrans.tl._downstream` computes every score; its
docstring has the fixed settings). The cases are those of
``benchmarks/realtruth.py``: the four shared finer sets (Slide-seq,
MERSCOPE, STARmap, Stereo-seq; all mouse) x both lattices x two spot sizes,
the same spacings (:func:`realtruth.find_spacing` for about 300 and 1,000
spots; the fixed spacings of STARmap and Stereo-seq), the same QC and genes
(:func:`realtruth.case_genes`: genes in more than 10 % of the spots, at most
``--genes`` most variable and ``--gene-pixels`` genes x grid pixels). The
reference is the truth binned at every position of the enhanced lattice
(measured and new; at the measured positions it equals the spots' counts).
Outputs, each enhancing the measured pseudo-spots (``tl.enhance``, every
position: measured and new): the default (``robust``, its defaults: the
estimate at the measured spots), the default with the measured counts kept
in X (``--measured counts``, the behaviour before issue 28), ``linear``,
``nn``, the paper's network (``stentrans``, ``--epochs`` epochs on CPU), and
"measured only" (every position the values of the nearest measured spot,
:func:`stentrans.tl.nearest_measured`; it differs from NN only
where a position is equally far from two spots, which NN breaks the other
way). Scores: kNN mixing of measured vs new positions; k-means (k = 8) and
Leiden domains, ARI against the truth's, beside the truth's own
reproducibility (two binomial halves of the truth); Moran's I (squidpy),
Spearman against the truth's and top-50 overlap; Sepal -> families -> GO:BP
(``../shared/genesets/GO_BP_human_propagated.gmt``, mouse symbols),
precision and recall of the significant terms against the truth's, and the
measured spots' own terms (Fig. 4's "original"). Beside them: protocol
``realtruth`` (``tl.evaluate``) for the default and Linear, the median
per-gene PCC at the new positions, and ``realtruth-denoise`` (fitted on a
binomial half A of the spots, scored against half B at the measured
positions) beside half A itself.

Each case's result is kept in ``--cache`` (one JSON per case and settings):
a rerun resumes; ``--sets``/``--lattices``/``--targets`` run part of it.
``--section go`` writes the table to a second section, for a run with more
genes (e.g. ``--genes 1000 --gene-pixels 0`` on the sets with genome-wide
genes: GO:BP needs more than the 200-gene cap; command in docs/downstream.md).

**Mixing on the real slides** (``--mixing-slides``): ``stentrans enhance
SLIDE -o OUT.h5ad`` (the command line, every default: QC, the robust
method, the estimate at the measured spots) on the melanoma ST slide, the
Visium mouse slide, the Visium prostate strip and Visium DLPFC 151510;
mixing of the output's X against the bound 0.05; for contrast the same file
with X at the measured spots taken from ``layers["counts"]``, which is what
``--measured counts`` writes (the same fit; its new positions are the same).

**DLPFC 151510 layers** (``--layers``): the slide after QC is ``G``;
``D(G)`` keeps the spots the nested protocol's down-sampling keeps
(:func:`stentrans.tl.downsample_spots`, a quarter of them), is
enhanced back to ``G``'s lattice by the default and by Linear, and the
enhanced values at ``G``'s spots are clustered (k-means, k = the number of
manual layers, and Leiden; the embedding of the table). ARI against the
manual layers (``obs["layer"]``) at every spot with a layer, beside: ``D(G)``
clustered on its own and its labels carried to the removed spots by the
nearest kept spot; and ``G`` itself clustered (every spot measured: what
the full slide gives).

Output: the tables printed, ``benchmarks/out/downstream*.json`` and
``docs/downstream.md`` (the Markdown; each part rewrites its own section).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

import stentrans  # noqa: E402
from stentrans import pp, tl  # noqa: E402
from stentrans.io import pseudospots, read_finer  # noqa: E402
from stentrans.report.tables import realtruth_table, to_markdown  # noqa: E402

import realtruth  # noqa: E402

log = logging.getLogger("downstream")

SHARED = Path(os.environ.get("STENTRANS_SHARED", REPO.parent / "shared"))
GMT = SHARED / "genesets" / "GO_BP_human_propagated.gmt"
#: the finer sets' organism (their genes are mouse symbols)
SPECIES = {"slideseq": "mouse", "merscope": "mouse", "starmap": "mouse", "stereoseq": "mouse"}
#: outputs of the table, in column order, and their labels
OUTPUTS = {
    "robust": "default",
    "robust-counts": "default, counts kept",
    "robust-shrink": "default, --measured shrink",
    "linear": "Linear",
    "nn": "NN",
    "stentrans": "stEnTrans",
    "measured-only": "measured only",
}
SLIDES = {
    "melanoma": SHARED / "data" / "melanoma_mel1_rep1.tsv.gz",
    "visium_mouse": SHARED / "data" / "visium_mouse_cytassist",
    "visium_prostate": SHARED / "data" / "visium_prostate_normal_crop",
    "dlpfc_151510": SHARED / "data" / "visium_dlpfc_151510_500genes.h5ad",
}
DLPFC = SLIDES["dlpfc_151510"]
OUT = HERE / "out"
OUT_MD = REPO / "docs" / "downstream.md"


# --------------------------------------------------------------------------
# the table over the real-truth cases
# --------------------------------------------------------------------------
def enhance_outputs(a, truth, genes, args) -> tuple[dict, dict]:
    """Every output of the table at every enhanced position (:func:`stentrans.tl.downstream_outputs`) and the seconds they took."""
    t0 = time.perf_counter()
    outs = tl.downstream_outputs(a, truth, outputs=[o for o in OUTPUTS if o in args.outputs], genes=genes, settings={"stentrans": {"epochs": args.epochs}}, device=args.device)
    return outs, {"all": round(time.perf_counter() - t0, 1)}


def independent_halves(spots, truth, seed: int = 0):
    """``(spots A, truth B)``: each molecule of the truth to one of two halves; the spots get half A, the reference is half B at every position.

    At the measured positions the truth is the spots' own counts, so in the
    table an output that keeps them (Linear, measured only) copies the
    reference's noise there; with the halves no output sees the
    reference's molecules anywhere, and both sides have the same depth.
    """
    from stentrans.io import binomial_split

    A, B = binomial_split(truth.X, np.random.default_rng((seed, 5)))
    at = tl.match_positions(spots, truth)
    if (at < 0).any():
        raise ValueError(f"{int((at < 0).sum())} spots not among the truth's positions")
    sa, tb = spots.copy(), truth.copy()
    sa.X, tb.X = A[at], B
    for a in (sa, tb):  # per-spot totals of the half, not of the whole
        if "total_counts" in a.obs:
            a.obs["total_counts"] = np.asarray(a.X.sum(1)).ravel()
        if "n_genes" in a.obs:
            a.obs["n_genes"] = np.asarray((a.X > 0).sum(1)).ravel()
    return sa, tb


def run_case(points, name: str, lattice: str, spacing: float, args) -> dict:
    spots, truth = pseudospots(points, lattice, spacing, truth=True)
    if args.reference == "halves":
        spots, truth = independent_halves(spots, truth)
    a = pp.qc(spots)
    genes = realtruth.case_genes(a, args.genes, args.gene_pixels)
    info = {"set": name, "lattice": lattice, "spacing": float(spacing), "n_spots": int(a.n_obs), "n_genes": len(genes), "n_truth": int(truth.n_obs), "n_truth_new": int(truth.obs["is_imputed"].sum())}
    log.info("%s %s spacing %g: %d spots, %d genes, truth %d positions", name, lattice, spacing, a.n_obs, len(genes), truth.n_obs)
    t0 = time.perf_counter()
    outs, secs = enhance_outputs(a, truth, genes, args)
    ref = truth[:, genes].copy()
    res = tl.downstream(ref, outs, gmt=GMT if args.go else None, species=SPECIES[name], measured=a[:, genes].copy(), device=args.device)
    info["seconds_enhance"] = secs
    info["seconds"] = round(time.perf_counter() - t0, 1)
    res["info"] = info
    if args.reference == "halves":  # the per-gene accuracy is the realtruth table's, at full depth
        return res
    # realtruth at the new positions and denoising at the measured ones (protocol realtruth of tl.evaluate)
    ev = tl.evaluate(a, protocol="realtruth", methods=["robust", "linear"], seeds=[0], truth=truth, genes=genes, device=args.device, progress=False)
    rt = realtruth_table(ev["summary"]).set_index("method")
    res["realtruth"] = {m: {k: float(rt.loc[m, k]) for k in ("realtruth", "ceiling", "realtruth-denoise", "raw-half")} for m in rt.index}
    info["seconds"] = round(time.perf_counter() - t0, 1)
    res["info"] = info
    return res


def _settings(args) -> dict:
    return {"outputs": args.outputs, "epochs": args.epochs, "genes": args.genes, "gene_pixels": args.gene_pixels, "go": args.go, "device": args.device, "reference": args.reference}


def cached_case(points_of, name, lattice, spacing, args) -> dict:
    path = Path(args.cache) / f"{name}_{lattice}_{spacing:g}.json" if args.cache else None
    if path is not None and path.exists():
        saved = json.loads(path.read_text())
        if saved.get("settings") == _settings(args):
            log.info("%s %s %g: from %s", name, lattice, spacing, path)
            return saved["result"]
    res = run_case(points_of(name), name, lattice, spacing, args)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"settings": _settings(args), "result": res}, default=float))
        tmp.replace(path)
    return res


def spacings(points_of, name, lattice, targets, cache: Path | None) -> list[float]:
    """The realtruth table's spacings (fixed, or searched for the targets: kept in ``cache``/spacings.json)."""
    fixed = realtruth.SETS[name][2]
    if fixed:
        return list(fixed[lattice])
    store = cache / "spacings.json" if cache else None
    known = json.loads(store.read_text()) if store and store.exists() else {}
    out = []
    for t in targets:
        key = f"{name} {lattice} {t}"
        if key not in known:
            known[key] = realtruth.find_spacing(points_of(name), lattice, t)[0]
            if store:
                store.parent.mkdir(parents=True, exist_ok=True)
                store.write_text(json.dumps(known, indent=1))
        out.append(float(known[key]))
    return out


def case_rows(results: list[dict]) -> pd.DataFrame:
    """One row per case and output: every score, the case's ceiling and realtruth scores."""
    rows = []
    for r in results:
        i = r["info"]
        for row in r["rows"]:
            rows.append({"set": i["set"], "lattice": i["lattice"], "spacing": i["spacing"], "spots": i["n_spots"], **row})
    return pd.DataFrame(rows)


def wide(results: list[dict], col: str, outputs, ceiling: str | None = None) -> pd.DataFrame:
    """One row per case, one column per output (labels), the ceiling last."""
    out = []
    for r in results:
        i = r["info"]
        by = {row["output"]: row for row in r["rows"]}
        d = {"set": i["set"], "lattice": i["lattice"], "spots": i["n_spots"], "genes": i["n_genes"]}
        for o in outputs:
            if o in by:
                d[OUTPUTS.get(o, o)] = by[o].get(col, float("nan"))
        if ceiling:
            d["truth halves"] = r["ceiling"].get(ceiling, float("nan"))
        out.append(d)
    return pd.DataFrame(out)


def wins(results, col: str, default="robust", against=("linear", "measured-only")) -> tuple[int, int]:
    """Cases where the default is at or above every output in ``against`` on ``col``, and the cases scored."""
    n = k = 0
    for r in results:
        by = {row["output"]: row for row in r["rows"]}
        if default not in by or not all(o in by for o in against):
            continue
        n += 1
        k += all(by[default][col] >= by[o][col] - 1e-12 for o in against)
    return k, n


def mean_of(results, col, output) -> float:
    v = [row.get(col, np.nan) for r in results for row in r["rows"] if row["output"] == output]
    v = np.asarray(v, dtype=float)
    return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")


def _range(results, col, output) -> str:
    v = [row.get(col, np.nan) for r in results for row in r["rows"] if row["output"] == output]
    v = np.asarray(v, dtype=float)
    return f"{np.nanmin(v):+.3f} .. {np.nanmax(v):+.3f}" if np.isfinite(v).any() else "NA"


def table_markdown(results, args, command, title: str = "The table: 16 real-truth cases") -> str:
    outs = [o for o in OUTPUTS if o in args.outputs]
    ran = ", ".join(f"{r['info']['set']} {r['info']['lattice']} {r['info']['n_spots']}" for r in results)
    kk, nk = wins(results, "ari_kmeans")
    kl, nl = wins(results, "ari_leiden")
    km, nm = wins(results, "moran_spearman")
    kn, nn_ = wins(results, "ari_kmeans_new")
    ks, ns = wins(results, "go_rank_spearman") if args.go else (0, 0)
    den = [(r["realtruth"]["robust"]["realtruth-denoise"], r["realtruth"]["robust"]["raw-half"]) for r in results if "robust" in r.get("realtruth", {})]
    n_den = sum(d >= h for d, h in den)
    mix = [row["mixing"] for r in results for row in r["rows"] if row["output"] == "robust"]
    lines = [
        f"## {title}",
        "",
        *(["With `--reference halves` the reference is half B, so the *truth halves* yardstick splits it again: two quarter-depth halves (a conservative yardstick).", ""] if getattr(args, "reference", "truth") == "halves" else []),
        f"Made by `{command}` ({time.strftime('%Y-%m-%d')}, {platform.machine()} CPU, stentrans {stentrans.__version__}); "
        f"{len(results)} case(s): {ran}. Settings: genes as `benchmarks/realtruth.py` (QC, at most {args.genes} most variable and "
        f"{args.gene_pixels:,} genes x grid pixels; 0: no cap)" + (f", the paper's network {args.epochs} epochs on CPU" if "stentrans" in args.outputs else "") + ", seed 0; scores and their fixed "
        "settings: `stentrans.tl._downstream` (normalize_total, log1p, PCA 30, kNN 15; k-means k = 8, Leiden resolution 1; Moran's I "
        "on the lattice graph, top 50 genes (half the genes where fewer than 100); Sepal -> families -> GO:BP at `stentrans patterns`' defaults, mouse symbols).",
        "",
        "### Summary",
        "",
        f"- **Mixing** of the default: {min(mix):+.3f} .. {max(mix):+.3f} over the cases (bound +-0.05: {sum(abs(m) <= tl.MIXING_BOUND for m in mix)} of {len(mix)} within); "
        f"with the counts kept in X (the behaviour before): {_range(results, 'mixing', 'robust-counts')}.",
        f"- **Domains**: the default at or above both Linear and measured-only in **{kk} of {nk}** cases (k-means ARI) and {kl} of {nl} (Leiden). "
        f"Mean k-means ARI: " + ", ".join(f"{OUTPUTS[o]} {mean_of(results, 'ari_kmeans', o):.3f}" for o in outs) + f"; the truth's halves {np.nanmean([r['ceiling']['ari_kmeans'] for r in results]):.3f}. "
        "Mean Leiden ARI: " + ", ".join(f"{OUTPUTS[o]} {mean_of(results, 'ari_leiden', o):.3f}" for o in outs) + ". "
        f"Scored at the new positions alone (k-means): the default at or above both in {kn} of {nn_}; mean " + ", ".join(f"{OUTPUTS[o]} {mean_of(results, 'ari_kmeans_new', o):.3f}" for o in outs) + ".",
        *([f"- **Per gene at the measured positions** (median PCC against the reference): mean " + ", ".join(f"{OUTPUTS[o]} {mean_of(results, 'pcc_measured', o):.3f}" for o in outs)
           + f"; `--measured shrink` above half A itself (Linear) in {wins(results, 'pcc_measured', default='robust-shrink', against=('linear',))[0]} of {len(results)}, the default in {wins(results, 'pcc_measured', against=('linear',))[0]}."]
          if "robust-shrink" in outs and any("pcc_measured" in row for r in results for row in r["rows"]) else []),
        f"- **Spatially variable genes**: Moran's I Spearman, default at or above both in {km} of {nm}; mean Spearman " + ", ".join(f"{OUTPUTS[o]} {mean_of(results, 'moran_spearman', o):.3f}" for o in outs)
        + "; mean top-50 overlap " + ", ".join(f"{OUTPUTS[o]} {mean_of(results, 'moran_top_overlap', o):.2f}" for o in outs) + ".",
        *([f"- **Denoising** (`realtruth-denoise`): the default's estimate at the measured spots beats raw half A in {n_den} of {len(den)} cases."] if den else []),
        "",
    ]
    if args.go:
        lines[-2:-2] = [
            f"- **Sepal ranks** (Spearman against the truth's): the default at or above both in {ks} of {ns}; mean "
            + ", ".join(f"{OUTPUTS.get(o, o)} {mean_of(results, 'go_rank_spearman', o):.3f}" for o in outs + ["measured spots"]) + ".",
            f"- **GO:BP** (cases where the truth has significant terms: {sum(1 for r in results if r.get('go_reference_terms'))} of {len(results)}): mean precision "
            + ", ".join(f"{OUTPUTS.get(o, o)} {mean_of(results, 'go_precision', o):.2f}" for o in outs + ["measured spots"])
            + "; mean recall " + ", ".join(f"{OUTPUTS.get(o, o)} {mean_of(results, 'go_recall', o):.2f}" for o in outs + ["measured spots"]) + " (nan: no terms in any case).",
        ]
    sections = [
        ("Mixing (measured positions' share of measured kNN neighbours minus the global share; 0 = one data set; the truth's own beside it)", "mixing", None),
        ("Domains: k-means (k = 8) ARI against the truth's k-means domains", "ari_kmeans", "ari_kmeans"),
        ("Domains: Leiden (resolution 1) ARI against the truth's Leiden domains", "ari_leiden", "ari_leiden"),
        ("Domains at the new positions alone: k-means ARI there (the truth's counts at the measured positions are the spots' own)", "ari_kmeans_new", None),
        ("Spatially variable genes: Spearman of Moran's I against the truth's", "moran_spearman", "moran_spearman"),
        ("Spatially variable genes: top-50 overlap with the truth's (share)", "moran_top_overlap", "moran_top_overlap"),
    ]
    if any("pcc_measured" in row for r in results for row in r["rows"]):
        sections += [
            ("Per gene at the measured positions: median PCC against the reference (with --reference halves: the denoise score against half B; Linear and measured only are half A itself)", "pcc_measured", None),
            ("Per gene at the new positions: median PCC against the reference", "pcc_new", None),
        ]
    for title, col, ceil in sections:
        lines += [f"### {title}", "", to_markdown(wide(results, col, (["truth"] if col == "mixing" else []) + outs, ceil)), ""]
    if args.go:
        go_outs = outs + ["measured spots"]
        lines += [
            "### GO:BP: precision of the significant terms against the truth's (NA: no terms)",
            "",
            to_markdown(wide(results, "go_precision", go_outs)),
            "",
            "### GO:BP: recall of the truth's significant terms (NA: the truth has none)",
            "",
            to_markdown(wide(results, "go_recall", go_outs)),
            "",
            "### Sepal: Spearman of the genes' Sepal ranks against the truth's",
            "",
            to_markdown(wide(results, "go_rank_spearman", go_outs)),
            "",
            "### GO:BP: significant terms (the truth's, and each output's)",
            "",
            to_markdown(pd.concat([wide(results, "go_n_reference_terms", ["truth"]).rename(columns={"truth": "truth terms"}), wide(results, "go_n_terms", go_outs).iloc[:, 4:]], axis=1), digits=0),
            "",
        ]
    rt = []
    for r in results:
        i, q = r["info"], r.get("realtruth", {})
        if "robust" in q:
            rt.append({"set": i["set"], "lattice": i["lattice"], "spots": i["n_spots"], "default (new positions)": q["robust"]["realtruth"], "Linear (new positions)": q.get("linear", {}).get("realtruth", np.nan), "ceiling": q["robust"]["ceiling"], "default denoise": q["robust"]["realtruth-denoise"], "raw half A": q["robust"]["raw-half"]})
    if rt:
        lines += ["### Per-gene accuracy beside it: protocol `realtruth` (median per-gene PCC, raw counts)", "", to_markdown(pd.DataFrame(rt)), ""]
    return "\n".join(lines)


def run_table(args, command) -> int:
    cache = Path(args.cache) if args.cache else None
    points = {}

    def points_of(name):
        if name not in points:
            points.clear()  # one set's points in memory at a time
            points[name] = read_finer(realtruth.FINER / realtruth.SETS[name][0])
        return points[name]

    results = []
    for name in args.sets:
        for lattice in args.lattices:
            for spacing in spacings(points_of, name, lattice, args.targets, cache):
                t0 = time.perf_counter()
                results.append(cached_case(points_of, name, lattice, spacing, args))
                log.info("%s %s %g done (%.0f s)", name, lattice, spacing, time.perf_counter() - t0)
    pd.set_option("display.width", 250)
    df = case_rows(results)
    cols = ["set", "lattice", "spots", "output", "mixing", "ari_kmeans", "ari_leiden", "moran_spearman", "moran_top_overlap", "go_precision", "go_recall"]
    print(df[[c for c in cols if c in df.columns]].round(3).to_string(index=False))
    print("default >= linear and measured-only, k-means ARI: %d of %d; Leiden: %d of %d" % (*wins(results, "ari_kmeans"), *wins(results, "ari_leiden")))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"command": command, "settings": _settings(args), "cases": results, "stentrans_version": stentrans.__version__}, indent=1, default=float))
    if args.markdown:
        titles = {"table": "The table: 16 real-truth cases", "go": "More genes: the sets with genome-wide genes at every QC gene (GO:BP)", "halves": "Independent halves: the spots get half A of the molecules, the reference is half B at every position"}
        write_section(Path(args.markdown), args.section, table_markdown(results, args, command, titles[args.section]))
    return 0


# --------------------------------------------------------------------------
# mixing on the real slides
# --------------------------------------------------------------------------
def run_mixing_slides(args, command) -> int:
    import anndata as ad

    rows = []
    for name in args.slides:
        path = SLIDES[name]
        if not path.exists():
            print(f"[skip] {name}: {path} not found")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "enhanced.h5ad"
            cmd = [sys.executable, "-m", "stentrans", "enhance", str(path), "-o", str(out)]
            t0 = time.perf_counter()
            env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
            subprocess.run(cmd, check=True, env=env)
            secs = time.perf_counter() - t0
            e = ad.read_h5ad(out)
        meas = ~e.obs["is_imputed"].to_numpy(dtype=bool)
        est = tl.mixing_shares(e, is_measured=meas)
        X = np.asarray(e.X).copy()
        C = e.layers["counts"]
        X[meas] = np.asarray(C[meas].toarray() if hasattr(C, "toarray") else C[meas])
        cnt = tl.mixing_shares(X, is_measured=meas)
        rows.append({"slide": name, "measured": int(meas.sum()), "new": int((~meas).sum()), "genes": int(e.n_vars), "measured share": est["measured_share"],
                     "mixing (default)": est["mixing"], "within 0.05": abs(est["mixing"]) <= tl.MIXING_BOUND, "measured neighbours (default)": est["measured_neighbours"], "new neighbours (default)": est["new_neighbours"],
                     "mixing (--measured counts)": cnt["mixing"], "seconds": round(secs, 1)})
        log.info("%s: mixing %+.3f (counts kept: %+.3f)", name, est["mixing"], cnt["mixing"])
    df = pd.DataFrame(rows)
    pd.set_option("display.width", 250)
    print(df.round(3).to_string(index=False))
    (OUT / "downstream_mixing.json").parent.mkdir(parents=True, exist_ok=True)
    (OUT / "downstream_mixing.json").write_text(json.dumps({"command": command, "rows": json.loads(df.to_json(orient="records"))}, indent=1))
    if args.markdown:
        md = [
            "## Mixing on the real slides",
            "",
            f"Made by `{command}` ({time.strftime('%Y-%m-%d')}, {platform.machine()} CPU): `stentrans enhance SLIDE -o OUT.h5ad` with every default, "
            "then the mixing of X (`stentrans.tl.mixing`: normalize_total, log1p, PCA 30, kNN 15; measured positions' share of measured "
            "neighbours minus the global measured share). The last column: the same file with X at the measured spots from `layers['counts']`, "
            "which is what `--measured counts` (the behaviour before) writes.",
            "",
            to_markdown(df),
            "",
        ]
        write_section(Path(args.markdown), "mixing", "\n".join(md))
    return 0 if all(df["within 0.05"]) else 1


# --------------------------------------------------------------------------
# DLPFC layers, nested
# --------------------------------------------------------------------------
def run_layers(args, command) -> int:
    G = pp.qc(stentrans.read(DLPFC))
    layer = G.obs["layer"].astype("string")
    # the file marks unlabelled spots with the string "nan"
    layer = layer.mask(layer.str.lower().isin(["nan", "na", ""]))
    has = layer.notna().to_numpy()
    labels = layer.to_numpy(dtype=object, na_value=None)
    k = int(pd.unique(labels[has]).size)
    Dg = tl.downsample_spots(G)
    log.info("DLPFC: G %d spots, D(G) %d kept, %d layers", G.n_obs, Dg.n_obs, k)
    from scipy.spatial import cKDTree

    from stentrans.lattice import physical

    def on_G(enh):
        r, c = tl.upsampled_coords(Dg, enh.obs["array_row"], enh.obs["array_col"])
        e = enh.copy()
        e.obs["array_row"], e.obs["array_col"] = r, c
        return e

    outs, secs = {}, {}
    for m in ("robust", "linear"):
        t0 = time.perf_counter()
        outs[m] = on_G(tl.enhance(Dg, method=m, device=args.device, progress=False, interval=0))
        secs[m] = round(time.perf_counter() - t0, 1)
    rows_G = tl.common_positions(G, *outs.values())
    Gc = G[rows_G].copy()
    lab = labels[rows_G]
    ok = np.array([x is not None for x in lab])
    Dg_on_G = on_G(Dg)
    removed = tl.match_positions(Gc, Dg_on_G) < 0
    res = []

    def score(name, dom, what):
        res.append({"clustering of": name, "what": what, **{f"ARI {m} (all spots)": tl.ari(dom[m][ok], lab[ok]) for m in dom},
                    **{f"ARI {m} (removed spots)": tl.ari(dom[m][ok & removed], lab[ok & removed]) for m in dom},
                    "Leiden clusters": int(len(np.unique(dom["leiden"])))})

    kw = {"k": k, "seed": 0}
    for m, e in outs.items():
        a = tl.align_positions(e, Gc, genes=list(Gc.var_names))
        score(OUTPUTS[m], tl.domains(a, **kw), f"D(G) enhanced by {OUTPUTS[m]}: its values at G's spots (the measured-position estimate at the kept ones)")
    # D(G) clustered, the labels carried to G's spots by the nearest kept spot
    dd = tl.domains(Dg, **kw)
    xd = np.column_stack(physical(Dg_on_G.obs["array_row"], Dg_on_G.obs["array_col"], "hex"))
    xg = np.column_stack(physical(Gc.obs["array_row"], Gc.obs["array_col"], "hex"))
    _, near = cKDTree(xd).query(xg, k=1)
    score("D(G), nearest kept spot", {m: v[near] for m, v in dd.items()}, "D(G) clustered on its own, the labels carried to the removed spots by the nearest kept spot")
    score("G (every spot measured)", tl.domains(Gc, **kw), "the full slide clustered: what measuring every spot gives")
    df = pd.DataFrame(res)
    pd.set_option("display.width", 250)
    print(df.round(3).drop(columns="what").to_string(index=False))
    (OUT / "downstream_layers.json").parent.mkdir(parents=True, exist_ok=True)
    (OUT / "downstream_layers.json").write_text(json.dumps({"command": command, "k": k, "n_G": int(Gc.n_obs), "n_removed": int(removed.sum()), "n_layer_labelled": int(ok.sum()), "seconds": secs, "rows": json.loads(df.to_json(orient="records"))}, indent=1))
    if args.markdown:
        md = [
            "## DLPFC 151510: domains against the manual layers (nested)",
            "",
            f"Made by `{command}` ({time.strftime('%Y-%m-%d')}, {platform.machine()} CPU). G: the slide after QC ({G.n_obs} spots, {G.n_vars} genes); "
            f"D(G): the {Dg.n_obs} spots the nested protocol's down-sampling keeps; {int(removed.sum())} of the {Gc.n_obs} scored spots of G removed "
            f"(G's spots that every output reaches). Clusterings: k-means with k = {k} (the manual layers) and Leiden (resolution 1), on the embedding of "
            f"the table (normalize_total, log1p, PCA 30, kNN 15), seed 0. ARI against `obs['layer']` at the {int(ok.sum())} scored spots with a layer, "
            "and at the removed ones alone.",
            "",
            to_markdown(df),
            "",
        ]
        write_section(Path(args.markdown), "layers", "\n".join(md))
    return 0


# --------------------------------------------------------------------------
# docs/downstream.md: one section per part
# --------------------------------------------------------------------------
HEAD = """# Downstream analysis of the enhanced slide (issue 28)

What users do first with an enhanced file (clusters and domains, spatially variable genes, Sepal families and GO:BP)
against the real 2x truth of finer data, and the mixing of measured and new positions on the real slides.
Made by `benchmarks/downstream.py` (its docstring: the cases, outputs and settings); the scores are
`stentrans.tl._downstream` (its docstring: the fixed settings). Each part below rewrites its own section.
"""
PARTS = ("summary", "mixing", "table", "halves", "go", "layers")


def write_section(path: Path, part: str, text: str) -> None:
    """Replace the section of ``part`` in ``path`` (sections are kept in :data:`PARTS` order; others unchanged)."""
    old = path.read_text() if path.exists() else ""
    found = dict(re.findall(r"<!-- part:(\w+) -->\n(.*?)<!-- /part -->\n", old, flags=re.S))
    found[part] = text.rstrip("\n") + "\n"
    head = old.split("<!-- part:", 1)[0] if old else HEAD + "\n"
    body = "".join(f"<!-- part:{p} -->\n{found[p]}<!-- /part -->\n" for p in PARTS if p in found)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(head + body)
    tmp.replace(path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mixing-slides", action="store_true", help="mixing of `stentrans enhance` on the real slides (instead of the table)")
    p.add_argument("--layers", action="store_true", help="DLPFC 151510 layers, nested (instead of the table)")
    p.add_argument("--slides", default=",".join(SLIDES), help="with --mixing-slides: comma list of " + ", ".join(SLIDES))
    p.add_argument("--sets", default=",".join(realtruth.SETS), help="comma list of " + ", ".join(realtruth.SETS))
    p.add_argument("--lattices", default="hex,square")
    p.add_argument("--targets", default="300,1000", help="spot counts aimed at (sets without fixed spacings)")
    p.add_argument("--outputs", default=",".join(OUTPUTS), help="comma list of " + ", ".join(OUTPUTS))
    p.add_argument("--epochs", type=int, default=30, help="epochs of the paper's network")
    p.add_argument("--genes", type=int, default=200)
    p.add_argument("--gene-pixels", type=int, default=300_000)
    p.add_argument("--no-go", dest="go", action="store_false", help="leave out Sepal -> families -> GO:BP")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", default=str(OUT / "downstream.json"))
    p.add_argument("--markdown", default=str(OUT_MD), help="Markdown output ('' for none)")
    p.add_argument("--cache", default=str(OUT / "downstream_cases"), help="folder keeping each case's result ('' for none)")
    p.add_argument("--section", default="table", choices=("table", "go", "halves"), help="the section of --markdown the table goes to (go: a run with more genes for GO:BP; halves: a run with --reference halves)")
    p.add_argument("--reference", default="truth", choices=("truth", "halves"), help="truth: the spots are the truth at the measured positions (the issue's protocol); halves: the spots get binomial half A, the reference is half B everywhere")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for name in ("stentrans", "squidpy", "gseapy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    args.sets = [s for s in args.sets.split(",") if s]
    args.lattices = [s for s in args.lattices.split(",") if s]
    args.targets = [int(t) for t in args.targets.split(",") if t]
    args.outputs = [s for s in args.outputs.split(",") if s]
    args.slides = [s for s in args.slides.split(",") if s]
    command = "python benchmarks/downstream.py" + ("" if argv is None and len(sys.argv) == 1 else " " + " ".join(sys.argv[1:] if argv is None else argv))
    if args.mixing_slides:
        return run_mixing_slides(args, command)
    if args.layers:
        return run_layers(args, command)
    return run_table(args, command)


if __name__ == "__main__":
    raise SystemExit(main())
