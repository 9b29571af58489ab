"""Lost spots on real data: detection, the melanoma demo's three positions filled, the ``lost`` protocol.

    python benchmarks/lost.py                          # everything (about an hour on 2 CPU cores)
    python benchmarks/lost.py --skip-eval              # detection and figures only (a minute)
    python benchmarks/lost.py --datasets melanoma --seeds 1

1. Detection (:func:`stentrans.lost.detect`, the ``fill_lost="auto"`` rule)
   on the melanoma ST section, the mouse Visium slide and the prostate strip
   (after the default QC, :func:`stentrans.pp.qc`): the lost positions are
   printed and written to the JSON.
2. Melanoma: the authors' demo adds the positions ``5x10``, ``10x14`` and
   ``15x22`` by hand; they are filled by the users' default method (robust,
   all QC genes) and drawn: ``docs/img/lost_melanoma_slide.png`` (measured,
   lost and new spots) and ``docs/img/lost_melanoma_genes.png`` (gene maps
   before/after).
3. The ``lost`` protocol (:mod:`stentrans.tl._lost_protocol`): per seed 7.5 %
   of the spots, interior and apart, are removed; every method is fitted on
   the rest and predicts them; median over genes of the per-gene PCC over the
   removed spots, per seed, then mean +/- sd over seeds. To bound the runtime
   on shared CPUs only the ``--genes`` genes of highest log1p variance are
   used, the paper network trains ``--epochs`` epochs (not its default 500)
   and DIST ``--dist-epochs``.

Writes ``benchmarks/out/lost.json`` and the Markdown table ``docs/lost.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = Path(os.environ.get("STENTRANS_SHARED", REPO.parent / "shared")) / "data"

DATASETS = {
    "melanoma": ("melanoma_mel1_rep1.tsv.gz", "melanoma ST section (HM mel1 rep1)"),
    "mouse": ("visium_mouse_cytassist", "mouse Visium CytAssist slide"),
    "prostate": ("visium_prostate_normal_crop", "prostate Visium strip (crop)"),
}
#: the positions the authors' melanoma demo adds by hand (ST ids XxY)
AUTHORS_LOST = "5x10,10x14,15x22"
#: genes of the before/after panels (the melanoma markers of docs/measurements.md)
PANEL_GENES = ["MLANA", "PMEL", "COL1A1", "CD74"]
METHODS = ["stentrans", "robust", "dist", "linear", "cubic", "nn", "nedi"]


def _read(name: str):
    import stentrans as st

    path = DATA / DATASETS[name][0]
    if not path.exists():
        return None
    return st.pp.qc(st.read(path), min_spot_fraction=0.1)  # the gene set docs/lost.md was made with (the authors' 10 %)


def detection(adatas: dict) -> dict:
    from stentrans import lost
    from stentrans.grid import to_grid

    out = {}
    for name, a in adatas.items():
        gd = to_grid(a[:, :0])
        found = lost.detect(gd.mask, gd.grid.lattice)
        pos = lost.positions_of(found, gd.grid)
        entry = {"lattice": gd.grid.lattice, "n_spots": int(a.n_obs), "n_lost": int(len(pos)), "lost_row_col": pos.tolist(), "min_neighbours": lost.MIN_NEIGHBOURS[gd.grid.lattice]}
        if gd.grid.lattice == "square":
            entry["lost_st_ids"] = lost.st_ids(pos)
        out[name] = entry
        shown = entry.get("lost_st_ids") or [f"({r}, {c})" for r, c in entry["lost_row_col"]]
        print(f"[detect] {name}: {len(pos)} lost of {a.n_obs} spots ({gd.grid.lattice}, >= {entry['min_neighbours']} measured neighbours): {', '.join(shown)}", flush=True)
    return out


def melanoma_figures(a, img: Path) -> dict:
    import stentrans as st
    from stentrans.pl import RC, save_figure

    t0 = time.perf_counter()
    model = st.tl.train(a, method="robust", seed=0, progress=False)
    enh = st.tl.enhance(a, model=model, fill_lost=AUTHORS_LOST, progress=False)
    auto = st.tl.enhance(a, model=model, fill_lost="auto", progress=False)
    same = sorted(map(tuple, auto.uns["stentrans"]["lost"].tolist())) == sorted(map(tuple, enh.uns["stentrans"]["lost"].tolist()))
    img.mkdir(parents=True, exist_ok=True)
    f1 = st.pl.lost_slide(enh, title="melanoma (ST): the authors' lost positions 5x10, 10x14, 15x22 filled")
    f2 = st.pl.lost_genes(a, enh, PANEL_GENES, title="melanoma: before (measured) and after (robust, 2x) with the lost spots 5x10, 10x14, 15x22 filled (outlined)")
    paths = [save_figure(f, img / stem, formats=("png",), rc=RC)[0] for f, stem in ((f1, "lost_melanoma_slide"), (f2, "lost_melanoma_genes"))]
    st_uns = enh.uns["stentrans"]
    lost_obs = enh.obs[enh.obs["is_lost"]]
    print(f"[figures] melanoma: {st_uns['n_lost']} lost filled ({', '.join(lost_obs.index)}), {st_uns['n_measured']} measured, {st_uns['n_imputed'] - st_uns['n_lost']} new; auto detection = authors' list: {same}; {', '.join(map(str, paths))}", flush=True)
    return {
        "method": "robust",
        "n_measured": int(st_uns["n_measured"]),
        "n_lost": int(st_uns["n_lost"]),
        "n_new": int(st_uns["n_imputed"] - st_uns["n_lost"]),
        "lost_row_col": st_uns["lost"].tolist(),
        "auto_equals_authors": bool(same),
        "figures": [str(p.relative_to(REPO)) if p.is_relative_to(REPO) else str(p) for p in paths],
        "seconds": round(time.perf_counter() - t0, 1),
    }


def evaluate_lost(name: str, a, args) -> dict:
    import numpy as np

    import stentrans as st
    from stentrans.pl import top_variance_genes

    genes = top_variance_genes(a, args.genes)
    sub = a[:, genes].copy()
    t0 = time.perf_counter()
    res = st.tl.evaluate(sub, protocol="lost", methods=args.methods, seeds=args.seeds, settings={"network": {"epochs": args.epochs}, "dist": {"epochs": args.dist_epochs}}, progress=False, dataset=name)
    summ = res["summary"]
    rows = []
    for _, r in summ.iterrows():
        meds = [float(r[c]) for c in summ.columns if str(c).startswith("median_seed")]
        rows.append({"method": r["method"], "score": r["protocol"], "medians": meds, "mean": float(r["mean"]), "sd": float(r["sd"]) if np.isfinite(r["sd"]) else None, "n_genes": int(r["n_genes"]), "n_excluded": int(r["n_excluded"]), "n_spots": int(r["n_spots"])})
        print(f"[lost] {name:9s} {r['protocol']:18s} {r['method']:10s} median PCC per seed {', '.join(f'{m:.3f}' for m in meds)}  mean {r['mean']:.3f} +/- {r['sd']:.3f}  ({int(r['n_spots'])} spots, {int(r['n_genes'])} genes)", flush=True)
    return {"n_spots": int(a.n_obs), "n_genes": int(len(genes)), "seconds": round(time.perf_counter() - t0, 1), "timings": {k: round(v, 1) for k, v in res["info"]["timings"].items()}, "rows": rows}


def _markdown(results: dict, args) -> str:
    from stentrans.models import registry

    st_ = results["settings"]
    cmd = f"python benchmarks/lost.py --seeds {st_['seeds']} --genes {st_['genes']} --epochs {st_['epochs']} --dist-epochs {st_['dist_epochs']}"
    lines = [
        "# Lost spots",
        "",
        "In-tissue lattice positions without a measurement (the paper's \"unexpectedly lost areas\"):",
        "detected and filled by default by `stentrans enhance` (`--fill-lost auto`; `--lost IDS` gives them, `--fill-lost none` leaves them empty; `tl.enhance(fill_lost=...)`),",
        "and scored by the `lost` protocol (docs/method.md sections 3 and 5). Written by",
        f"`{cmd}` ({time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, CPU).",
        "",
        "## Detection (`fill_lost=\"auto\"`)",
        "",
        "Unmeasured lattice positions with at least 3 of 4 (square) or 4 of 6 (hex) measured neighbours and inside the closed outline",
        "of the measured spots (no path of unmeasured positions to beyond the grid: edge notches are not lost), after the default QC.",
        "",
        "| data | lattice | spots | lost | positions (ST ids XxY, or array_row, array_col) |",
        "|---|---|---:|---:|---|",
    ]
    for name, d in results.get("detection", {}).items():
        pos = d.get("lost_st_ids") or [f"({r}, {c})" for r, c in d["lost_row_col"]]
        lines.append(f"| {DATASETS[name][1]} | {d['lattice']} | {d['n_spots']} | {d['n_lost']} | {', '.join(pos)} |")
    fig = results.get("melanoma_figures")
    if fig:
        lines += [
            "",
            "## Melanoma: the authors' three positions",
            "",
            f"The authors' demo adds `5x10`, `10x14`, `15x22` by hand; the automatic detection finds exactly these ({'yes' if fig['auto_equals_authors'] else 'no'}).",
            f"Filled by the default method, `robust`: {fig['n_measured']} measured, {fig['n_lost']} lost and {fig['n_new']} new spots.",
            "",
            "![filled melanoma slide](img/lost_melanoma_slide.png)",
            "",
            "![melanoma genes before/after](img/lost_melanoma_genes.png)",
        ]
    ev = results.get("lost_protocol", {})
    if ev:
        lines += [
            "",
            "## The `lost` protocol",
            "",
            f"Per seed 7.5 % of the spots (interior: all lattice neighbours measured; none next to another) are removed;",
            "every method is fitted on the rest and predicts them. Median over genes of the per-gene PCC over the removed",
            f"spots, mean +/- sd over {len(args.seeds) if isinstance(args.seeds, list) else args.seeds} seeds. Settings bounded for shared CPUs: the {args.genes} genes of highest log1p",
            f"variance; the paper network (stEnTrans) {args.epochs} epochs (its default is 500); DIST {args.dist_epochs} epochs.",
            "",
        ]
        names = [n for n in DATASETS if n in ev]
        lines.append("| method | " + " | ".join(f"{DATASETS[n][1]} ({ev[n]['rows'][0]['n_spots']} holes)" for n in names) + " |")
        lines.append("|---|" + "---:|" * len(names))
        methods = registry.order([r["method"] for n in names for r in ev[n]["rows"]])
        for m in methods:
            cells = []
            for n in names:
                r = next((r for r in ev[n]["rows"] if r["method"] == m and r["score"] == "lost"), None)
                cells.append("" if r is None else f"{r['mean']:.3f} +/- {r['sd'] or 0:.3f}")
            lines.append(f"| {registry.label(m)} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "Seconds per data set (2 shared CPU cores): " + ", ".join(f"{n} {ev[n]['seconds']:.0f} s" for n in names) + ". Per-seed medians, genes scored and excluded: "
            "`benchmarks/out/lost.json`.",
            "",
            "Notes. The methods predict from maps in which a lost position is 0 and outside the mask (as in the authors' demo, which adds the",
            "positions with zero counts). The interpolations and the default method, `robust`, read only the measured neighbours. The paper network",
            "adds its input to every output channel (Res) and, like DIST, never saw a measured target at the position of a zero input while",
            "training on `(D(G), G)`; at a hole both start from 0, and at these epochs their PCC there stays near 0 (not tested at the",
            "paper network's 500 epochs). NEDI fills the holes of the lattice by linear",
            "interpolation before its own step, so at lost positions it equals Linear. Genes whose prediction is constant over the holes",
            "(DIST's clipped zeros) have no PCC and are excluded.",
        ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default=",".join(DATASETS), help="comma list of " + ", ".join(DATASETS))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--genes", type=int, default=300, help="genes of highest log1p variance evaluated")
    p.add_argument("--epochs", type=int, default=30, help="epochs of the paper network")
    p.add_argument("--dist-epochs", type=int, default=5)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--skip-eval", action="store_true", help="detection and figures only")
    p.add_argument("--out", default=str(HERE / "out" / "lost.json"))
    p.add_argument("--md", default=str(REPO / "docs" / "lost.md"))
    p.add_argument("--img", default=str(REPO / "docs" / "img"))
    p.add_argument("--merge", action="store_true", help="keep the other data sets' results of an existing --out (same settings)")
    p.add_argument("--verbose", action="store_true", help="log the evaluation's progress")
    args = p.parse_args(argv)
    if args.verbose:
        import logging

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    out = Path(args.out)
    results: dict = {"settings": {"seeds": args.seeds, "genes": args.genes, "epochs": args.epochs, "dist_epochs": args.dist_epochs, "methods": args.methods}}
    if args.merge and out.exists():
        old = json.loads(out.read_text())
        if old.get("settings") != results["settings"]:
            raise SystemExit(f"--merge: {out} was written with other settings {old.get('settings')}")
        results = old
    adatas = {n: a for n in names if (a := _read(n)) is not None}
    for n in names:
        if n not in adatas:
            print(f"[skip] {n}: {DATA / DATASETS[n][0]} not found", flush=True)
    results.setdefault("detection", {}).update(detection(adatas))
    if "melanoma" in adatas:
        results["melanoma_figures"] = melanoma_figures(adatas["melanoma"], Path(args.img))

    def write():
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1) + "\n")
        Path(args.md).write_text(_markdown(results, args))

    write()
    if not args.skip_eval:
        results.setdefault("lost_protocol", {})
        for n, a in adatas.items():
            results["lost_protocol"][n] = evaluate_lost(n, a, args)
            write()
    print(f"wrote {out} and {args.md}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
