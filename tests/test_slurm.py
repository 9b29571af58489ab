"""The workflow on a real SLURM cluster, through ``profiles/slurm`` (issue 10).

A single-node cluster (slurmctld, slurmd, slurmdbd with MariaDB, munged; one
declared fake GPU) is started by ``tests/cluster/start_slurm.sh``. The demo
workflow, made tiny by a config file, then runs twice from copies of the repo:
locally (``--cores 2``) and with ``--profile profiles/slurm`` through
snakemake-executor-plugin-slurm. Checked: every non-local job went through
SLURM and is COMPLETED in ``sacct`` with the CPUs, memory and time limit
Snakemake computed for it; pretrain/enhance/evaluate asked for and got one GPU;
the enhanced matrix and the PCC table equal the local run's.

Needs root (and apt-get when SLURM is not installed); skipped otherwise. The
cluster is stopped at the end unless it was already running before the tests.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SCRIPT = REPO / "tests" / "cluster" / "start_slurm.sh"

SAMPLE = "sim_hex"  # the small hex section of the demo
TARGETS = [f"results/{SAMPLE}/enhanced.h5ad", f"results/{SAMPLE}/evaluate/per_gene.tsv"]
EXPECTED_RULES = {"simulate", "qc", "grid", "pretrain", "enhance", "evaluate"}
GPU_RULES = {"pretrain", "enhance", "evaluate"}

# few epochs, two methods, one seed: a few seconds of compute per job
TINY_CONFIG = {
    "train": {"epochs": 3, "checkpoint_every": 1},
    "enhance": {"method": "stentrans"},  # pretrain is one of the GPU jobs under test
    "evaluate": {
        "protocols": ["paper"],
        "truth": False,
        "methods": ["stentrans", "linear"],
        "seeds": 1,
        "epochs": 2,
    },
}

#: what the runs need of the checkout: the workflow's files and the package, nothing the user
#: made there (results/, resources/, logs/, .snakemake/, virtual environments ...)
WORKFLOW_PARTS = ["Snakefile", "config.yaml", "config", "schemas", "rules", "scripts", "envs", "profiles", "report", "stentrans", "pyproject.toml"]
COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")


# ------------------------------------------------------------------ helpers

_MEM_RE = re.compile(r"([\d.]+)([KMGT]?)[nc]?")


def _run(cmd, *, env=None, cwd=None, timeout=120, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(c) for c in cmd], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
        )
    return proc


def _tail(path: Path, n: int = 40) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"({path} unreadable)"
    return f"--- {path} (last {n} lines) ---\n" + "\n".join(lines[-n:])


def _mem_mb(value: str) -> float:
    """sacct ReqMem ('2000M', '2G', older '2000Mn'/'1000Mc') in MB."""
    m = _MEM_RE.fullmatch(value.strip())
    assert m, f"unexpected ReqMem {value!r}"
    scale = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2, "": 1}[m.group(2)]
    return float(m.group(1)) * scale


def _minutes(value: str) -> int:
    """sacct Timelimit ('00:30:00', '1-02:00:00', '30:00') in minutes."""
    days, _, hms = value.strip().rpartition("-")
    parts = [int(p) for p in hms.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0)
    h, m, s = parts
    return int(days or 0) * 1440 + h * 60 + m + (1 if s else 0)


def _submitted_jobs(log: str) -> dict[str, dict]:
    """SLURM job id -> rule, threads and resources, from Snakemake's main log.

    Jobs that become ready together (e.g. grid and pretrain after qc) print
    their rule blocks first and their submissions after, so the blocks are
    matched by Snakemake's job id ("jobid: N" in the block, "Job N has been
    submitted with SLURM jobid M").
    """
    blocks: dict[str, dict] = {}
    jobs = {}
    current = None
    for line in log.splitlines():
        s = line.strip()
        m = re.match(r"^(?:local)?rule (\w+):$", s)
        if m:
            current = {"rule": m.group(1), "threads": 1, "resources": {}}
            continue
        m = re.search(r"(?:Job (\d+) has been )?submitted with SLURM jobid (\d+)", line)
        if m:
            job = blocks.get(m.group(1)) if m.group(1) is not None else current
            if job is not None:
                jobs[m.group(2)] = job
            continue
        if current is None:
            continue
        if s.startswith("jobid:"):
            blocks[s.split(":", 1)[1].strip()] = current
        elif s.startswith("threads:"):
            current["threads"] = int(s.split(":", 1)[1])
        elif s.startswith("resources:"):
            for item in s.split(":", 1)[1].split(","):
                key, _, val = item.strip().partition("=")
                current["resources"][key] = val
    return jobs


SACCT_FIELDS = [
    "JobID", "JobName", "State", "ExitCode", "AllocCPUS", "ReqMem", "Timelimit",
    "ReqTRES", "AllocTRES", "Comment", "SubmitLine",
]  # fmt: skip


_ACTIVE = {"", "PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "REQUEUED", "SUSPENDED"}


def _sacct(env, selector: list[str], expect: set[str] | None = None, wait: float = 60) -> dict[str, dict]:
    """sacct rows (one per job) for ``selector`` (e.g. ``["-j", "12"]``), by job id.

    Right after a job ends, slurmdbd may not have its final record yet (seen:
    ReqMem '16?'); poll until every row is final and the expected ids are there.
    """
    cmd = ["sacct", "-X", "-n", "-P", "--starttime", "now-1days", *selector,
           "-o", ",".join(SACCT_FIELDS)]  # fmt: skip
    deadline = time.monotonic() + wait
    while True:
        rows = {}
        for line in _run(cmd, env=env).stdout.splitlines():
            if line.strip():
                # SubmitLine is last and may itself contain '|'
                row = dict(zip(SACCT_FIELDS, line.split("|", len(SACCT_FIELDS) - 1)))
                rows[row["JobID"]] = row
        settled = all(
            (r["State"].split() or [""])[0] not in _ACTIVE and _MEM_RE.fullmatch(r["ReqMem"].strip())
            for r in rows.values()
        )
        if settled and rows and (expect is None or expect <= set(rows)):
            return rows
        if time.monotonic() > deadline:
            return rows
        time.sleep(2)


def _copy_repo(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in WORKFLOW_PARTS:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=COPY_IGNORE, symlinks=True)
        else:
            shutil.copy2(src, dest / name)
    (dest / "tiny.yaml").write_text(yaml.safe_dump(TINY_CONFIG, sort_keys=False))
    return dest


def _profile_overrides(account: str, partition: str, node_mem_mb: int) -> list[str]:
    """CLI arguments that replace the profile's account/partition placeholders.

    Everything else in profiles/slurm/config.yaml is kept: its default-resources
    and set-resources are passed back unchanged except for slurm_account and
    slurm_partition (a command-line --default-resources/--set-resources replaces
    the profile's whole entry, so all of it is repeated).
    """
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())

    def fix(key, val):
        if key == "slurm_account":
            return account
        if key == "slurm_partition":
            return partition
        if key in ("mem_mb", "mem_mib") and isinstance(val, (int, float)) and val > node_mem_mb:
            return node_mem_mb // 2  # a CI runner may have less memory than a real node
        return val

    args = []
    defaults = dict(profile.get("default-resources") or {})
    defaults.setdefault("slurm_account", account)
    defaults.setdefault("slurm_partition", partition)
    args += ["--default-resources"] + [f"{k}={fix(k, v)}" for k, v in defaults.items()]
    set_res = profile.get("set-resources") or {}
    if set_res:
        args += ["--set-resources"] + [
            f"{rule}:{k}={fix(k, v)}" for rule, d in set_res.items() for k, v in d.items()
        ]
    # the profile's config entries, with the CUDA conda env switched off
    cfg = [c for c in (profile.get("config") or []) if not str(c).startswith("gpu_env=")]
    args += ["--config", *cfg, "gpu_env=False"]
    return args


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def slurm_cluster():
    """Start the test cluster (unless already up); yields the environment to use it."""
    if os.name != "posix" or os.geteuid() != 0:
        pytest.skip("the SLURM test cluster needs root (slurmd launches the jobs)")
    sbin_path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    if shutil.which("slurmctld", path=sbin_path) is None and shutil.which("apt-get") is None:
        pytest.skip("SLURM is not installed and apt-get is not available to install it")
    env = os.environ.copy()
    was_up = _run(["bash", CLUSTER_SCRIPT, "status"], env=env, check=False).returncode == 0
    proc = _run(["bash", CLUSTER_SCRIPT, "start"], env=env, timeout=900, check=False)
    if proc.returncode == 77:
        pytest.skip(proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, f"start_slurm.sh failed ({proc.returncode}):\n{proc.stderr[-5000:]}"
    for line in proc.stdout.splitlines():
        m = re.match(r"export (\w+)=(.*)$", line.strip())
        if m:
            env[m.group(1)] = m.group(2)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}:/usr/sbin:/sbin"
    env.pop("SLURM_JOB_ID", None)
    try:
        yield env
    finally:
        if not was_up:
            _run(["bash", CLUSTER_SCRIPT, "stop"], env=env, timeout=180, check=False)


# ------------------------------------------------------------------ tests


def test_cluster_runs_gpu_job(slurm_cluster, tmp_path):
    """The cluster itself: a --gpus=1 batch job runs and is accounted with its GPU."""
    env = slurm_cluster
    account, partition = env["STENTRANS_SLURM_ACCOUNT"], env["STENTRANS_SLURM_PARTITION"]
    out = _run(
        ["sbatch", "--parsable", "--wait", "-A", account, "-p", partition, "-c", "1",
         "--mem", "100", "-t", "2", "--gpus=1", "-o", tmp_path / "job.out",
         "--wrap", "echo gpus=$SLURM_GPUS_ON_NODE cuda=$CUDA_VISIBLE_DEVICES"],
        env=env, cwd=tmp_path, timeout=120,
    ).stdout  # fmt: skip
    jobid = out.strip().split(";")[0]
    assert (tmp_path / "job.out").read_text().strip() == "gpus=1 cuda=0"
    row = _sacct(env, ["-j", jobid], expect={jobid})[jobid]
    assert row["State"] == "COMPLETED" and row["AllocCPUS"] == "1", row
    assert _mem_mb(row["ReqMem"]) == 100 and _minutes(row["Timelimit"]) == 2, row
    tres = row["ReqTRES"]
    assert "gres/gpu=1" in tres, row


def test_workflow_through_slurm_profile(slurm_cluster, tmp_path):
    """The tiny demo via profiles/slurm: jobs in sacct as asked, GPU rules with a GPU, same results."""
    env = slurm_cluster
    account, partition = env["STENTRANS_SLURM_ACCOUNT"], env["STENTRANS_SLURM_PARTITION"]
    node = _run(["scontrol", "show", "node", "-o"], env=env).stdout
    node_mem = int(re.search(r"RealMemory=(\d+)", node).group(1))

    local = _copy_repo(tmp_path / "local")
    remote = _copy_repo(tmp_path / "slurm")
    snakemake = [sys.executable, "-m", "snakemake"]

    # the local reference run goes on while the SLURM jobs wait in the queue
    local_log = tmp_path / "local.log"
    with open(local_log, "w") as fh:
        local_proc = subprocess.Popen(
            [*snakemake, "--cores", "2", "--configfile", "tiny.yaml", "--config", "gpu_env=False",
             "--", *TARGETS],
            cwd=local, env=env, stdout=fh, stderr=subprocess.STDOUT,
        )  # fmt: skip

    slurm_cmd = [
        *snakemake, "--profile", "profiles/slurm",
        "--configfile", "tiny.yaml",
        *_profile_overrides(account, partition, node_mem),
        # the profile deploys conda envs; run in this Python instead
        # (no rule uses env modules, so this method is a no-op)
        "--software-deployment-method", "env-modules",
        "--jobs", "2", "--retries", "0",
        "--slurm-init-seconds-before-status-checks", "2",
        "--slurm-keep-successful-logs",
        "--", *TARGETS,
    ]  # fmt: skip
    t0 = time.monotonic()
    proc = subprocess.run(
        slurm_cmd, cwd=remote, env=env, capture_output=True, text=True, timeout=480
    )
    slurm_seconds = time.monotonic() - t0
    log = proc.stdout + proc.stderr
    try:
        local_rc = local_proc.wait(timeout=300)
    finally:
        if local_proc.poll() is None:
            local_proc.kill()
    if proc.returncode != 0:
        def newest(folder: Path, n: int) -> list[Path]:
            return sorted(folder.rglob("*.log"), key=lambda p: p.stat().st_mtime)[-n:]

        state_dir = Path(os.environ.get("STENTRANS_SLURM_DIR", "/tmp/stentrans-slurm"))
        details = "\n".join(
            [_tail(p, 30) for p in newest(remote / ".snakemake" / "slurm_logs", 2)]
            + [_tail(p, 30) for p in newest(remote / "logs", 2)]
            + [_tail(state_dir / "log" / f, 15) for f in ("slurmctld.log", "slurmd.log")]
        )
        pytest.fail(f"snakemake --profile profiles/slurm failed:\n{log[-6000:]}\n{details}")
    assert local_rc == 0, f"local reference run failed:\n{_tail(local_log, 60)}"
    print(f"SLURM run: {slurm_seconds:.0f} s")
    assert "profiles/slurm" in log.split("Building DAG", 1)[0], "profiles/slurm was not used"

    # ---- every non-local job went through SLURM, as Snakemake computed it
    m = re.search(r"SLURM run ID: (\S+)", log)
    assert m, f"no SLURM run ID in the log:\n{log[-3000:]}"
    run_uuid = m.group(1)
    submitted = _submitted_jobs(log)
    assert EXPECTED_RULES <= {j["rule"] for j in submitted.values()}, submitted
    acct = _sacct(env, ["--name", run_uuid], expect=set(submitted))
    assert set(acct) == set(submitted), (sorted(acct), sorted(submitted))
    for jobid, job in submitted.items():
        row, rule, res = acct[jobid], job["rule"], job["resources"]
        where = f"job {jobid} (rule {rule}): {row}"
        assert row["State"] == "COMPLETED" and row["ExitCode"] == "0:0", where
        assert row["JobName"] == run_uuid, where
        if row["Comment"]:  # needs AccountingStoreFlags=job_comment
            assert row["Comment"].startswith(f"rule_{rule}"), where
        assert int(row["AllocCPUS"]) == job["threads"], where
        assert _mem_mb(row["ReqMem"]) == float(res["mem_mb"]), where
        assert _minutes(row["Timelimit"]) == int(float(res["runtime"])), where
        assert f"-A {account}" in row["SubmitLine"] and f"-p {partition}" in row["SubmitLine"], where
        if rule in GPU_RULES:
            assert res.get("gpu") == "1", where
            assert re.search(r"--gpus=1\b|--gres=gpu:1\b", row["SubmitLine"]), where
            assert "gres/gpu=1" in row["ReqTRES"] and "gres/gpu=1" in row["AllocTRES"], where
        else:
            assert "gres/gpu" not in row["ReqTRES"], where

    # ---- same results as the local run (same seeds, same threads, CPU)
    import anndata as ad

    a = ad.read_h5ad(local / TARGETS[0])
    b = ad.read_h5ad(remote / TARGETS[0])
    assert a.shape == b.shape and a.shape[0] > 0
    assert list(a.obs_names) == list(b.obs_names) and list(a.var_names) == list(b.var_names)
    xa = a.X.toarray() if hasattr(a.X, "toarray") else np.asarray(a.X)
    xb = b.X.toarray() if hasattr(b.X, "toarray") else np.asarray(b.X)
    np.testing.assert_array_equal(xb, xa)  # bit for bit: same seed, threads and CPU

    pa = pd.read_csv(local / TARGETS[1], sep="\t")
    pb = pd.read_csv(remote / TARGETS[1], sep="\t")
    assert len(pa) > 0 and "pcc" in pa.columns
    pd.testing.assert_frame_equal(pb, pa, check_exact=True)
