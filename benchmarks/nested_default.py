"""The default against the baselines under ``nested`` on every real slide of ../shared/data, beside the default it replaced.

    python benchmarks/nested_default.py                      # all slides, seeds 0-2 (~15 min on 2 cores)
    python benchmarks/nested_default.py --slides melanoma,MOB1 --seeds 0
    python benchmarks/nested_default.py --slides breast1,breast2,breast3,breast4 --out benchmarks/out/nested_default_breast.json

Protocol ``nested`` (docs/method.md section 5): every method observes
``D(G)`` and predicts the spots ``D`` removed; median per-gene PCC on raw
counts there over the genes seen in more than 10 % of the spots (the
authors' rule, ``st.pp.scored_genes``), mean +/- sd over seeds for the
seeded methods. Every method is fitted on every gene the default QC keeps
(``st.pp.qc``: seen in at least 3 spots), as ``stentrans enhance`` fits. Methods: the
default (``robust``: working scales norm and counts, averaged per gene), the
default before (``robust`` with ``scale="norm"``), and the interpolation
baselines (Linear, Cubic, NN, NEDI; DIST is left out: it is slow on CPU, and
where it ran it scored below the robust variant, README "which variant").

Slides: the melanoma ST set, the Visium mouse slide, the Visium prostate
strip, Visium DLPFC 151510 and the serial ST sections: MOB x4, mouse brain
x8 (``st_series/``) and the four layers of the ST human breast cancer
biopsy (``st_breast_layers/``, Stahl et al. 2016; layer 2 is the paper
reproduction's HBC stand-in; spot ids with decimals, snapped by the ST
reader). Every one is scored on its own (nothing is trained across slides).

Prints the table and writes ``benchmarks/out/nested_default.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("STENTRANS_SHARED", REPO.parent / "shared")) / "data"

SLIDES = {
    "melanoma": SHARED / "melanoma_mel1_rep1.tsv.gz",
    "visium_mouse": SHARED / "visium_mouse_cytassist",
    "visium_prostate": SHARED / "visium_prostate_normal_crop",
    "dlpfc_151510": SHARED / "visium_dlpfc_151510_500genes.h5ad",
    **{f"MOB{i}": SHARED / "st_series" / f"mob_MOB{i}.tsv.gz" for i in range(1, 5)},
    **{f"Hippo{i}": SHARED / "st_series" / f"mouse_brain_Hippo{i}.tsv.gz" for i in range(1, 9)},
    **{f"breast{i}": SHARED / "st_breast_layers" / f"Layer{i}_BC_count_matrix-1.tsv.gz" for i in range(1, 5)},
}
BASELINES = ("linear", "cubic", "nn", "nedi")
#: the default before this one, registered for the run only
BEFORE = "robust-norm"


def main(argv=None) -> int:
    import stentrans as st
    from stentrans.models import registry

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--slides", default=",".join(SLIDES), help="comma list of " + ", ".join(SLIDES))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--out", default=str(HERE / "out" / "nested_default.json"))
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    base = registry.METHODS["robust"]
    registry.METHODS[BEFORE] = registry.Method(BEFORE, "robust, norm only (before)", "#cab2d6", "robust", base.factory, {"scale": "norm"}, seeded=True)
    rows, t_all = [], time.perf_counter()
    for name in [s for s in args.slides.split(",") if s]:
        path = SLIDES[name]
        if not path.exists():
            print(f"[skip] {name}: {path} not found (see ../shared/README.md)")
            continue
        t0 = time.perf_counter()
        a = st.pp.qc(st.read(path))
        scored = st.pp.scored_genes(a)
        res = st.tl.evaluate(a, protocol="nested", methods=["robust", BEFORE, *BASELINES], seeds=seeds, progress=False, device="cpu", score_genes=scored)
        s = res["summary"]
        s = s[s.protocol == "nested"].set_index("method")
        best = max(BASELINES, key=lambda m: s.loc[m, "mean"])
        row = {
            "slide": name,
            "spots": int(a.n_obs),
            "genes": len(scored),
            "genes_fitted": int(a.n_vars),
            "default": float(s.loc["robust", "mean"]),
            "default_sd": float(np.nan_to_num(s.loc["robust", "sd"])),
            "before": float(s.loc[BEFORE, "mean"]),
            "before_sd": float(np.nan_to_num(s.loc[BEFORE, "sd"])),
            **{m: float(s.loc[m, "mean"]) for m in BASELINES},
            "best_baseline": best,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        row["default_wins"] = row["default"] >= row[best]
        rows.append(row)
        print(f"{name:16s} {a.n_obs:5d} spots {len(scored):5d} genes scored of {a.n_vars:5d} fitted  default {row['default']:.3f} +/- {row['default_sd']:.3f}  before {row['before']:.3f}  best baseline {best} {row[best]:.3f}  ({row['seconds']} s)", flush=True)
    table = pd.DataFrame(rows)
    if not table.empty:
        pd.set_option("display.width", 250)
        print(table.round(3).to_string(index=False))
    registry.METHODS.pop(BEFORE, None)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"command": "python benchmarks/nested_default.py" + "".join(" " + x for x in (argv if argv is not None else sys.argv[1:])), "seeds": seeds, "rows": rows, "seconds": round(time.perf_counter() - t_all, 1), "stentrans_version": st.__version__}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
