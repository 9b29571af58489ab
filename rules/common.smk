import hashlib
import json
import os
import re

import pandas as pd
import yaml
from snakemake.utils import validate

# envs/*.yaml install this checkout's package: pip -e ${STENTRANS_CHECKOUT}
os.environ.setdefault("STENTRANS_CHECKOUT", workflow.basedir)

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


def _schema_enum(name):
    """A list of the config schema's definitions (it mirrors the method registry; tests/test_workflow.py checks it)."""
    with open(os.path.join(workflow.basedir, "schemas", "config.schema.yaml")) as fh:
        return yaml.safe_load(fh)["definitions"][name]["enum"]


# network methods enhance with the pretrain rule's checkpoint; the others are
# fitted in the enhance job. Derived, not set by users: the report reads it.
NETWORK_METHODS = _schema_enum("network_method")
config["enhance"]["pretrained"] = config["enhance"]["method"] in NETWORK_METHODS
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
    for name, row in samples[samples["format"] == "cells"].iterrows():
        if row["enabled"] and "bin_size" not in config["binning"].get(name, {}):
            raise ValueError(
                f"sample {name} has format `cells`: give binning.{name}.bin_size in the config"
            )
    for name, row in samples[samples["format"] == "finer"].iterrows():
        if not row["enabled"]:
            continue
        if "spacing" not in config["binning"].get(name, {}):
            raise ValueError(
                f"sample {name} has format `finer`: give binning.{name}.spacing in the config"
            )
        if row["lattice"] not in ("hex", "square"):
            raise ValueError(
                f"{config['samples']}: sample {name}: lattice {row['lattice']!r}: "
                "a `finer` sample is binned onto hex or square, say which"
            )


_check_sample_lists()


def sample_row(wildcards):
    return samples.loc[wildcards.sample]


# ---------------------------------------------------------------- the results tree

# every per-sample result by kind: the rules' outputs, `rule all` and the
# results page take their paths from here (the package is given the paths)
RESULTS = {
    "qc": "results/{sample}/qc.h5ad",
    "model": "results/{sample}/model.pt",
    "grid": "results/{sample}/grid/mapping.json",
    "grid_figure": "results/{sample}/grid/lattice_mapping.png",
    "enhanced": "results/{sample}/enhanced.h5ad",
    "enhanced_genes": "results/{sample}/figures/enhanced_genes.png",
    "interval_map": "results/{sample}/figures/intervals.png",
    # evaluate writes these names into one folder
    "per_gene": "results/{sample}/evaluate/per_gene.tsv",
    "summary": "results/{sample}/evaluate/summary.tsv",
    "summary_md": "results/{sample}/evaluate/summary.md",
    "boxplot": "results/{sample}/evaluate/boxplot.png",
    "gene_panels": "results/{sample}/evaluate/gene_panels.png",
    # rule downstream (samples with a truth)
    "downstream": "results/{sample}/downstream/downstream.tsv",
    # the ablation run, likewise
    "ablation_per_gene": "results/{sample}/ablation/per_gene.tsv",
    "ablation": "results/{sample}/ablation/summary.tsv",
    "table1": "results/{sample}/ablation/table1.tsv",
    "table1_md": "results/{sample}/ablation/table1.md",
    # stentrans.tl.run_patterns writes these names into one folder
    "ranking": "results/{sample}/patterns/ranking.tsv",
    "families": "results/{sample}/patterns/families_enhanced.tsv",
    "ranked_genes": "results/{sample}/patterns/fig4b_ranked_genes.png",
    "family_summary": "results/{sample}/patterns/fig4c_family_summary.png",
    "new_terms_plot": "results/{sample}/patterns/fig4d_new_terms.png",
    "new_terms": "results/{sample}/patterns/new_terms.tsv",
    "patterns": "results/{sample}/patterns/summary.json",
}
SUMMARY = {
    "median_pcc": "results/summary/median_pcc.tsv",
    "median_pcc_md": "results/summary/median_pcc.md",
    "median_pcc_png": "results/summary/median_pcc.png",
    "benchmarks": "results/summary/benchmarks.tsv",
    "run_info": "results/summary/run_info.yaml",
}
# pseudo-spots of `finer` samples and their truth at the enhanced positions
FINER = {
    "spots": "resources/pseudospots/{sample}.h5ad",
    "truth": "resources/pseudospots/{sample}_truth.h5ad",
}
# every job writes its benchmark file to BENCHMARKS/<rule name>/<job>.tsv
BENCHMARKS = "results/benchmarks"


def result(kind, sample):
    return RESULTS[kind].format(sample=sample)


def sample_kinds(sample):
    """The kinds of result `rule all` asks for of a sample."""
    kinds = ["grid", "grid_figure", "enhanced", "enhanced_genes"]
    if config["enhance"].get("interval", 0):
        kinds += ["interval_map"]
    kinds += ["per_gene", "summary", "boxplot", "gene_panels"]
    if config["downstream"]["enabled"] and has_truth(sample):
        kinds += ["downstream"]
    if sample in config["ablation"]["samples"]:
        kinds += ["ablation", "table1"]
    if sample in config["patterns"]["samples"]:
        kinds += ["patterns", "new_terms", "ranked_genes", "family_summary"]
        kinds += ["new_terms_plot"]
    return kinds


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


def is_finer(wildcards):
    return sample_row(wildcards)["format"] == "finer"


def has_truth(sample):
    """A sample with a truth at every position: simulated, or binned from finer data."""
    row = samples.loc[sample]
    return row["source"] == "simulate" or row["format"] == "finer"


def qc_input(wildcards):
    if sample_row(wildcards)["format"] == "cells":
        return f"resources/binned/{wildcards.sample}.h5ad"
    if is_finer(wildcards):
        return FINER["spots"].format(sample=wildcards.sample)
    return raw_data(wildcards)


def path_sha256(wildcards):
    """Expected hash of a `path` source (downloads are checked when fetched)."""
    row = sample_row(wildcards)
    return row["sha256"] if row["source"] == "path" else ""


def qc_sha256(wildcards):
    """The hash qc checks: none for binned data (bin_cells / bin_finer check the file)."""
    binned = sample_row(wildcards)["format"] in ("cells", "finer")
    return "" if binned else path_sha256(wildcards)


def binning_settings(wildcards):
    return config["binning"][wildcards.sample]


def enhance_inputs(wildcards):
    """A network method enhances with the pretrain rule's checkpoint; the others are fitted in the job.

    The lattice mapping of the grid rule is checked against the enhanced spots.
    """
    out = {
        "data": result("qc", wildcards.sample),
        "grid": result("grid", wildcards.sample),
    }
    if config["enhance"]["pretrained"]:
        out["model"] = result("model", wildcards.sample)
    return out


def eval_setting(key):
    """evaluate.<key>, or its per-sample override (evaluate.samples.<sample>.<key>)."""

    def get(wildcards):
        over = config["evaluate"]["samples"].get(wildcards.sample, {})
        return over.get(key, config["evaluate"][key])

    return get


def evaluate_inputs(wildcards):
    """The QC'd sample, and for `finer` samples their truth (protocol realtruth)."""
    out = {"data": result("qc", wildcards.sample)}
    if is_finer(wildcards):
        out["truth"] = FINER["truth"].format(sample=wildcards.sample)
    return out


def panel_genes(wildcards):
    return list(config["evaluate"]["genes"].get(wildcards.sample, []))


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
    return f"{os.path.dirname(result('model', wildcards.sample))}/.pretrain-{digest}"


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
    return [result(k, s) for s in SAMPLES for k in sample_kinds(s)]


PAGE_DIR = config["results_page"]["dir"].rstrip("/")


def page_files(wildcards=None):
    """Per sample, the files the results page reads: {sample: {kind: path}}."""
    unused = ("enhanced", "table1")
    return {
        s: {k: result(k, s) for k in sample_kinds(s) if k not in unused}
        for s in SAMPLES
    }


def results_page_inputs(wildcards):
    out = {
        "outputs": [p for files in page_files().values() for p in files.values()],
        "benchmarks": SUMMARY["benchmarks"],
        "run_info": SUMMARY["run_info"],
    }
    if config["results_page"].get("realtruth_benchmark"):
        out["realtruth_doc"] = config["results_page"]["realtruth_benchmark"]
    return out


def all_outputs():
    """Everything `rule all` asks for."""
    return sample_outputs() + [
        f"{PAGE_DIR}/results.md",
        f"{PAGE_DIR}/results.html",
        SUMMARY["median_pcc"],
        SUMMARY["median_pcc_png"],
        SUMMARY["benchmarks"],
        SUMMARY["run_info"],
    ]
