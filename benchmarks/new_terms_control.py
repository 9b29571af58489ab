"""Fig. 4's "new GO:BP terms after enhancement", against a control: linear interpolation of the same spots.

    python benchmarks/new_terms_control.py                       # melanoma (HM), robust, 3 seeds
    python benchmarks/new_terms_control.py --method stentrans --epochs 50

The paper reports 79 GO:BP terms enriched only in the enhanced melanoma data.
A denser lattice alone changes the Sepal ranking and the families, so some
"new" terms appear without any model: this measures how many. The melanoma
ST section (../shared/data) after the default QC; the pattern analysis of
:func:`stentrans.tl.patterns` (Sepal ranking, top ``--top`` genes,
families, GO:BP enrichment against ../shared/genesets) on the original data,
on the data enhanced by ``--method`` at ``--seeds`` seeds, and on linear
interpolation of the same spots (:func:`stentrans.tl.control_enhancements`);
new terms of each against the same original families.

Prints the table and writes ``benchmarks/out/new_terms_control.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = Path(os.environ.get("STENTRANS_SHARED", REPO.parent / "shared"))
sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(SHARED / "data" / "melanoma_mel1_rep1.tsv.gz"))
    p.add_argument("--gmt", default=str(SHARED / "genesets" / "GO_BP_human_propagated.gmt"))
    p.add_argument("--method", default="robust")
    p.add_argument("--epochs", type=int, default=None, help="epochs of the paper network (--method stentrans)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--control", default="linear")
    p.add_argument("--top", type=int, default=150)
    p.add_argument("--species", default="human")
    p.add_argument("--out", default=str(HERE / "out" / "new_terms_control.json"))
    args = p.parse_args(argv)
    for path in (args.data, args.gmt):
        if not Path(path).is_file():
            print(f"[skip] {path} not found (see ../shared/README.md)")
            return 0
    import stentrans as st

    t0 = time.perf_counter()
    adata = st.pp.qc(st.read(args.data), min_spot_fraction=0.1)  # the patterns' genes (the authors' 10 %)
    settings = {"epochs": args.epochs} if args.epochs else {}
    runs = st.tl.control_enhancements(adata, args.method, range(args.seeds), control=args.control, device="cpu", **settings)
    enhanced = runs["enhanced"].pop(0)[1]
    layer = "counts" if "counts" in adata.layers else None
    res = st.tl.patterns(adata, enhanced=enhanced, gmt=args.gmt, top=args.top, species=args.species, layer=layer, controls=runs)
    ctl = res["summary"]["new_terms_control"]
    print(f"{'data':<10} {'seeds':<10} {'new terms overall':<20} {'paired':<12}")
    for d, c in ctl.items():
        print(f"{d:<10} {','.join(map(str, c['seeds'])):<10} {','.join(map(str, c['overall'])):<20} {','.join(map(str, c['paired'])):<12}")
    out = {"command": "python benchmarks/new_terms_control.py" + ("" if not (argv or sys.argv[1:]) else " " + " ".join(argv or sys.argv[1:])), "data": args.data, "method": args.method, "epochs": args.epochs, "top": args.top, "n_spots": int(adata.n_obs), "n_genes": int(adata.n_vars), "new_terms_control": ctl, "seconds": round(time.perf_counter() - t0, 1), "stentrans_version": st.__version__}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out} ({out['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
