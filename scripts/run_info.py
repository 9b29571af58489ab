"""Rule run_info: software versions, device and the run's configuration."""

import platform
import sys
from importlib import metadata

from _common import start

log = start(snakemake)  # noqa: F821

import yaml  # noqa: E402

import stentrans  # noqa: E402
from stentrans._utils import atomic_path  # noqa: E402


def version(dist):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


info = {
    "stentrans": stentrans.__version__,
    "python": sys.version.split()[0],
    "platform": platform.platform(),
    "packages": {d: version(d) for d in ["torch", "numpy", "scipy", "pandas", "anndata", "scanpy", "scikit-learn", "gseapy", "matplotlib", "snakemake"]},
}
try:
    import torch

    info["cuda"] = {"available": bool(torch.cuda.is_available()), "torch_cuda": torch.version.cuda or "none"}
    if torch.cuda.is_available():
        info["cuda"]["device"] = torch.cuda.get_device_name(0)
except ImportError:
    info["cuda"] = {"available": False}
info["config"] = snakemake.params.config  # noqa: F821
info["samples"] = snakemake.params.samples  # noqa: F821
with atomic_path(snakemake.output[0]) as tmp:  # noqa: F821
    tmp.write_text(yaml.safe_dump(info, sort_keys=False), encoding="utf-8")
log.info("-> %s", snakemake.output[0])  # noqa: F821
