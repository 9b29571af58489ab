"""Threads: one number sets torch's and the BLAS library's pools (``--threads``, STENTRANS_THREADS, the available cores)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import anndata as ad
import pytest

from stentrans.datasets import simulate

_PROBE = """
import json, os, sys
affinity = sys.argv[1]
if affinity != "all":
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
import numpy, threadpoolctl, torch
from stentrans._utils import configure_threads
arg = None if sys.argv[2] == "none" else int(sys.argv[2])
n = configure_threads("cpu", arg)
blas = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
print(json.dumps({"n": n, "torch": torch.get_num_threads(), "blas": blas, "cores": len(os.sched_getaffinity(0))}))
"""


def _probe(affinity: str, threads: str, env_threads: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "STENTRANS_THREADS"}
    if env_threads is not None:
        env["STENTRANS_THREADS"] = env_threads
    r = subprocess.run([sys.executable, "-c", _PROBE, affinity, threads], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux-only")
def test_configure_threads_sets_torch_and_blas_from_one_number():
    # default: the cores this process may run on (its affinity), not the machine's
    one_core = _probe("one", "none", None)
    assert one_core["cores"] == 1 and one_core["n"] == one_core["torch"] == 1 and one_core["blas"] and set(one_core["blas"]) == {1}
    every = _probe("all", "none", None)
    assert every["n"] == every["torch"] == len(os.sched_getaffinity(0)) and set(every["blas"]) == {every["n"]}
    # STENTRANS_THREADS (the workflow's rule threads) replaces the default; an explicit number wins over both
    assert _probe("all", "none", "1")["torch"] == 1
    given = _probe("one", "3", "1")
    assert given["n"] == given["torch"] == 3 and set(given["blas"]) == {3}


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "stentrans", *map(str, args)], capture_output=True, text=True, env=env)


def test_cli_threads_flag(tmp_path):
    a = simulate("square", n_genes=6, seed=2)
    inp = tmp_path / "in.h5ad"
    a.write_h5ad(inp)
    out = tmp_path / "out.h5ad"
    r = _cli("-v", "enhance", inp, "-o", out, "--method", "linear", "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert "threads: 1 (torch and BLAS)" in r.stderr and ad.read_h5ad(out).n_vars == a.n_vars
    bad = tmp_path / "bad.h5ad"
    r = _cli("enhance", inp, "-o", bad, "--method", "linear", "--threads", "0")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "--threads" in lines[0] and "at least 1" in lines[0], r.stderr
    assert not bad.exists()
    assert "--threads N" in _cli("enhance", "--help").stdout and "--threads N" in _cli("evaluate", "--help").stdout
