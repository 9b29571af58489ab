"""Predictive intervals against real truth (issue 29): coverage and width, every real case.

Two tables, both from protocols of :mod:`stentrans.tl._protocols` with
metric ``coverage`` (the intervals of :func:`stentrans.tl.calibrate`,
calibrated from what the method is given and nothing else):

* ``realtruth-coverage``: the four shared finer data sets x both lattices x
  two spot sizes, binned and their truth built as in
  ``benchmarks/realtruth.py`` (same spacings); the default (``robust``) and
  ``linear`` fitted as ``stentrans enhance`` fits them (every gene the
  default QC keeps), scored at the new positions on the genes seen in more
  than 10 % of the spots;
* ``nested-coverage`` on the real slides (melanoma, the Visium mouse slide,
  the prostate strip, DLPFC 151510): calibrated on ``D(G)``, scored at the
  spots ``D`` removed against their measured counts.

Per case: the share of all truth values inside the 90 % interval
(``coverage``), the 5th and 95th percentiles of the per-gene coverage, the
mean width over each gene's 5-95 % range at the measured spots (``width``),
the time calibration took. On STARmap, 30-76 % of the new truth positions are
empty disks (pseudo-spots exist only where a cell centroid falls, so every
measured pseudo-spot holds a cell and the calibration never sees an empty
disk): column ``empty_new`` gives that share, and where it is at least 10 %
``coverage_occupied`` the coverage at the new positions whose disk holds any
count.

``--overhead``: the cost of the intervals, on the Visium mouse slide and a
Visium-HD-sized simulated square grid (``benchmarks/run.py``'s ``sim_hd``,
about 100,000 bins): ``st.tl.enhance`` streamed to an ``.h5ad``
(:func:`stentrans.run.enhance_to`, as ``stentrans enhance -o``) with
``interval=0.9`` and ``interval=0``, each in a child process of its own:
wall and CPU seconds, peak RSS, the calibration's share of the time.

Usage (from the repository root)::

    nice python benchmarks/intervals.py --markdown docs/intervals.md   # both tables (~15 min on 2 cores)
    nice python benchmarks/intervals.py --sets merscope --lattices hex --targets 300 --slides ''   # a quick look
    nice python benchmarks/intervals.py --overhead                   # time and memory of the intervals

Writes ``benchmarks/out/intervals.json`` and, with ``--markdown``, the
Markdown page (``--markdown docs/intervals.md``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
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
from stentrans.report.tables import to_markdown  # noqa: E402

from nested_default import SLIDES as REAL_SLIDES  # noqa: E402
from realtruth import FINER, SETS, find_spacing  # noqa: E402

log = logging.getLogger("intervals")

#: the real slides of the nested table (benchmarks/nested_default.py names every slide of ../shared/data)
SLIDES = {k: REAL_SLIDES[k] for k in ("melanoma", "visium_mouse", "visium_prostate", "dlpfc_151510")}
METHODS = ["robust", "linear"]
#: share of empty new truth positions from which the coverage is also given at the occupied ones only
OCCUPIED_FROM = 0.1
COLUMNS = ["coverage", "coverage_p5", "coverage_p95", "width"]


def _row(res: dict, method: str, **keys) -> dict:
    cs = res["coverage_summary"]
    r = cs[cs["method"] == method].iloc[0]
    t = res["info"]["timings"]
    return {**keys, "method": method, **{c: round(float(r[c]), 4) for c in COLUMNS}, "n_genes": int(r["n_genes"]), "n_positions": int(r["n_spots"]), "calibrate_s": round(t.get(f"calibrate:{method}", float("nan")), 2), "fit_s": round(t.get(f"fit:{method}", float("nan")), 1)}


def realtruth_case(points, name, lattice, spacing, methods, level) -> list[dict]:
    spots, truth = pseudospots(points, lattice, spacing, truth=True)
    a = pp.qc(spots)  # what `stentrans enhance` fits on
    new = truth[truth.obs["is_imputed"].to_numpy()]
    empty = float(np.mean(np.asarray(new.X.sum(axis=1)).ravel() == 0)) if new.n_obs else float("nan")
    t0 = time.perf_counter()
    res = tl.evaluate(a, protocol="realtruth-coverage", methods=methods, seeds=[0], truth=truth, progress=False, interval=level)
    keys = {"set": name, "lattice": lattice, "spacing": float(spacing), "spots": int(a.n_obs), "genes_fitted": int(a.n_vars), "empty_new": round(empty, 3)}
    rows = [_row(res, m, **keys) for m in methods]
    if empty >= OCCUPIED_FROM:
        # the same, scored only at the new positions whose disk holds any count (the measured pseudo-spots all do)
        is_new = truth.obs["is_imputed"].to_numpy()
        occupied = ~is_new | (np.asarray(truth.X.sum(axis=1)).ravel() > 0)
        res_o = tl.evaluate(a, protocol="realtruth-coverage", methods=methods, seeds=[0], truth=truth[occupied].copy(), progress=False, interval=level)
        cs = res_o["coverage_summary"].set_index("method")
        for r in rows:
            r["coverage_occupied"] = round(float(cs.loc[r["method"], "coverage"]), 4)
    log.info("%s %s %g: %s (%.0f s)", name, lattice, spacing, ", ".join(f"{r['method']} {r['coverage']:.3f}/{r['width']:.2f}" for r in rows), time.perf_counter() - t0)
    return rows


def nested_slide(name, path, methods, level) -> list[dict]:
    a = pp.qc(stentrans.read(path))
    t0 = time.perf_counter()
    res = tl.evaluate(a, protocol="nested-coverage", methods=methods, seeds=[0], progress=False, interval=level)
    rows = [_row(res, m, slide=name, spots=int(a.n_obs), genes_fitted=int(a.n_vars)) for m in methods]
    log.info("%s: %s (%.0f s)", name, ", ".join(f"{r['method']} {r['coverage']:.3f}/{r['width']:.2f}" for r in rows), time.perf_counter() - t0)
    return rows


def _cached(key: str, settings: dict, fn, cache: str):
    """``fn()`` (a list of rows), kept in ``cache/key.json`` with its settings so that a rerun resumes."""
    path = Path(cache) / f"{key}.json" if cache else None
    if path is not None and path.exists():
        saved = json.loads(path.read_text())
        if saved["settings"] == settings:
            log.info("%s: from %s", key, path)
            return saved["rows"]
    rows = fn()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"settings": settings, "rows": rows}))
    return rows


def _overhead_child(case: str, interval: float, quick: bool) -> dict:
    """One enhancement in this process (the parent reads wall, CPU and peak RSS): the case's input streamed to an .h5ad."""
    import resource
    import tempfile

    from run import _case_inputs

    from stentrans.run import enhance_to

    a, skip = _case_inputs(case, quick)
    if a is None:
        return {"case": case, "skipped": skip}
    if case != "sim_hd":
        a = pp.qc(a)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        info = enhance_to(a, Path(tmp) / "enhanced.h5ad", interval=interval, progress=False)
        wall = time.perf_counter() - t0
        import anndata as ad

        e = ad.read_h5ad(info["path"], backed="r")
        cal = e.uns["stentrans"].get("interval", {})
        e.file.close()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"case": case, "interval": interval, "spots": int(a.n_obs), "positions": int(info["n_measured"] + info["n_imputed"]), "genes": int(a.n_vars), "enhance_s": round(wall, 1), "cpu_s": round(ru.ru_utime + ru.ru_stime, 1), "peak_rss_gib": round(ru.ru_maxrss / 2**20, 3), "held_out_coverage": cal.get("held_out_coverage")}


def overhead(cases, quick: bool) -> list[dict]:
    import subprocess

    rows = []
    for case in cases:
        for interval in (0.0, 0.9):
            proc = subprocess.run([sys.executable, __file__, "--overhead-child", f"{case}:{interval}"] + (["--quick"] if quick else []), capture_output=True, text=True)
            if proc.returncode != 0:
                rows.append({"case": case, "interval": interval, "error": (proc.stderr.strip().splitlines() or ["?"])[-1]})
            else:
                rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            log.info("%s", rows[-1])
    return rows


def verdicts(rt: pd.DataFrame, nested: pd.DataFrame, level: float) -> list[str]:
    """One line per table: in how many cases the default's coverage is within 0.03 of the level, and its width at most 0.6 of the trivial."""
    lo, hi = level - 0.03, level + 0.03
    out = []
    for label, df in (("real 2x truth, new positions", rt), ("nested, removed spots", nested)):
        d = df[df["method"] == "robust"] if len(df) else df
        if not len(d):
            continue
        line = f"{label}: the default's coverage within {lo:.2f}-{hi:.2f} in {int(d['coverage'].between(lo, hi).sum())} of {len(d)} cases (range {d['coverage'].min():.3f}-{d['coverage'].max():.3f}), width at most 0.6 of the trivial interval in {int((d['width'] <= 0.6).sum())} of {len(d)} (range {d['width'].min():.2f}-{d['width'].max():.2f})"
        if "coverage_occupied" in d and d["coverage_occupied"].notna().any():
            o = d[d["coverage_occupied"].notna()]
            line += f"; where at least 10 % of the new truth positions are empty disks ({len(o)} cases), coverage at the occupied ones {o['coverage_occupied'].min():.3f}-{o['coverage_occupied'].max():.3f}"
        out.append(line)
    return out


def markdown(rt: pd.DataFrame, nested: pd.DataFrame, level: float, command: str) -> str:
    out = [
        "# Predictive intervals against real truth\n",
        "Generated by `benchmarks/intervals.py` (protocols `realtruth-coverage` and `nested-coverage`; how the intervals are made: docs/method.md section 3.2).\n",
        *[f"- {v}" for v in verdicts(rt, nested, level)],
        "",
        "Where coverage misses the level: STARmap's pseudo-spots are binned from cell centroids, so a lattice point is a measured spot only where a centroid falls in its disk and the calibration never sees an empty disk, while 30-76 % of the new truth positions are empty; zeros land inside the intervals and the coverage rises above the level. At the new positions whose disk holds any count (`coverage_occupied`) it is at the level. Linear's intervals (same calibration, held-out spots predicted from the other three cosets of D) cover 0.90-0.99 but are 0.4-2.8 times the trivial width.\n",
        f"Level {level:g}. `coverage`: share of all truth values inside the interval; `coverage_p5`-`coverage_p95`: spread of the per-gene coverage; `width`: mean interval width over each gene's 5-95 % range at the measured spots (the trivial interval); `calibrate_s`: seconds the calibration took. Command: `{command}`.\n",
    ]
    if len(rt):
        out.append("## Real 2x truth, new positions (`realtruth-coverage`)\n\nThe four finer sets x both lattices x two spot sizes, binned as in docs/realtruth.md; fitted as `stentrans enhance` fits (every gene the default QC keeps, `genes_fitted`), scored on the genes seen in more than 10 % of the spots. `empty_new`: share of the new truth positions with no count at all.\n")
        out.append(to_markdown(rt.drop(columns=["fit_s"]), digits=3))
    if len(nested):
        out.append("\n## Real slides, the spots D removed (`nested-coverage`)\n\nCalibrated on D(G) alone, scored against the removed spots' measured counts.\n")
        out.append(to_markdown(nested.drop(columns=["fit_s"]), digits=3))
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sets", default=",".join(SETS))
    p.add_argument("--lattices", default="hex,square")
    p.add_argument("--targets", default="300,1000")
    p.add_argument("--slides", default=",".join(SLIDES), help="real slides under nested-coverage ('' for none)")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--level", type=float, default=0.9)
    p.add_argument("--json", default=str(HERE / "out" / "intervals.json"))
    p.add_argument("--markdown", default="", help="also write the Markdown tables here")
    p.add_argument("--cache", default=str(HERE / "out" / "intervals_cases"), help="folder keeping each case's rows, so that a rerun resumes ('' for none)")
    p.add_argument("--overhead", action="store_true", help="only the time and memory of the intervals (module documentation)")
    p.add_argument("--overhead-cases", default="visium_mouse,sim_hd")
    p.add_argument("--quick", action="store_true", help="--overhead: the small versions of the simulated cases")
    p.add_argument("--overhead-child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.overhead_child:
        case, interval = args.overhead_child.split(":")
        logging.basicConfig(level=logging.WARNING)
        print(json.dumps(_overhead_child(case, float(interval), args.quick)))
        return 0
    if args.overhead:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
        logging.getLogger("stentrans").setLevel(logging.WARNING)
        rows = overhead([c for c in args.overhead_cases.split(",") if c], args.quick)
        df = pd.DataFrame(rows)
        print(df.to_string(index=False))
        out = Path(args.json).with_name("intervals_overhead.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"rows": rows, "quick": args.quick, "cpus": os.cpu_count(), "load": os.getloadavg()[0]}, indent=1))
        if args.markdown:
            Path(args.markdown).write_text("Time and memory of the intervals (`python benchmarks/intervals.py --overhead`):\n\n" + to_markdown(df) + "\n")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("stentrans").setLevel(logging.WARNING)
    methods = [m for m in args.methods.split(",") if m]
    command = "python benchmarks/intervals.py" + ("" if not (argv or sys.argv[1:]) else " " + " ".join(argv if argv is not None else sys.argv[1:]))
    t_all = time.perf_counter()
    settings = {"methods": methods, "level": args.level, "version": stentrans.__version__}
    rt_rows = []
    for name in [s for s in args.sets.split(",") if s]:
        fname, _, fixed = SETS[name]
        if not (FINER / fname).exists():
            log.warning("skipped %s: %s missing", name, FINER / fname)
            continue
        points = read_finer(FINER / fname)
        for lattice in [x for x in args.lattices.split(",") if x]:
            spacings = list(fixed[lattice]) if fixed else [find_spacing(points, lattice, int(t))[0] for t in args.targets.split(",")]
            for spacing in spacings:
                rt_rows += _cached(f"{name}_{lattice}_{spacing:g}", settings, lambda: realtruth_case(points, name, lattice, spacing, methods, args.level), args.cache)
    nested_rows = []
    for name in [s for s in args.slides.split(",") if s]:
        if not SLIDES[name].exists():
            log.warning("skipped %s: %s missing", name, SLIDES[name])
            continue
        nested_rows += _cached(f"nested_{name}", settings, lambda: nested_slide(name, SLIDES[name], methods, args.level), args.cache)
    rt, nested = pd.DataFrame(rt_rows), pd.DataFrame(nested_rows)
    pd.set_option("display.width", 220)
    for df in (rt, nested):
        if len(df):
            print(df.to_string(index=False))
    for line in verdicts(rt, nested, args.level):
        print(line)
    out = {"command": command, "level": args.level, "methods": methods, "realtruth": rt_rows, "nested": nested_rows, "seconds": round(time.perf_counter() - t_all, 1), "stentrans_version": stentrans.__version__}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1))
    if args.markdown:
        Path(args.markdown).write_text(markdown(rt, nested, args.level, command))
    log.info("wrote %s (%.0f s)", args.json, out["seconds"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
