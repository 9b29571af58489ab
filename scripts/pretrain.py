"""Rule pretrain: self-supervised training of the network method that enhances (enhance.method); resumable after an interruption.

Training checkpoints go to a scratch folder keyed by the settings (not the
rule's output), so a killed run continues from its last checkpoint when
rerun; the finished checkpoint is then moved onto the output.
"""

import os
import shutil
from pathlib import Path

from _common import run


def main(snakemake, log):
    import stentrans

    t = snakemake.params.train
    scratch = Path(snakemake.params.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    ckpt = scratch / "model.pt"
    if ckpt.exists():
        log.info("resuming from %s", ckpt)
    adata = stentrans.read(snakemake.input[0])
    settings = {k: t[k] for k in ("epochs", "batch_size", "lr", "checkpoint_every", "crop")}
    fitted = stentrans.tl.train(adata, method=snakemake.params.method, seed=t["seed"], device=t["device"], checkpoint=ckpt, resume=True, **settings, **snakemake.params.model)
    log.info("trained %d epochs in %.1f s, final loss %.5g -> %s", fitted.epochs_run, fitted.seconds, fitted.final_loss, ckpt)
    os.replace(ckpt, snakemake.output[0])
    shutil.rmtree(scratch, ignore_errors=True)


run(snakemake, main)  # noqa: F821
