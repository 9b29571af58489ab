"""A Transformer trained on real pairs across technologies, as a correction on top of the default, scored leave-one-technology-out.

    python benchmarks/transfer_net.py                  # all cases of benchmarks/out/realtruth.json (~10 min on 2 cores)
    python benchmarks/transfer_net.py --steps 100      # a quick look

The stEnTrans network maps one gene's map to a 2x map, so it is
gene-agnostic and can learn from any gene of any data set. Real pairs exist
in the finer sets: pseudo-spots at spacing ``a`` (what a user measures) and
the truth at ``a/2`` (``stentrans bin --truth``). Here the robust variant's
network (:class:`stentrans.models.robust.net.RobustNet`: stEnTrans blocks,
zero-initialised head, so it starts as the identity on its base) learns a
correction to the default's prediction from those pairs:

* per gene, input channels on the measured lattice: the measured counts
  (standardised over the measured spots), the in-tissue mask, and the
  default's prediction split into the four sub-pixel phases of the doubled
  grid (standardised over the enhanced positions); the base is the
  default's standardised prediction on the doubled grid;
* target: the truth at the new positions, standardised per gene over them;
  loss: mean squared error there (for standardised maps, 1 - PCC up to a
  constant);
* leave-one-technology-out: for each of Slide-seq, MERSCOPE, STARmap and
  Stereo-seq, the network is trained on every case of the other three and
  scored on the four cases of the held-out one, never on a set it saw. The
  cases, genes and scores are those of ``benchmarks/realtruth.py`` (median
  per-gene PCC at the new positions, raw counts).

Prints, per held-out case, the default, the default plus the correction and
the best baseline of docs/realtruth.md, and writes
``benchmarks/out/transfer_net.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import realtruth as RT  # noqa: E402

BASELINES = ("dist", "linear", "cubic", "nn", "nedi")


def _z(a: np.ndarray, sel: np.ndarray) -> np.ndarray:
    """Per-gene standardisation of ``a`` (n, U, V) by its mean and sd over the pixels ``sel`` (U, V)."""
    v = a[:, sel]
    mu, sd = v.mean(1), v.std(1)
    sd = np.where(sd > 0, sd, 1.0)
    return ((a - mu[:, None, None]) / sd[:, None, None]).astype(np.float32)


def prepare_case(points, c: dict) -> dict:
    """The tensors of one case: inputs, base, target and scoring positions of every evaluated gene."""
    from stentrans import pp
    from stentrans.grid import to_grid
    from stentrans.lattice import enhanced_mask
    from stentrans.models import registry
    from stentrans.io import pseudospots
    from stentrans.tl import FinerTruth

    spots, truth = pseudospots(points, c["lattice"], c["spacing"], truth=True)
    a = pp.qc(spots, min_spot_fraction=pp.SCORED_SPOT_FRACTION)  # the genes its README numbers were made with
    genes = RT.case_genes(a)  # the cases' genes of benchmarks/realtruth.py
    gd = to_grid(a, genes=genes)  # the evaluated genes only, as tl.evaluate gives every method
    G, M, lat = gd.maps, gd.mask, gd.grid.lattice
    pred = registry.make("robust").fit(G, M, lat, seed=0, device="cpu").predict(G, M)
    ft = FinerTruth(truth, gd.grid, M, genes, binning=a.uns.get("binning"))
    u, v = M.shape
    H = enhanced_mask(M, lat)
    tgt_mask = np.zeros((2 * u, 2 * v), dtype=bool)
    tgt_mask[ft.P, ft.Q] = True
    T = np.zeros((len(genes), 2 * u, 2 * v), dtype=np.float32)
    T[:, ft.P, ft.Q] = ft.counts.T
    base = _z(pred, H)
    phases = np.stack([base[:, i::2, j::2][:, :u, :v] for i in (0, 1) for j in (0, 1)], axis=1)
    x = np.concatenate([_z(G * M, M)[:, None] * M, np.broadcast_to(M, (len(genes), 1, u, v)).astype(np.float32), phases], axis=1)
    return {"case": f"{c['set']} {c['lattice']} {c['spacing']:g}", "set": c["set"], "x": x, "base": base, "target": _z(T, tgt_mask) * tgt_mask, "tmask": tgt_mask, "P": ft.P, "Q": ft.Q, "truth": ft.counts, "lattice": lat}


def _median_pcc(pred: np.ndarray, d: dict) -> float:
    from stentrans.metrics import pcc

    r = pcc(pred[:, d["P"], d["Q"]].T.astype(np.float64), d["truth"])
    return float(np.nanmedian(r))


def train(cases: list[dict], steps: int, batch: int, seed: int, lr: float):
    import torch

    from stentrans.models.robust.config import RobustConfig
    from stentrans.models.robust.net import RobustNet

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = RobustNet(RobustConfig(), in_channels=cases[0]["x"].shape[1])
    opt = torch.optim.AdamW(net.parameters(), lr=lr)
    weights = np.array([d["x"].shape[0] for d in cases], dtype=float)
    weights /= weights.sum()
    losses = []
    for _ in range(steps):
        d = cases[rng.choice(len(cases), p=weights)]
        g = rng.choice(d["x"].shape[0], min(batch, d["x"].shape[0]), replace=False)
        x, base, t = (torch.from_numpy(np.ascontiguousarray(d[k][g])) for k in ("x", "base", "target"))
        m = torch.from_numpy(d["tmask"].astype(np.float32))
        out = net(x, base)
        loss = (((out - t) ** 2) * m).sum() / (m.sum() * len(g))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    net.eval()
    return net, losses


def main(argv=None) -> int:
    import torch

    from stentrans.io import read_finer

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", default=str(RT.OUT_JSON), help="JSON of benchmarks/realtruth.py listing the cases (and the baselines' scores)")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(HERE / "out" / "transfer_net.json"))
    args = p.parse_args(argv)
    if not Path(args.cases).is_file():
        print(f"[skip] {args.cases} not found: run python benchmarks/realtruth.py first")
        return 0
    saved = json.loads(Path(args.cases).read_text())
    summ = pd.DataFrame(saved["summary"])
    summ = summ[summ.protocol == "realtruth"]
    t_all = time.perf_counter()
    points, data = {}, []
    for c in saved["cases"]:
        if c["set"] not in points:
            points[c["set"]] = read_finer(RT.FINER / RT.SETS[c["set"]][0])
        data.append(prepare_case(points[c["set"]], c))
        print(f"prepared {data[-1]['case']}: {data[-1]['x'].shape[0]} genes", flush=True)
    rows = []
    for held in dict.fromkeys(d["set"] for d in data):
        tr = [d for d in data if d["set"] != held]
        t0 = time.perf_counter()
        net, losses = train(tr, args.steps, args.batch, args.seed, args.lr)
        print(f"held out {held}: trained on {len(tr)} cases in {time.perf_counter() - t0:.0f} s, loss {np.mean(losses[:20]):.3f} -> {np.mean(losses[-20:]):.3f}", flush=True)
        for d in (d for d in data if d["set"] == held):
            with torch.no_grad():
                out = net(torch.from_numpy(d["x"]), torch.from_numpy(d["base"])).numpy()
            s = summ[(summ.set == d["set"]) & (summ.lattice == d["lattice"]) & np.isclose(summ.spacing, float(d["case"].split()[-1]))].set_index("method")["mean"]
            best = max(BASELINES, key=lambda m: s[m])
            row = {"case": d["case"], "held_out": held, "default": _median_pcc(d["base"], d), "default+net": _median_pcc(out, d), "best_baseline": best, "best_baseline_pcc": float(s[best])}
            rows.append(row)
            print(f"  {d['case']:24s} default {row['default']:.3f}  default+net {row['default+net']:.3f}  best baseline {best} {row['best_baseline_pcc']:.3f}", flush=True)
    table = pd.DataFrame(rows)
    print(table.round(3).to_string(index=False))
    print("mean: default %.4f, default+net %.4f; net better in %d of %d cases" % (table["default"].mean(), table["default+net"].mean(), int((table["default+net"] > table["default"]).sum()), len(table)))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"command": "python benchmarks/transfer_net.py" + "".join(" " + x for x in (argv if argv is not None else sys.argv[1:])), "rows": rows, "settings": vars(args), "seconds": round(time.perf_counter() - t_all, 1)}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
