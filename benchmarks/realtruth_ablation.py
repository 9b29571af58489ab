"""The robust variant's pieces against real 2x truth: each setting changed alone, on every case of the real-truth table.

    python benchmarks/realtruth_ablation.py                    # all cases of benchmarks/out/realtruth.json (~5 min)
    python benchmarks/realtruth_ablation.py --sets starmap

The cases (set, lattice, spacing) are those of ``benchmarks/realtruth.py``
(run it first: its JSON lists them), with the same genes scored (seen in
more than 10 % of the spots, at most 200 of highest log1p variance and
300,000 genes x grid pixels) and, as there, every variant fitted on every
gene the default QC keeps (seen in at least 3 spots), as ``stentrans
enhance`` fits. Per case and
variant: protocol ``realtruth`` (median per-gene PCC at the new positions,
raw counts), the denoising score at the measured spots (the robust estimate
there against an independent binomial half, beside the half itself), and
the self-supervised score with which the variant chose its rank and
bandwidth inside the data (the 2a -> a task), to see whether that choice
transfers to the real a -> a/2 task. Linear interpolation beside.

Prints the table and writes ``benchmarks/out/realtruth_ablation.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import realtruth as RT  # noqa: E402

#: variant -> settings of the robust method changed from its defaults
VARIANTS = {
    "default (norm+counts)": {},
    "norm only (the default before)": {"scale": "norm"},
    "counts only": {"scale": "counts"},
    "log scale (scale lognorm)": {"scale": "lognorm"},
    "rank 0 (no sharing across genes)": {"rank": 0},
    "bandwidth fixed at 0.5": {"sigma": 0.5},
    "bandwidth grid from 0.25": {"sigma_grid": (0.25, 0.35, 0.5, 0.75, 1.0, 1.25)},
}


def main(argv=None) -> int:
    from stentrans import pp, tl
    from stentrans.io import pseudospots
    from stentrans.io import read_finer

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", default=str(RT.OUT_JSON), help="JSON of benchmarks/realtruth.py listing the cases")
    p.add_argument("--sets", default="", help="comma list of sets (default: all in --cases)")
    p.add_argument("--out", default=str(HERE / "out" / "realtruth_ablation.json"))
    args = p.parse_args(argv)
    if not Path(args.cases).is_file():
        print(f"[skip] {args.cases} not found: run python benchmarks/realtruth.py first")
        return 0
    cases = json.loads(Path(args.cases).read_text())["cases"]
    sets = [s for s in args.sets.split(",") if s] or list(dict.fromkeys(c["set"] for c in cases))
    rows, points = [], {}
    t_all = time.perf_counter()
    for c in cases:
        name = c["set"]
        if name not in sets:
            continue
        if name not in points:
            points[name] = read_finer(RT.FINER / RT.SETS[name][0])
        spots, truth = pseudospots(points[name], c["lattice"], c["spacing"], truth=True)
        a10 = pp.qc(spots, min_spot_fraction=pp.SCORED_SPOT_FRACTION)
        capped = set(RT.case_genes(a10))  # the cases' scored genes of benchmarks/realtruth.py
        genes = [g for g in a10.var_names if g in capped]
        a = pp.qc(spots)  # fitted on what enhance fits on
        for variant, settings in VARIANTS.items():
            methods = ["robust", "linear"] if not settings else ["robust"]
            res = tl.evaluate(a, protocol="realtruth", methods=methods, seeds=[0], truth=truth, score_genes=genes, progress=False, settings={"robust": settings}, device="cpu")
            s = res["summary"].set_index(["protocol", "method"])["mean"]
            fit = tl.train(a, method="robust", progress=False, device="cpu", **settings)
            sel = fit.provenance().get("selection") or []
            row = {
                "set": name, "lattice": c["lattice"], "spacing": c["spacing"], "spots": c["n_spots"], "counts_per_spot": c["median_counts_per_spot"], "variant": variant,
                "realtruth": float(s[("realtruth", "robust")]), "denoise": float(s[("realtruth-denoise", "robust")]), "raw_half": float(s[("realtruth-denoise", "raw-half")]),
                "self_supervised": max((d["median_pcc"] for d in sel), default=float("nan")),
                "linear": float(s[("realtruth", "linear")]) if not settings else float("nan"),
            }
            rows.append(row)
            print(f"{name:10s} {c['lattice']:6s} {c['spacing']:7g} {variant:34s} realtruth {row['realtruth']:.3f}  denoise {row['denoise']:.3f} (raw half {row['raw_half']:.3f})  self-supervised {row['self_supervised']:.3f}", flush=True)
    table = pd.DataFrame(rows)
    wide = table.pivot_table(index=["set", "lattice", "spacing"], columns="variant", values="realtruth", sort=False)
    pd.set_option("display.width", 250)
    print(wide.round(3).to_string())
    print("mean over cases:", table.groupby("variant", sort=False)["realtruth"].mean().round(4).to_dict())
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"command": "python benchmarks/realtruth_ablation.py" + "".join(" " + x for x in (argv if argv is not None else sys.argv[1:])), "rows": rows, "seconds": round(time.perf_counter() - t_all, 1)}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
