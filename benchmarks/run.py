"""Speed, memory and accuracy benchmarks.

Each case runs in its own subprocess so peak RSS is measured per case. Prints a
table and writes JSON (default ``benchmarks/out/results.json``).

    python benchmarks/run.py --quick            # minutes: few epochs, small cases
    python benchmarks/run.py                    # the issue's cases and budgets
    python benchmarks/run.py --cases melanoma   # one case
    python benchmarks/run.py --cases visium_mouse,sim_hd --robust-only                 # the default alone
    python benchmarks/run.py --cases visium_mouse,sim_hd --robust-only --robust-scale norm   # the default before
    python benchmarks/run.py --enhance --cases visium_mouse,dlpfc --repeat 2        # `stentrans enhance` as users run it

``--enhance``: the command a user types, ``stentrans enhance INPUT -o
OUT.h5ad`` (defaults: QC, lost spots, threads; ``--enhance-args`` adds
flags), in a child process per run: wall time, CPU time (user + system of
the child, from ``wait4``), peak RSS of the child, genes and spots written,
the threads it used and the load average around it (the machine may be
shared: compare CPU times, and wall times only between runs at similar
load). Run it with another checkout's package on ``PYTHONPATH`` for a before /
after comparison.

Per case: the robust variant (the users' default) end to end: read -> fit
-> enhance streamed to an .h5ad (``robust_wall_s``), and its accuracy fitted on
D(G) only and scored on the removed spots (``robust_nested_pcc``); the paper
network: seconds per training epoch, the matmul GFLOP/s that implies,
enhancement genes/s, its PCC on its own protocol's removed spots. Maps beyond
MAX_TRAIN_TOKENS (Visium HD size) train on random windows (``crop``) and, on
the CPU, on the first PAPER_GENES_LARGE genes only (``paper_genes``); their
whole-slide enhancement with the paper network is not timed
(``pcc_removed_median``, so speed never trades away accuracy unnoticed);
Sepal seconds (all genes passing the filter), peak RSS of the case (GiB),
peak GPU memory (CUDA only) and the case's wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = Path(os.environ.get("STENTRANS_SHARED", REPO.parent / "shared")) / "data"

CASES = ["melanoma", "visium_mouse", "sim_visium", "sim_hd"]
#: inputs of ``--enhance`` (the files a user gives ``stentrans enhance``)
ENHANCE_INPUTS = {
    "melanoma": DATA / "melanoma_mel1_rep1.tsv.gz",
    "visium_mouse": DATA / "visium_mouse_cytassist",
    "dlpfc": DATA / "visium_dlpfc_151510_500genes.h5ad",
}
#: genes the paper network trains on (CPU) where maps need windows (Visium HD size)
PAPER_GENES_LARGE = 64


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _case_inputs(name: str, quick: bool):
    import numpy as np

    import stentrans as st
    from stentrans.datasets import simulate

    if name == "melanoma":
        path = DATA / "melanoma_mel1_rep1.tsv.gz"
        if not path.exists():
            return None, f"missing {path}"
        return st.read(path), None
    if name == "visium_mouse":
        path = DATA / "visium_mouse_cytassist"
        if not path.exists():
            return None, f"missing {path}"
        return st.read(path), None
    if name == "sim_visium":
        a = simulate("hex", n_genes=500 if quick else 5000, seed=0, size="visium", shape=(78, 128), tissue_fraction=0.99)
        return a, None
    if name == "sim_hd":
        side = 100 if quick else 316  # ~100,000 bins at full size
        return _hd_like(side, 100 if quick else 1000), None
    raise ValueError(name)


def _hd_like(side: int, n_genes: int, seed: int = 0):
    """A Visium-HD-sized square grid: low-rank smooth fields + Poisson counts.

    (The simulator keeps a dense 2x truth, which at this size alone would
    take several GiB; the benchmark only needs realistic sparsity and size.)
    """
    import anndata as ad
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    k = 12
    fields = np.stack([gaussian_filter(rng.normal(size=(side, side)), 4 + 2 * i) for i in range(k)])
    fields /= fields.reshape(k, -1).std(1)[:, None, None]
    load = rng.normal(size=(k, n_genes)) * 0.6
    base = rng.normal(-2.5, 1.0, size=n_genes)
    rows, cols = np.mgrid[0:side, 0:side]
    F = fields.reshape(k, -1).T
    X = sp.vstack([sp.csr_matrix(rng.poisson(np.exp(base + F[s : s + 8192] @ load)).astype(np.float32)) for s in range(0, F.shape[0], 8192)]).tocsr()
    obs = pd.DataFrame({"array_row": rows.ravel(), "array_col": cols.ravel(), "in_tissue": 1}, index=[f"b{i}" for i in range(side * side)])
    a = ad.AnnData(X, obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(n_genes)]))
    a.obsm["spatial"] = np.column_stack([cols.ravel() * 2.0, rows.ravel() * 2.0])
    a.uns["stentrans"] = {"lattice": "square", "source": f"hd_like(side={side}, n_genes={n_genes})", "format": "simulated"}
    return a


def _flops_per_epoch(model, n_genes: int, shape) -> float:
    """Forward+backward FLOPs of one training epoch (matmuls only: 3x the forward MACs x 2)."""
    from stentrans.models.paper.tiles import patch_tokens

    c = model.config
    P, D = c.patch_size, c.dim
    u, v = shape
    T = patch_tokens((u, v), P)
    per_token_block = 4 * D * D + 2 * D * int(c.mlp_ratio * D) + 2 * T * D  # qkv+proj, mlp, attention
    embed = 4 * (P * P) * (P * P)  # four convs, per token
    macs = n_genes * T * (c.depth * per_token_block + embed)
    return 3 * 2 * macs


def run_case(name: str, quick: bool, epochs: int, device: str, robust_only: bool = False, robust_scale: str | None = None) -> dict:
    """Runs in the child process: the robust variant (users' default; ``robust_scale`` overrides its working scale) and the paper network."""
    import numpy as np
    import torch

    import stentrans as st
    from stentrans.run import enhance_to
    from stentrans.metrics import pcc
    from stentrans.grid import to_grid
    from stentrans.lattice import downsample, kept_mask
    from stentrans.models.robust.fit import fit_robust
    from stentrans.tl import sepal_scores as sepal
    from stentrans.models.paper.config import ModelConfig
    from stentrans.models.paper.config import MAX_TRAIN_TOKENS
    from stentrans.models.paper.tiles import crop_side, patch_tokens, predict

    t_case = time.perf_counter()
    adata, why = _case_inputs(name, quick)
    if adata is None:
        return {"case": name, "skipped": why}
    t_read = time.perf_counter() - t_case
    adata = st.pp.qc(adata, min_spot_fraction=0.1)
    n_spots, n_genes = adata.shape
    gd = to_grid(adata)
    lat = gd.grid.lattice
    lr, lr_mask = downsample(gd.maps, gd.mask, lat)
    rem = gd.mask & ~kept_mask(gd.mask, lat)
    row = {"case": name, "spots": int(n_spots), "genes": int(n_genes), "grid": list(gd.grid.shape), "read_s": t_read}

    # robust variant: nested-style accuracy (fitted on D(G) only, scored on the removed spots)
    from stentrans.models.robust.config import RobustConfig

    rkw = {"scale": robust_scale} if robust_scale else {}
    row["robust_scale"] = RobustConfig(**rkw).scale
    t0 = time.perf_counter()
    rr = fit_robust(lr, lr_mask, lat, RobustConfig(**rkw), device=device, progress=False)
    pred = rr.predict(lr, lr_mask)[:, : gd.mask.shape[0], : gd.mask.shape[1]]
    row["robust_nested_pcc"] = float(np.nanmedian(pcc(pred[:, rem].T, gd.maps[:, rem].T)))
    del pred, rr
    # the user's path: read -> fit -> enhance streamed to the file
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res_r = st.tl.train(adata, method="robust", device=device, progress=False, **rkw)
        row["robust_fit_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = enhance_to(adata, Path(tmp) / "enhanced.h5ad", model=res_r, progress=False)["path"]
        row["robust_enhance_s"] = time.perf_counter() - t0
        row["enhanced_mb"] = out.stat().st_size / 2**20
    del res_r
    row["robust_wall_s"] = time.perf_counter() - t_case
    if robust_only:
        row["wall_s"] = time.perf_counter() - t_case
        row["peak_rss_gib"] = _peak_rss_gib()
        row["peak_gpu_gib"] = float(torch.cuda.max_memory_allocated() / 2**30) if torch.cuda.is_available() else None
        return row

    # the paper network: training speed and its own protocol's accuracy
    tokens = patch_tokens(lr.shape[1:], ModelConfig().patch_size)
    big = tokens > MAX_TRAIN_TOKENS  # trained on random windows (crop), and on a gene subset on the CPU
    sub = adata
    if big and not torch.cuda.is_available():
        sub = adata[:, : min(n_genes, PAPER_GENES_LARGE)].copy()
    res = st.tl.train(sub, method="stentrans", epochs=epochs, device=device, progress=False, seed=0)
    per_epoch = res.seconds / max(1, res.epochs_run)
    side = crop_side(res.train_config.crop, lr.shape[1:], res.model_config.patch_size)
    flops = _flops_per_epoch(res.model, sub.n_vars, (side, side) if side else lr.shape[1:])
    t0 = time.perf_counter()
    pred = predict(res.model, lr[: sub.n_vars])[:, : gd.mask.shape[0], : gd.mask.shape[1]]
    t_pred = time.perf_counter() - t0
    r = pcc(pred[:, rem].T, gd.maps[: sub.n_vars, rem].T)
    del pred
    row.update({"paper_genes": int(sub.n_vars), "crop": side, "epochs": int(res.epochs_run), "s_per_epoch": per_epoch, "train_s": res.seconds, "gflops_per_epoch": flops / 1e9, "gflop_per_s": flops / 1e9 / per_epoch, "predict_genes_per_s": sub.n_vars / t_pred, "pcc_removed_median": float(np.nanmedian(r)), "final_loss": res.final_loss, "device": res.device})
    if not big:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            enhance_to(adata, Path(tmp) / "enhanced.h5ad", model=res, progress=False)
            row["enhance_genes_per_s"] = n_genes / (time.perf_counter() - t0)
    del res, sub
    t0 = time.perf_counter()
    rank = sepal(adata, device=device)
    row["sepal_s"] = time.perf_counter() - t0
    row["sepal_converged"] = float(rank["converged"].mean()) if "converged" in rank else None
    row["wall_s"] = time.perf_counter() - t_case
    row["peak_rss_gib"] = _peak_rss_gib()
    row["peak_gpu_gib"] = float(torch.cuda.max_memory_allocated() / 2**30) if torch.cuda.is_available() else None
    return row


def run_enhance(name: str, repeat: int = 1, extra=(), threads: int | None = None) -> list[dict]:
    """``stentrans enhance`` on a real input as users call it, ``repeat`` times, one child process each (module documentation)."""
    path = ENHANCE_INPUTS.get(name)
    if path is None or not path.exists():
        return [{"case": name, "skipped": f"missing {path}" if path else f"no input for {name!r}"}]
    rows = []
    for k in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "enhanced.h5ad"
            cmd = [sys.executable, "-m", "stentrans", "enhance", str(path), "-o", str(out), *extra] + (["--threads", str(threads)] if threads else [])
            load0 = os.getloadavg()[0]
            t0 = time.perf_counter()
            # cwd: a folder without the package, so that the one on PYTHONPATH / installed runs (python -m puts the cwd first)
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp)
            err = proc.stderr.read()
            _, status, ru = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            row = {"case": name, "run": k + 1, "threads": threads or f"default ({len(os.sched_getaffinity(0))} cores)", "command": " ".join(["stentrans", *cmd[3:]]), "wall_s": round(wall, 1), "cpu_s": round(ru.ru_utime + ru.ru_stime, 1), "peak_rss_gib": round(ru.ru_maxrss / 2**20, 3), "load_before": round(load0, 2), "load_after": round(os.getloadavg()[0], 2)}
            if status != 0:
                row["error"] = (err.strip().splitlines() or ["?"])[-1]
            else:
                import anndata as ad

                e = ad.read_h5ad(out, backed="r")
                st = e.uns["stentrans"]
                row.update(genes=int(e.n_vars), spots=int(e.n_obs), n_lost=int(st.get("n_lost", 0)), genes_in_input=int(st.get("qc", {}).get("n_genes_before", e.n_vars)), fit_s=round(float(st.get("train_seconds", float("nan"))), 1))
                e.file.close()
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def _fmt(v, nd=3):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small cases and few epochs (minutes)")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--epochs", type=int, default=None, help="training epochs per case (default 3 quick, 10 full)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("-o", "--output", default=str(HERE / "out" / "results.json"))
    ap.add_argument("--robust-only", action="store_true", help="the robust variant's path only (no paper network, no Sepal)")
    ap.add_argument("--robust-scale", default=None, help="the robust variant's working scale (default: its default, norm+counts)")
    ap.add_argument("--enhance", action="store_true", help="time `stentrans enhance INPUT -o OUT.h5ad` as users run it (cases: " + ", ".join(ENHANCE_INPUTS) + ")")
    ap.add_argument("--repeat", type=int, default=1, help="--enhance: runs per case")
    ap.add_argument("--threads", type=int, default=None, help="--enhance: pass --threads N (default: the command's default)")
    ap.add_argument("--enhance-args", default="", help="--enhance: further flags of stentrans enhance, one string")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    epochs = args.epochs or (3 if args.quick else 10)
    if args.enhance:
        import shlex

        import stentrans

        rows = []
        for name in [c for c in args.cases.split(",") if c and c in ENHANCE_INPUTS]:
            rows += run_enhance(name, args.repeat, shlex.split(args.enhance_args), args.threads)
        cols = ["case", "run", "genes", "genes_in_input", "spots", "n_lost", "threads", "wall_s", "cpu_s", "fit_s", "peak_rss_gib", "load_before", "load_after"]
        print("| " + " | ".join(cols) + " |")
        print("|" + "---|" * len(cols))
        for r in rows:
            print("| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" + (f" ERROR: {r['error']}" if "error" in r else ""))
        meta = {"mode": "enhance", "stentrans": stentrans.__file__, "python": platform.python_version(), "cpus": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
        out = Path(args.output if args.output != str(HERE / "out" / "results.json") else HERE / "out" / "enhance.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"meta": meta, "runs": rows}, indent=2))
        print(f"wrote {out}", file=sys.stderr)
        return 0
    if args.child:
        print(json.dumps(run_case(args.child, args.quick, epochs, args.device, args.robust_only, args.robust_scale)))
        return 0
    rows = []
    for name in [c for c in args.cases.split(",") if c]:
        cmd = [sys.executable, __file__, "--child", name, "--epochs", str(epochs), "--device", args.device] + (["--quick"] if args.quick else []) + (["--robust-only"] if args.robust_only else []) + (["--robust-scale", args.robust_scale] if args.robust_scale else [])
        print(f"== {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            rows.append({"case": name, "error": (p.stderr.strip().splitlines() or ["?"])[-1], "wall_s": time.perf_counter() - t0})
            continue
        rows.append(json.loads(p.stdout.strip().splitlines()[-1]))
    cols = ["case", "spots", "genes", "robust_scale", "robust_fit_s", "robust_enhance_s", "robust_wall_s", "robust_nested_pcc", "paper_genes", "crop", "epochs", "s_per_epoch", "gflop_per_s", "enhance_genes_per_s", "pcc_removed_median", "sepal_s", "peak_rss_gib", "peak_gpu_gib", "wall_s"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        if "skipped" in r or "error" in r:
            print(f"| {r['case']} | {r.get('skipped') or 'ERROR: ' + r['error']} |")
            continue
        print("| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
    meta = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(), "quick": args.quick, "epochs": epochs, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    try:
        import torch

        meta["torch"] = torch.__version__
        meta["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # pragma: no cover
        pass
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "cases": rows}, indent=2))
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
