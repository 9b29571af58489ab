import hashlib
import json
import re

import pandas as pd
from snakemake.utils import validate

# ---------------------------------------------------------------- samples


def _read_samples(path):
    table = pd.read_csv(
        path, sep="\t", dtype=str, keep_default_na=False, comment="#"
    ).apply(lambda col: col.str.strip())
    if "enabled" not in table.columns:
        table["enabled"] = "true"
    validate(table, schema="../schemas/samples.schema.yaml")
    dup = table["sample"][table["sample"].duplicated()].tolist()
    if dup:
        raise ValueError(f"{path}: sample: duplicate name(s): {', '.join(dup)}")
    table["enabled"] = ~table["enabled"].str.lower().isin(["false", "no", "0"])
    return table.set_index("sample", drop=False)


samples = _read_samples(config["samples"])
SAMPLES = samples.index[samples["enabled"]].tolist()
if not SAMPLES:
    raise ValueError(f"{config['samples']}: no enabled sample")


wildcard_constraints:
    sample="|".join(re.escape(s) for s in samples.index),


def _check_sample_lists():
    # disabled samples may stay listed; unknown names are errors
    for key in ("patterns", "ablation", "evaluate"):
        unknown = [s for s in config[key]["samples"] if s not in samples.index]
        if unknown:
            raise ValueError(
                f"config {key}.samples: {', '.join(unknown)} not in "
                f"{config['samples']} ({', '.join(samples.index)})"
            )
    measured = {"paper", "nested", "heldout-genes"}
    if not measured & set(config["evaluate"]["protocols"]):
        raise ValueError(
            "config evaluate.protocols: give at least one of paper, nested, "
            "heldout-genes (the gene panels are drawn from it)"
        )
    for name, row in samples[samples["format"] == "cells"].iterrows():
        if row["enabled"] and name not in config["binning"]:
            raise ValueError(
                f"sample {name} has format `cells`: give binning.{name}.bin_size in the config"
            )


_check_sample_lists()


def sample_row(wildcards):
    return samples.loc[wildcards.sample]


# ---------------------------------------------------------------- inputs


_SPEC = re.compile(r"^(square|hex):(st|visium|\d+x\d+)$")


def simulate_spec(wildcards):
    """`LATTICE:SIZE` of a simulated sample as simulate's settings."""
    spec = sample_row(wildcards)["location"]
    m = _SPEC.match(spec)
    if not m:
        raise ValueError(
            f"sample {wildcards.sample}: location {spec!r}: expected LATTICE:SIZE "
            "with LATTICE square|hex and SIZE st|visium|ROWSxCOLS"
        )
    lattice, size = m.groups()
    shape = [int(v) for v in size.split("x")] if "x" in size else []
    return {
        "lattice": lattice,
        "size": "" if shape else size,
        "shape": shape,
        "n_genes": config["simulate"]["n_genes"],
        "seed": config["simulate"]["seed"],
    }


def raw_data(wildcards):
    """The sample's data as it comes: a download folder, a simulated .h5ad or a path."""
    row = sample_row(wildcards)
    if row["source"] == "url":
        return f"resources/download/{wildcards.sample}"
    if row["source"] == "simulate":
        return f"resources/simulated/{wildcards.sample}.h5ad"
    return row["location"]


def patterns_gmt(wildcards):
    """The GMT for the enrichment: a file, or `planted` (a simulated sample's programs)."""
    gmt = config["patterns"]["gmt"]
    if gmt != "planted":
        return gmt
    if sample_row(wildcards)["source"] != "simulate":
        raise ValueError(
            f"config patterns.gmt: `planted` needs a simulated sample, "
            f"{wildcards.sample} has source {sample_row(wildcards)['source']}"
        )
    return f"resources/simulated/{wildcards.sample}.gmt"


def qc_input(wildcards):
    if sample_row(wildcards)["format"] == "cells":
        return f"resources/binned/{wildcards.sample}.h5ad"
    return raw_data(wildcards)


def path_sha256(wildcards):
    """Expected hash of a `path` source (downloads are checked when fetched)."""
    row = sample_row(wildcards)
    return row["sha256"] if row["source"] == "path" else ""


def binning_settings(wildcards):
    return config["binning"][wildcards.sample]


def enhance_inputs(wildcards):
    """The paper variant enhances with the pretrain rule's checkpoint; robust fits in the job."""
    out = {"data": f"results/{wildcards.sample}/qc.h5ad"}
    if config["enhance"]["variant"] == "paper":
        out["model"] = f"results/{wildcards.sample}/model.pt"
    return out


def is_simulated(wildcards):
    return sample_row(wildcards)["source"] == "simulate"


def eval_setting(key):
    """evaluate.<key>, or its per-sample override (evaluate.samples.<sample>.<key>)."""

    def get(wildcards):
        over = config["evaluate"]["samples"].get(wildcards.sample, {})
        return over.get(key, config["evaluate"][key])

    return get


def eval_methods(wildcards):
    return ",".join(eval_setting("methods")(wildcards))


def eval_protocols(wildcards):
    protocols = list(eval_setting("protocols")(wildcards))
    if config["evaluate"]["truth"] and is_simulated(wildcards):
        protocols.append("truth")
    return ",".join(dict.fromkeys(protocols))


def panel_genes(wildcards):
    return ",".join(config["evaluate"]["genes"].get(wildcards.sample, []))


def pretrain_scratch(wildcards):
    """Checkpoint folder of an unfinished pretrain, keyed by the settings.

    An interrupted pretrain resumes from it; changed settings start afresh.
    """
    # the device and checkpoint interval do not change the result
    train = {
        k: v
        for k, v in config["train"].items()
        if k not in ("device", "checkpoint_every")
    }
    key = json.dumps([config["model"], train], sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return f"results/{wildcards.sample}/.pretrain-{digest}"


def species(wildcards):
    return sample_row(wildcards)["species"]


_BUILTIN_RESOURCES = {"threads": 2, "mem_mb": 4000, "runtime": 60}


def res(rule, key):
    """Resources of a rule from config `resources` (falls back to `default`)."""
    fallback = config["resources"].get("default", {}).get(key, _BUILTIN_RESOURCES[key])
    return (config["resources"].get(rule) or {}).get(key, fallback)


# GPU rules run in the CUDA environment when asked to (config gpu_env)
GPU_ENV = (
    "../envs/stentrans-cuda.yaml" if config["gpu_env"] else "../envs/stentrans.yaml"
)
CPU_ENV = "../envs/stentrans.yaml"


# ---------------------------------------------------------------- targets


def sample_outputs():
    """The per-sample results of `rule all` (whose jobs the benchmark table covers)."""
    out = []
    for s in SAMPLES:
        out += [
            f"results/{s}/enhanced.h5ad",
            f"results/{s}/figures/enhanced_genes.png",
            f"results/{s}/evaluate/summary.tsv",
            f"results/{s}/evaluate/boxplot.png",
            f"results/{s}/evaluate/gene_panels.png",
        ]
        if s in config["ablation"]["samples"]:
            out.append(f"results/{s}/ablation/table1.tsv")
        if s in config["patterns"]["samples"]:
            out += [
                f"results/{s}/patterns/summary.json",
                f"results/{s}/patterns/new_terms.tsv",
            ]
    return out


PAGE_DIR = config["results_page"]["dir"].rstrip("/")


def results_page_inputs(wildcards):
    return {
        "outputs": sample_outputs(),
        "benchmarks": "results/summary/benchmarks.tsv",
        "run_info": "results/summary/run_info.yaml",
    }


def all_outputs():
    """Everything `rule all` asks for."""
    return sample_outputs() + [
        f"{PAGE_DIR}/results.md",
        "results/summary/median_pcc.tsv",
        "results/summary/median_pcc.png",
        "results/summary/benchmarks.tsv",
        "results/summary/run_info.yaml",
    ]
