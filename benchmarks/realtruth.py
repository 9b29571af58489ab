"""The real-truth table (issue 17): every method against the truth of finer data at the enhanced positions.

For each of the four shared finer data sets (../shared/data/finer: Slide-seq
beads, MERSCOPE transcripts, STARmap cells, Stereo-seq GEM), both lattices
(Visium-like hex, spot diameter 0.55 x spacing; ST-like square, 0.5 x
spacing) and two spot sizes, the data are binned into pseudo-spots and the
truth at the enhanced positions (:func:`stentrans.io.pseudospots`,
as ``stentrans bin --spacing A --truth TRUTH.h5ad``) and evaluated under
protocol ``realtruth``. Scored: the genes seen in more than 10 % of the spots
(the authors' rule, :data:`stentrans.pp.SCORED_SPOT_FRACTION`), capped to the
most variable (``--genes``, variance of log1p counts). Fitted: the default
(``robust``) on every gene the default QC keeps (:func:`stentrans.pp.qc`:
genes seen in at least 3 spots), as ``stentrans enhance`` fits it, so that
its spot context (library sizes, spot factors) is the users'; the other
methods on the scored genes (the trained ones' cost grows with the genes;
the interpolators see one gene at a time). Evaluated
(:func:`stentrans.tl.evaluate`): median per-gene PCC at the new positions
against the truth's raw counts and log-normalised, the noise ceiling and the
fraction of it, and the denoising score at the measured positions.

Spot sizes: the spacing is searched (a few steps of ``A *= sqrt(n / target)``)
for about ``--targets`` spots (300 and 1,000); the Stereo-seq crop (about 150
um across, 0.5 um DNB pitch) uses fixed spacings of 20 and 40 DNB (10 and 20
um); STARmap's 1,549 cells fill at most about 300-450 spots whatever the
spacing (a lattice point is a spot only where a cell centroid lies in its
disk; finer spacings scatter the spots over a larger, emptier grid and leave
fewer new positions between neighbours), so it uses fixed spacings of 523 and
350 (hex) and 428 and 300 (square) units, two spot sizes at similar counts.

Methods: every method of the paper's Fig. 3 and the default: ``stentrans``
(the paper's network, ``--epochs`` epochs, far below the authors' 500, to
bound the CPU time), ``robust`` (the default of ``stentrans enhance``, its
default settings), ``dist`` (default settings), ``linear``, ``cubic``,
``nn``, ``nedi``; seed 0 (``--seeds``). Runtime is dominated by the paper's
network and DIST (two fits per case: the pseudo-spots, and binomial half A):
DIST trains ``--dist-epochs`` (50; the authors use 200) and the genes are
capped at ``--genes`` (200) and at ``--gene-pixels`` (300,000) genes x grid
pixels (the trained methods' cost grows with both), all to bound the CPU time.

Output: the table printed, ``benchmarks/out/realtruth.json`` (settings,
every case's binning and scores, timings) and ``docs/realtruth.md`` (the
Markdown tables and the command). Each case's result is also kept in
``benchmarks/out/realtruth_cases/`` (``--cache``): a rerun with the same
settings resumes where an interrupted one stopped.

Usage (from the repository root)::

    nice python benchmarks/realtruth.py                       # the full table
    nice python benchmarks/realtruth.py --sets merscope --lattices hex --targets 300 --methods linear,nn   # a quick look
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import stentrans  # noqa: E402
from stentrans import pl, pp, tl  # noqa: E402
from stentrans.grid import grid_of  # noqa: E402
from stentrans.models import registry  # noqa: E402
from stentrans.io import pseudospots  # noqa: E402
from stentrans.io import read_finer  # noqa: E402
from stentrans.report.page import best_baseline, mean_of  # noqa: E402
from stentrans.report.tables import realtruth_table, to_markdown  # noqa: E402

log = logging.getLogger("realtruth")

FINER = Path(os.environ.get("STENTRANS_SHARED", REPO.parent / "shared")) / "data" / "finer"
#: name -> (file, label, fixed spacings by lattice in input units, or None: searched for the targets)
SETS = {
    "slideseq": ("slideseq_cerebellum_beads.tsv.gz", "Slide-seq cerebellum (beads)", None),
    "merscope": ("merscope_mouse_brain_mini_transcripts.csv.gz", "MERSCOPE mouse brain (transcripts)", None),
    "starmap": ("starmap_visp_1020genes_cells.h5ad", "STARmap visual cortex (cells)", {"hex": (523.0, 350.0), "square": (428.0, 300.0)}),
    "stereoseq": ("stereoseq_bin1_crop.gem.gz", "Stereo-seq crop (GEM, DNB)", {"hex": (40.0, 20.0), "square": (40.0, 20.0)}),
}
METHODS = ("stentrans", "robust", "dist", "linear", "cubic", "nn", "nedi")
#: fewest genes the gene-pixel budget leaves
MIN_GENES = 20
#: what the default is fitted on (part of a cached case's settings: results of the earlier fit on the scored genes only are not reused)
FIT_DEFAULT_ON = "every gene of the default QC (as stentrans enhance); scored: the capped genes seen in > 10 % of the spots"
OUT_JSON = REPO / "benchmarks" / "out" / "realtruth.json"
OUT_MD = REPO / "docs" / "realtruth.md"


def _n_spots(points, lattice, spacing) -> int:
    spots, _ = pseudospots(points, lattice, spacing)
    return spots.n_obs


def find_spacing(points, lattice: str, target: int, steps: int = 4) -> tuple[float, int]:
    """A spacing giving about ``target`` spots: ``A *= sqrt(n / target)`` from the bounding box; the closest of ``steps`` tries."""
    lo, hi = points.xy.min(0), points.xy.max(0)
    cell = 1.0 if lattice == "square" else np.sqrt(3) / 2  # area per lattice point, in spacings squared
    A = float(np.sqrt(np.prod(hi - lo) / (target * cell)))
    tries = []
    for _ in range(steps):
        n = _n_spots(points, lattice, A)
        tries.append((abs(np.log(max(n, 1) / target)), A, n))
        if abs(n - target) <= 0.05 * target:
            break
        A *= float(np.sqrt(n / target)) ** 0.9 if n > 0 else 0.5
        A = float(f"{A:.3g}")
    _, A, n = min(tries)
    return A, n


def case_genes(a, genes: int = 200, gene_pixels: int = 300_000) -> list:
    """The genes a case scores: after QC, at most ``genes`` of highest log1p variance and ``gene_pixels`` genes x grid pixels (0: no cap)."""
    n_pixels = int(np.prod(grid_of(a).shape))
    cap = min(genes or a.n_vars, max(MIN_GENES, gene_pixels // n_pixels)) if gene_pixels else (genes or a.n_vars)
    return pl.top_variance_genes(a, cap) if a.n_vars > cap else list(a.var_names)


def run_case(points, name: str, lattice: str, spacing: float, args) -> tuple[pd.DataFrame, dict]:
    spots, truth = pseudospots(points, lattice, spacing, truth=True)
    a = pp.qc(spots, min_spot_fraction=pp.SCORED_SPOT_FRACTION)  # the genes scored come from these
    fit_all = pp.qc(spots)  # what `stentrans enhance` fits on (the default QC)
    n_pixels = int(np.prod(grid_of(a).shape))
    capped = set(case_genes(a, args.genes, args.gene_pixels))
    genes = [g for g in a.var_names if g in capped]  # var order: the same columns in both evaluations below
    b = spots.uns["binning"]
    totals = np.asarray(spots.X.sum(axis=1)).ravel()
    info = {
        "set": name,
        "lattice": lattice,
        "spacing": float(spacing),
        "units": b["units"],
        "spacing_um": b.get("spacing_um"),
        "spot_diameter": b["spot_diameter"],
        "n_spots": int(a.n_obs),
        "n_truth_new": int(truth.obs["is_imputed"].sum()),
        "median_counts_per_spot": float(np.median(totals)),
        "n_genes_qc": int(a.n_vars),
        "n_genes_evaluated": len(genes),
        "n_genes_fitted_default": int(fit_all.n_vars),
        "grid_pixels": n_pixels,
    }
    log.info("%s %s spacing %g: %d spots (median %g counts), %d new truth positions, %d of %d genes", name, lattice, spacing, a.n_obs, info["median_counts_per_spot"], info["n_truth_new"], len(genes), a.n_vars)
    t0 = time.perf_counter()
    kw = dict(protocol="realtruth", seeds=args.seeds, settings={"network": {"epochs": args.epochs}, "dist": {"epochs": args.dist_epochs}}, truth=truth, device=args.device, progress=False, dataset=f"{name} {lattice} {spacing:g}")
    # the default as users call it: fitted on every gene enhance fits on, the capped genes scored
    # (the scored genes' binomial halves and ceilings are drawn as in the other evaluation: the same rows)
    as_users = [m for m in args.methods if registry.get(m).kind == "robust"]
    others = [m for m in args.methods if m not in as_users]
    parts, timings = [], {}
    if others:
        res = tl.evaluate(a, methods=others, genes=genes, **kw)
        parts.append(res["summary"])
        timings.update(res["info"]["timings"])
    if as_users:
        res = tl.evaluate(fit_all, methods=as_users, score_genes=genes, **kw)
        parts.append(res["summary"] if not others else res["summary"][res["summary"]["method"].isin(as_users)])
        timings.update(res["info"]["timings"])
    info["seconds"] = round(time.perf_counter() - t0, 1)
    info["timings"] = {k: round(v, 1) for k, v in timings.items()}
    s = pd.concat(parts, ignore_index=True)
    for col, k in (("spots", "n_spots"), ("spacing", "spacing"), ("lattice", "lattice"), ("set", "set")):
        s.insert(0, col, info[k])
    return s, info


def method_tag(method: str) -> str:
    """Fingerprint of a method's defaults (registry entry, and the robust variant's RobustConfig): a refresh recomputes a cached method once per definition."""
    import hashlib

    from stentrans.models import registry

    entry = registry.get(method)
    d = dict(entry.defaults)
    if entry.kind == "robust":
        from stentrans.models.robust.config import RobustConfig

        d = {**RobustConfig().to_dict(), **d}
    return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _cached_case(points, name: str, lattice: str, spacing: float, args) -> tuple[pd.DataFrame, dict]:
    """:func:`run_case`, its result kept in ``--cache`` (one JSON per case and settings) so that a rerun resumes."""
    settings = {"methods": args.methods, "epochs": args.epochs, "dist_epochs": args.dist_epochs, "genes": args.genes, "gene_pixels": args.gene_pixels, "seeds": args.seeds, "device": args.device, "default_fitted_on": FIT_DEFAULT_ON}
    path = Path(args.cache) / f"{name}_{lattice}_{spacing:g}.json" if args.cache else None
    if path is not None and path.exists():
        saved = json.loads(path.read_text())
        if saved["settings"] == settings:
            s, info = pd.DataFrame(saved["summary"]), saved["info"]
            done = info.get("refreshed", {})
            fresh = [m for m in args.refresh if m in args.methods and not (isinstance(done.get(m), dict) and done[m].get("tag") == method_tag(m))]
            if not fresh:
                log.info("%s %s spacing %g: from %s", name, lattice, spacing, path)
                return s, info
            # recompute these methods only (e.g. after a fix to one of them); the others and the data's own rows stay
            log.info("%s %s spacing %g: from %s, %s recomputed", name, lattice, spacing, path, ", ".join(fresh))
            s_new, info_new = run_case(points, name, lattice, spacing, argparse.Namespace(**{**vars(args), "methods": fresh}))
            s = pd.concat([s[~s["method"].isin(fresh)], s_new[s_new["method"].isin(fresh)]], ignore_index=True)
            info.setdefault("refreshed", {}).update({m: {"tag": method_tag(m), "seconds": info_new["seconds"]} for m in fresh})
            info["timings"].update({k: v for k, v in info_new["timings"].items() if k.split(":", 1)[-1] in fresh})
            path.write_text(json.dumps({"settings": settings, "info": info, "summary": json.loads(s.to_json(orient="records"))}))
            return s, info
    s, info = run_case(points, name, lattice, spacing, args)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"settings": settings, "info": info, "summary": json.loads(s.to_json(orient="records"))}))
    return s, info


def wide(table: pd.DataFrame, value: str, methods) -> pd.DataFrame:
    """One row per case, one column per method (registry labels), plus the ceiling."""
    keys = ["set", "lattice", "spots", "spacing"]
    t = table
    w = t.pivot_table(index=keys, columns="method", values=value, aggfunc="first", sort=False)
    w = w.reindex(columns=[m for m in methods if m in w.columns])
    w.columns = [registry.label(m) for m in w.columns]
    ceil = {"realtruth": "ceiling", "realtruth-log": "ceiling-log"}.get(value)
    if ceil:
        w["ceiling"] = t.groupby(keys, sort=False)[ceil].first()
    if value == "realtruth-denoise":
        w["raw half A"] = t.groupby(keys, sort=False)["raw-half"].first()
    return w.reset_index()


def losses(summary: pd.DataFrame, default: str = registry.DEFAULT_METHOD) -> list[str]:
    """Cases where the default loses to the best baseline (raw-count median PCC at the new positions)."""
    out = []
    for ds, g in summary.groupby("dataset", sort=False):
        dv = mean_of(summary, ds, "realtruth", default)
        bm, bv = best_baseline(summary, ds, "realtruth")
        if bm is not None and dv < bv:
            r = g.iloc[0]
            out.append(f"{r['set']} {r['lattice']}, {r['spots']} spots: {registry.label(default)} {dv:.3f} < {registry.label(bm)} {bv:.3f}")
    return out


def markdown(table: pd.DataFrame, summary: pd.DataFrame, infos: list[dict], args, command: str) -> str:
    methods = [m for m in registry.order(table["method"].unique())]
    sets = ", ".join(SETS[s][1] for s in args.sets)
    lost = losses(summary)
    n_cases = table.groupby(["set", "lattice", "spots"]).ngroups
    head = [
        "# Real 2x truth from finer technologies",
        "",
        f"Made by `{command}` ({time.strftime('%Y-%m-%d')}, {platform.machine()} CPU, stentrans {stentrans.__version__}).",
        "",
        f"Data: {sets} (../shared/data/finer), binned into pseudo-spots on a Visium-like hex lattice (spot diameter 0.55 x spacing) "
        "and an ST-like square lattice (0.5 x spacing), at two spot sizes each (about 300 and 1,000 spots where the data allow; "
        "Stereo-seq at spacings of 20 and 40 DNB = 10 and 20 um; STARmap's 1,549 cells fill at most about 300-450 spots, so its two sizes "
        "are two spot diameters at similar spot counts), with the truth at every "
        "enhanced-lattice position in tissue (`stentrans bin --truth`). Protocol `realtruth` (docs/method.md section 6): every method "
        "is fitted on the measured pseudo-spots only and predicts the enhanced lattice; median over genes of the per-gene PCC at the "
        "new positions against the truth's raw counts (`realtruth`) and log-normalised (`realtruth-log`: log1p of counts scaled to the "
        "median library size of the truth positions, prediction clipped at 0 and truth alike); the noise ceiling (binomial halves of the "
        "truth's counts, Spearman-Brown corrected) and each method's fraction of it; at the measured positions, methods fitted on a "
        "binomial half A of the counts scored against the other half B (`realtruth-denoise`) beside half A itself.",
        "",
        f"Genes scored: those seen in more than 10 % of the spots, capped to the {args.genes} most variable "
        f"(variance of log1p counts) and to at most {args.gene_pixels:,} genes x grid pixels (column n_genes_evaluated), the same for every method. "
        "Genes fitted: the default (stEnTrans robust) as users run it, on every gene `stentrans enhance` fits on (the default QC: "
        "seen in at least 3 spots; column n_genes_fitted_default), so its library sizes and spot factors come from all of them; "
        "the other methods on the scored genes (to bound the CPU time: the trained ones' cost grows with the genes; the interpolators "
        f"see one gene at a time). The paper's network (stEnTrans) trained {args.epochs} epochs (the authors use 500), seed(s) "
        f"{', '.join(map(str, args.seeds))}; DIST trained {args.dist_epochs} epochs (the authors use 200); the robust default and the "
        "interpolators at their default settings. "
        "Predictions are scored as the methods return them (`stentrans enhance` would clip negative values at 0).",
        "",
    ]
    if lost:
        head += [
            f"**The default ({registry.label(registry.DEFAULT_METHOD)}) loses to the best baseline in {len(lost)} of {n_cases} cases** "
            "(raw counts, new positions):",
            "",
        ] + [f"- {x}" for x in lost] + [""]
    else:
        head += [f"The default ({registry.label(registry.DEFAULT_METHOD)}) matches or beats every baseline in all {n_cases} cases (raw counts, new positions).", ""]
    body = [
        "## Median per-gene PCC at the new positions, raw counts",
        "",
        to_markdown(wide(table, "realtruth", methods)),
        "## Fraction of the noise ceiling (raw counts)",
        "",
        to_markdown(wide(table, "fraction", methods)),
        "## Median per-gene PCC at the new positions, log-normalised",
        "",
        to_markdown(wide(table, "realtruth-log", methods)),
        "## Denoising: fitted on binomial half A, scored against half B at the measured positions",
        "",
        "Interpolators (and any method that keeps the measured values) score exactly raw half A here; the default method, `robust`, returns "
        "its own estimate at the measured spots for this score (`keep_measured=False`). The robust rows are recomputed with `--refresh robust` "
        "whenever the method's defaults change. Where the robust estimate scores below raw half A, the method "
        "smooths away signal that the counts alone carry: on STARmap and Stereo-seq (hundreds of counts per spot) at every size, and on "
        "Slide-seq at the finer spacing.",
        "",
        to_markdown(wide(table, "realtruth-denoise", methods)),
        "## Cases",
        "",
        to_markdown(pd.DataFrame(infos)[["set", "lattice", "spacing", "units", "spacing_um", "spot_diameter", "n_spots", "median_counts_per_spot", "n_truth_new", "n_genes_qc", "n_genes_evaluated", "n_genes_fitted_default", "grid_pixels", "seconds"]]),
    ]
    return "\n".join(head + body)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sets", default=",".join(SETS), help="comma list of " + ", ".join(SETS))
    p.add_argument("--lattices", default="hex,square")
    p.add_argument("--targets", default="300,1000", help="spot counts aimed at (sets without fixed spacings)")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--epochs", type=int, default=30, help="epochs of the paper's network")
    p.add_argument("--dist-epochs", type=int, default=50, help="epochs of DIST (the authors use 200)")
    p.add_argument("--genes", type=int, default=200, help="cap: the most variable genes (0: all after QC)")
    p.add_argument("--gene-pixels", type=int, default=300_000, help="and at most this many genes x grid pixels (the trained methods' cost; 0: no limit)")
    p.add_argument("--seeds", default="0")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", default=str(OUT_JSON))
    p.add_argument("--markdown", default=str(OUT_MD), help="Markdown output ('' for none)")
    p.add_argument("--cache", default=str(OUT_JSON.parent / "realtruth_cases"), help="folder keeping each case's result, so that a rerun resumes ('' for none)")
    p.add_argument("--calibrate", action="store_true", help="only find and print the spacings and spot counts")
    p.add_argument("--refresh", default="", help="comma list of methods recomputed in cached cases (once per case and definition of the method: its defaults' fingerprint; e.g. after a fix to one method)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("stentrans").setLevel(logging.WARNING)
    args.sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    args.refresh = [m.strip() for m in args.refresh.split(",") if m.strip()]
    args.seeds = [int(s) for s in args.seeds.split(",")]
    lattices = [x.strip() for x in args.lattices.split(",") if x.strip()]
    targets = [int(t) for t in args.targets.split(",")]
    command = "python benchmarks/realtruth.py" + ("" if argv is None and len(sys.argv) == 1 else " " + " ".join(sys.argv[1:] if argv is None else argv))
    summaries, infos = [], []
    t_all = time.perf_counter()
    for name in args.sets:
        fname, _, fixed = SETS[name]
        points = read_finer(FINER / fname)
        for lattice in lattices:
            spacings = list(fixed[lattice]) if fixed else [find_spacing(points, lattice, t)[0] for t in targets]
            if args.calibrate:
                print(name, lattice, [(a, _n_spots(points, lattice, a)) for a in spacings], flush=True)
                continue
            for spacing in spacings:
                s, info = _cached_case(points, name, lattice, spacing, args)
                summaries.append(s)
                infos.append(info)
                log.info("%s %s %d spots done in %.0f s", name, lattice, info["n_spots"], info["seconds"])
    if args.calibrate:
        return 0
    summary = pd.concat(summaries, ignore_index=True)
    table = realtruth_table(summary, keys=["set", "lattice", "spacing", "spots"])
    pd.set_option("display.width", 200)
    print(table.round(3).to_string(index=False))
    for line in losses(summary):
        print("default loses:", line)
    out = {
        "command": command,
        "settings": {"methods": args.methods, "epochs": args.epochs, "dist_epochs": args.dist_epochs, "genes": args.genes, "gene_pixels": args.gene_pixels, "seeds": args.seeds, "lattices": lattices, "targets": targets, "device": args.device},
        "cases": infos,
        "table": json.loads(table.to_json(orient="records")),
        "summary": json.loads(summary.to_json(orient="records")),
        "default_loses": losses(summary),
        "seconds": round(time.perf_counter() - t_all, 1),
        "stentrans_version": stentrans.__version__,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1))
    if args.markdown:
        Path(args.markdown).write_text(markdown(table, summary, infos, args, command))
    log.info("wrote %s%s (%.0f s)", args.json, f", {args.markdown}" if args.markdown else "", out["seconds"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
