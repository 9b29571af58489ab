"""Rule pretrain: self-supervised training; resumable after an interruption.

Training checkpoints go to a scratch folder keyed by the settings (not the
rule's output), so a killed run continues from its last checkpoint when
rerun; the finished checkpoint is then moved onto the output.
"""

import os
import shutil
from pathlib import Path

from _common import run_cli, start

log = start(snakemake)  # noqa: F821
m = snakemake.params.model  # noqa: F821
t = snakemake.params.train  # noqa: F821
scratch = Path(snakemake.params.scratch)  # noqa: F821
scratch.mkdir(parents=True, exist_ok=True)
ckpt = scratch / "model.pt"
if ckpt.exists():
    log.info("resuming from %s", ckpt)
run_cli(
    ["train", snakemake.input[0], "-o", ckpt, "--no-filter", "--resume"]  # noqa: F821
    + ["--epochs", t["epochs"], "--batch-size", t["batch_size"], "--lr", t["lr"]]
    + ["--seed", t["seed"], "--device", t["device"], "--checkpoint-every", t["checkpoint_every"]]
    + ["--patch-size", m["patch_size"], "--depth", m["depth"], "--heads", m["heads"]]
    + (["--crop", t["crop"]] if t.get("crop") is not None else [])
)
os.replace(ckpt, snakemake.output[0])  # noqa: F821
shutil.rmtree(scratch, ignore_errors=True)
