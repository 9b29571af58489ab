"""Ablation of the robust variant under the ``nested`` protocol (issue 11).

Which change buys what, on spots no method ever saw: the observed data is
``D(G)`` (mask ``D(M)``); every method gets exactly ``D(G)``; every model is
fitted on ``D(G)`` only (self-supervised pairs ``(D(D(G)), D(G))`` and
augmentations derived from ``D(G)``); per-gene PCC on raw counts over the
spots ``D`` removed (``M & ~kept_mask(M)``), median over genes; mean +/- sd
over seeds. On simulated data the same predictions are also scored against
the simulator's expected expression at those spots (``nested-mean``), and a
``truth`` protocol fits on ``G`` and scores the new positions of the doubled
grid against the simulator's 2x truth (``truth``: expected expression).

Methods
-------
Baselines (``stentrans.models.baselines.upsample``, same input, same positions):
``linear``, ``cubic``, ``nn``, ``nedi``, ``dist`` (seeded; optional, slow).
``paper``: the paper-faithful stEnTrans (``stentrans.models.paper.train.fit``, authors'
settings, ``--paper-epochs``). ``robust``: :func:`stentrans.models.robust.fit.fit_robust`
with the default :class:`~stentrans.models.robust.config.RobustConfig`, and one-change
ablations of it (``ROWS``).

Output: a printed table per dataset and protocol, JSON (summary, per-seed
medians, paired Wilcoxon tests across genes of ``robust`` vs the best
baseline and vs ``paper``, settings, timings), and a per-gene TSV.

Usage (from the repository root; ``--quick`` for a smoke run)::

    nice python benchmarks/robust_ablation.py                     # all datasets, 5 seeds
    nice python benchmarks/robust_ablation.py --datasets melanoma --merge  # re-tabulate saved runs
    nice python benchmarks/robust_ablation.py --datasets melanoma --seeds 0,1 --quick
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stentrans.metrics import pcc  # noqa: E402
from stentrans.lattice import downsample, kept_mask  # noqa: E402
from stentrans.models.robust.config import RobustConfig
from stentrans.models.robust.fit import fit_robust

log = logging.getLogger("robust_ablation")

SHARED = Path(os.environ.get("STENTRANS_SHARED", REPO.parent / "shared")) / "data"
DATASETS = {
    "melanoma": SHARED / "melanoma_mel1_rep1.tsv.gz",
    "visium_mouse": SHARED / "visium_mouse_cytassist",
    "visium_prostate": SHARED / "visium_prostate_normal_crop",
    "sim_square": ("square", 0),
    "sim_hex": ("hex", 0),
}
BASELINES = ("linear", "cubic", "nn", "nedi", "dist")

#: robust rows: (name, RobustConfig overrides, uses the network, label)
ROWS = [
    ("robust", {}, "default: norm scale + library interp. + spot factors {0,GD} + NC base, rank/sigma by self-supervision"),
    ("robust-counts", {"scale": "counts"}, "raw-count scale (no library normalisation)"),
    ("robust-lognorm", {"scale": "lognorm"}, "log1p-normalised scale"),
    ("robust-rank0", {"rank": 0}, "no sharing across genes (rank 0)"),
    ("robust-rankGD", {"rank": "gd"}, "rank always the Gavish-Donoho rank (no self-supervised choice of 0)"),
    ("robust-sigma0.75", {"sigma": 0.75}, "fixed bandwidth 0.75 spacings (a priori)"),
    ("robust+net", {"net": True}, "default + transformer correction (augmented pairs, no Pos, NC base)"),
    ("robust+net-noaug", {"net": True, "phases": False, "flips": False}, "+net without phase/flip augmentation"),
    ("robust+net-pos", {"net": True, "pos": "absolute"}, "+net with the paper's absolute Pos"),
    ("robust+net-nnbase", {"net": True, "base": "nn"}, "+net added to nearest-neighbour copies (paper's Res)"),
]
NET_ABLATIONS = {"robust+net-noaug", "robust+net-pos", "robust+net-nnbase"}


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------
def load(name: str, min_spot_fraction: float, sim_genes: int):
    import stentrans as st

    src = DATASETS[name]
    if isinstance(src, tuple):
        from stentrans.datasets import simulate

        ad = simulate(src[0], n_genes=sim_genes, seed=src[1], size="st")
    else:
        if not Path(src).exists():
            raise FileNotFoundError(f"{src} (see ../shared/README.md)")
        ad = st.read(src)
    return st.pp.qc(ad, min_spot_fraction=min_spot_fraction)


class Task:
    """Inputs, positions and truths of one protocol on one dataset."""

    def __init__(self, name, protocol, maps_in, mask_in, lattice, P, Q, truths, out_shape, genes):
        self.name, self.protocol = name, protocol
        self.maps_in, self.mask_in, self.lattice = maps_in, mask_in, lattice
        self.P, self.Q = P, Q  # positions on the doubled grid of the input (cropped to out_shape)
        self.truths = truths  # {score name: (n_pos, n_genes)}
        self.out_shape = out_shape
        self.genes = genes


def nested_task(ad, gene_idx=None) -> Task:
    from stentrans.grid import to_grid

    gd = to_grid(ad)
    G, M, lat = gd.maps, gd.mask, gd.grid.lattice
    if gene_idx is not None:
        G = G[gene_idx]
    DG, DM = downsample(G * M, M, lat)
    R = M & ~kept_mask(M, lat)
    P, Q = np.nonzero(R)
    truths = {"nested": G[:, P, Q].T.astype(np.float64)}
    tr = ad.uns.get("truth")
    if isinstance(tr, dict) and "mean" in tr:  # expected expression at the removed spots
        key = {(float(r), float(c)): i for i, (r, c) in enumerate(zip(tr["array_row"], tr["array_col"]))}
        rr, cc = gd.grid.coords(P, Q)
        rows = np.array([key.get((float(a), float(b)), -1) for a, b in zip(rr, cc)])
        if (rows >= 0).all():
            cols = np.arange(G.shape[0]) if gene_idx is None else np.asarray(gene_idx)
            names = np.asarray(ad.var_names).astype(str)
            sim_cols = np.array([int(g[5:]) for g in names[cols]]) if all(g.startswith("gene_") for g in names) else cols
            truths["nested-mean"] = np.asarray(tr["mean"])[rows][:, sim_cols].astype(np.float64)
    genes = np.asarray(gd.genes).astype(str) if gene_idx is None else np.asarray(gd.genes).astype(str)[gene_idx]
    return Task(None, "nested", DG, DM, lat, P, Q, truths, G.shape[1:], genes)


def truth_task(ad) -> Task:
    from stentrans.tl import ProtocolData as _Data  # same positions as the package's own 'truth' protocol

    d = _Data(ad, None, None)
    Pf, Qf, mean, counts = d.fine()
    truths = {"truth": mean}
    if counts is not None:
        truths["truth-counts"] = counts
    return Task(None, "truth", d.G, d.M, d.lattice, Pf, Qf, truths, (2 * d.G.shape[1], 2 * d.G.shape[2]), d.genes)


# ---------------------------------------------------------------------------
# methods
# ---------------------------------------------------------------------------
def _crop_at(hr, task: Task):
    hr = hr[:, : task.out_shape[0], : task.out_shape[1]]
    return hr[:, task.P, task.Q].T.astype(np.float64)


def run_baseline(method, task: Task, seed, dist_epochs):
    from stentrans.models.baselines import dispatch as bl

    want = np.zeros((2 * task.mask_in.shape[0], 2 * task.mask_in.shape[1]), dtype=bool)
    want[task.P, task.Q] = True
    kw = {"epochs": dist_epochs, "seed": int(seed), "device": "cpu"} if method == "dist" else {}
    return _crop_at(bl.upsample(task.maps_in, task.mask_in, task.lattice, method, out_mask=want, **kw), task)


def run_paper(task: Task, seed, epochs):
    from stentrans.models.paper.config import TrainConfig
    from stentrans.models.paper.tiles import predict
    from stentrans.models.paper.train import fit

    res = fit(task.maps_in, task.mask_in, task.lattice, train_config=TrainConfig(epochs=epochs, seed=int(seed)), device="cpu", progress=False)
    return _crop_at(predict(res.model, task.maps_in * task.mask_in), task), {"final_loss": res.final_loss}


def run_robust(overrides, task: Task, seed, net_epochs):
    from stentrans.models.robust.context import spot_context

    kw = dict(overrides)
    if kw.get("rank") == "gd":
        kw["rank"] = spot_context(task.maps_in, task.mask_in, RobustConfig(rank="auto")).rank
    if kw.get("net") and net_epochs is not None:
        kw["epochs"] = net_epochs
    cfg = RobustConfig(seed=int(seed), **kw)
    res = fit_robust(task.maps_in, task.mask_in, task.lattice, cfg, device="cpu", progress=False)
    info = {"rank": int(res.config.rank), "sigma": float(res.config.sigma), "best_epoch": int(res.best_epoch), "epochs_run": int(res.epochs_run)}
    if res.history:
        info["val_epoch0"] = float(res.history[0]["val"])
        info["val_best"] = float(np.nanmax([h["val"] for h in res.history]))
    return _crop_at(res.predict(task.maps_in, task.mask_in), task), info


# ---------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------
def evaluate_dataset(name, args) -> tuple[pd.DataFrame, list[dict]]:
    ad = load(name, args.min_spot_fraction, args.sim_genes)
    gene_idx = None
    if args.max_genes and ad.n_vars > args.max_genes:
        gene_idx = np.sort(np.random.default_rng(12345).choice(ad.n_vars, args.max_genes, replace=False))
    tasks = [nested_task(ad, gene_idx)]
    if "truth" in ad.uns and args.truth:
        tasks.append(truth_task(ad))
    heavy = name in args.heavy
    seeds = args.seeds
    frames, runs = [], []
    for task in tasks:
        log.info("%s %s: %d genes, input %d spots, %d scored positions", name, task.protocol, len(task.genes), int(task.mask_in.sum()), len(task.P))
        methods = []
        for b in BASELINES:
            if b == "dist" and (not args.dist or heavy):
                continue
            methods.append(("baseline", b, {}))
        if args.paper:
            methods.append(("paper", "paper", {}))
        for row, ov, _ in ROWS:
            if row in args.skip_rows or (row in NET_ABLATIONS and (heavy or task.protocol != "nested")):
                continue
            methods.append(("robust", row, ov))
        cache = {}
        for kind, method, ov in methods:
            seeded = kind == "paper" or method == "dist" or kind == "robust"
            mseeds = seeds
            if seeded and heavy and (kind == "paper" or ov.get("net")):
                mseeds = seeds[: args.heavy_seeds]
            if method == "dist":
                mseeds = seeds[: args.dist_seeds]
            for seed in mseeds:
                key = (method, seed if seeded else None)
                t0 = time.perf_counter()
                info = {}
                if key in cache:
                    vals = cache[key]
                elif kind == "baseline":
                    vals = run_baseline(method, task, seed, args.dist_epochs)
                elif kind == "paper":
                    vals, info = run_paper(task, seed, args.paper_epochs_heavy if heavy else args.paper_epochs)
                else:
                    vals, info = run_robust(ov, task, seed, args.net_epochs)
                cache[key] = vals
                secs = time.perf_counter() - t0
                for score, truth in task.truths.items():
                    r = pcc(vals, truth)
                    frames.append(pd.DataFrame({"dataset": name, "protocol": score, "method": method, "seed": seed, "gene": task.genes, "pcc": r}))
                    med = float(np.nanmedian(r)) if np.isfinite(r).any() else float("nan")
                    runs.append({"dataset": name, "protocol": score, "method": method, "seed": int(seed), "median_pcc": med, "n_genes": int(np.isfinite(r).sum()), "n_excluded": int(np.isnan(r).sum()), "n_spots": int(len(task.P)), "seconds": secs, **info})
                    log.info("%-16s %-13s %-20s seed %d: median %.4f (%.1f s) %s", name, score, method, seed, med, secs, info or "")
                if not seeded:  # deterministic: the other seeds reuse the values
                    for s2 in mseeds[1:]:
                        for score, truth in task.truths.items():
                            r = pcc(vals, truth)
                            frames.append(pd.DataFrame({"dataset": name, "protocol": score, "method": method, "seed": s2, "gene": task.genes, "pcc": r}))
                            runs.append({**[x for x in runs if x["method"] == method and x["protocol"] == score and x["dataset"] == name][-1], "seed": int(s2), "seconds": 0.0})
                    break
    return pd.concat(frames, ignore_index=True), runs


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    g = runs.groupby(["dataset", "protocol", "method"], sort=False)
    out = g["median_pcc"].agg(["mean", "std", "count"]).rename(columns={"count": "n_seeds"}).reset_index()
    out["std"] = out["std"].fillna(0.0)
    out["n_genes"] = g["n_genes"].mean().round().astype(int).values
    out["n_excluded"] = g["n_excluded"].mean().round().astype(int).values
    out["seconds"] = g["seconds"].sum().values
    return out


def paired_tests(per_gene: pd.DataFrame, summary: pd.DataFrame, default="robust") -> list[dict]:
    """Wilcoxon signed-rank (two-sided) across genes: per-gene PCC averaged over seeds.

    ``robust`` against the best baseline (highest mean median), linear
    interpolation, and the paper model; genes without a PCC in either are dropped.
    """
    from scipy.stats import wilcoxon

    tests = []
    for (ds, proto), sub in per_gene.groupby(["dataset", "protocol"], sort=False):
        s = summary[(summary.dataset == ds) & (summary.protocol == proto)].set_index("method")["mean"]
        base = [m for m in BASELINES if m in s.index]
        if default not in s.index or not base:
            continue
        best = max(base, key=lambda m: s[m])
        wide = sub.groupby(["gene", "method"])["pcc"].mean().unstack()
        others = [best] + (["linear"] if best != "linear" and "linear" in wide.columns else []) + (["paper"] if "paper" in wide.columns else [])
        for other in others:
            pair = wide[[default, other]].dropna()
            d = pair[default] - pair[other]
            res = wilcoxon(pair[default], pair[other]) if (d != 0).any() else None
            tests.append({
                "dataset": ds, "protocol": proto, "method": default, "versus": other, "versus_is_best_baseline": other == best,
                "n_genes": int(len(pair)), "median_of_differences": float(d.median()), "fraction_genes_better": float((d > 0).mean()),
                "median_pcc_method": float(pair[default].median()), "median_pcc_versus": float(pair[other].median()),
                "wilcoxon_statistic": float(res.statistic) if res else float("nan"), "p_value": float(res.pvalue) if res else 1.0,
            })
    return tests


def table(summary: pd.DataFrame) -> str:
    order = list(BASELINES) + ["paper"] + [r[0] for r in ROWS]
    lines = []
    for (ds, proto), sub in summary.groupby(["dataset", "protocol"], sort=False):
        sub = sub.set_index("method")
        lines.append(f"\n{ds} / {proto}")
        lines.append(f"  {'method':<20} {'median PCC':>17}  seeds  genes")
        for m in order:
            if m in sub.index:
                r = sub.loc[m]
                lines.append(f"  {m:<20} {r['mean']:>8.4f} +/- {r['std']:.4f}  {int(r['n_seeds']):>5}  {int(r['n_genes']):>5}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated: " + ", ".join(DATASETS))
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--out", default="benchmarks/out/robust_ablation", help="output folder (JSON, TSV, table)")
    p.add_argument("--paper-epochs", type=int, default=30)
    p.add_argument("--paper-epochs-heavy", type=int, default=10, help="paper epochs on --heavy datasets")
    p.add_argument("--heavy", default="visium_mouse", help="datasets where the slow seeded rows run fewer seeds/epochs")
    p.add_argument("--heavy-seeds", type=int, default=2)
    p.add_argument("--net-epochs", type=int, default=None, help="override RobustConfig.epochs for +net rows")
    p.add_argument("--no-paper", dest="paper", action="store_false")
    p.add_argument("--dist", action="store_true", help="include DIST (slow on CPU)")
    p.add_argument("--dist-epochs", type=int, default=20)
    p.add_argument("--dist-seeds", type=int, default=1)
    p.add_argument("--no-truth", dest="truth", action="store_false", help="skip the simulated 2x-truth protocol")
    p.add_argument("--skip-rows", default="", help="comma-separated robust rows to skip")
    p.add_argument("--max-genes", type=int, default=0, help="random gene subset (0: all genes)")
    p.add_argument("--sim-genes", type=int, default=400)
    p.add_argument("--min-spot-fraction", type=float, default=0.1)
    p.add_argument("--merge", action="store_true", help="no new runs: tabulate the per-dataset files already in --out")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 paper epochs, 3 net epochs, 300 genes")
    args = p.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.heavy = {s for s in args.heavy.split(",") if s}
    args.skip_rows = {s for s in args.skip_rows.split(",") if s}
    if args.quick:
        args.paper_epochs, args.paper_epochs_heavy, args.net_epochs = 2, 1, 3
        args.max_genes = args.max_genes or 300
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for noisy in ("stentrans", "stentrans.robust", "stentrans.baselines", "stentrans.train"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    per_gene, runs = [], []
    t0 = time.perf_counter()
    for name in [d for d in args.datasets.split(",") if d]:
        if args.merge:
            if (out / f"runs_{name}.json").is_file():
                runs += json.loads((out / f"runs_{name}.json").read_text())
                per_gene.append(pd.read_csv(out / f"per_gene_{name}.tsv.gz", sep="\t"))
            continue
        try:
            pg, rr = evaluate_dataset(name, args)
        except FileNotFoundError as err:
            log.warning("skipping %s: %s", name, err)
            continue
        per_gene.append(pg)
        runs += rr
        pg.to_csv(out / f"per_gene_{name}.tsv.gz", sep="\t", index=False)
        (out / f"runs_{name}.json").write_text(json.dumps(rr, indent=1))
    if not runs:
        log.error("no dataset evaluated")
        return 1
    per_gene = pd.concat(per_gene, ignore_index=True)
    runs_df = pd.DataFrame(runs)
    summary = summarize(runs_df)
    tests = paired_tests(per_gene, summary)
    text = table(summary)
    text += "\n\nPaired Wilcoxon (two-sided, genes; per-gene PCC averaged over seeds):\n"
    for t in tests:
        text += f"  {t['dataset']:<16} {t['protocol']:<12} robust vs {t['versus']:<7} n={t['n_genes']:>5}  median diff {t['median_of_differences']:+.4f}  genes better {t['fraction_genes_better']:.2f}  p={t['p_value']:.2e}\n"
    print(text)
    result = {
        "settings": {k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(args).items()},
        "robust_default": RobustConfig().to_dict(),
        "rows": {r[0]: {"overrides": r[1], "label": r[2]} for r in ROWS},
        "summary": summary.to_dict(orient="records"),
        "runs": runs,
        "wilcoxon": tests,
        "seconds": time.perf_counter() - t0,
    }
    (out / "robust_ablation.json").write_text(json.dumps(result, indent=1, default=float))
    (out / "robust_ablation.txt").write_text(text)
    per_gene.to_csv(out / "per_gene.tsv.gz", sep="\t", index=False)
    log.info("wrote %s", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
