"""The Snakemake workflow: lint, formatting, rule layout, one script style, the
config schema against the method registry, the conda envs installing the
package, dry-runs (demo, paper, SLURM), the command and description a run
records, binning of cell-level data, and the demo end to end (slow).

Every run works in a folder of its own (:func:`workdir`, or a copy of the
workflow), never in the checkout: what the user already ran there (the demo's
results/, .snakemake/) must not change what these tests see."""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import DATA, GENESETS, REPO

# docs/realtruth.md: the real-truth benchmark page config/paper.yaml's results page shows
WORKFLOW_PARTS = ["Snakefile", "config.yaml", "config", "schemas", "rules", "scripts", "envs", "profiles", "report", "stentrans", "docs/realtruth.md"]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def smk(args, cwd, timeout=300, env=None) -> subprocess.CompletedProcess:
    """Run snakemake; stdout and stderr together in ``.stdout``."""
    return subprocess.run(SNAKEMAKE + [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def show(proc) -> str:
    out = proc.stdout + (proc.stderr or "")
    return out[-6000:]


def job_counts(output: str) -> dict[str, int]:
    """The `Job stats` table of a (dry) run."""
    counts = {}
    block = output.split("Job stats:", 1)[-1]
    for line in block.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m and m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


def job_blocks(output: str, rule: str) -> list[str]:
    """The dry-run description of every job of ``rule``."""
    parts = re.split(r"\n(?=\[[^\]]+\]\n)", output)
    return [p for p in parts if re.search(rf"^(local)?rule {rule}:", p, flags=re.M)]


def copy_workflow(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in WORKFLOW_PARTS:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def workdir(tmp_path: Path) -> Path:
    """An empty working directory holding this workflow, for runs that must not see the checkout's state.

    Whatever the user already ran in the checkout (the demo's ``results/``,
    ``.snakemake/`` metadata, locks, incomplete markers) changes what
    Snakemake plans there; a dry run or lint from this folder plans from
    nothing and writes nothing into the checkout. The workflow files are
    symlinked (copied where links are not allowed), and ``../shared`` beside
    it points to the checkout's ``../shared``, which config/paper.yaml names.
    """
    wf = tmp_path / "wf"
    if wf.is_dir():
        return wf
    wf.mkdir()
    links = [(wf / name, REPO / name) for name in WORKFLOW_PARTS]
    if (REPO.parent / "shared").exists() and not (tmp_path / "shared").exists():
        links.append((tmp_path / "shared", (REPO.parent / "shared").resolve()))
    for dest, src in links:
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            dest.symlink_to(src, target_is_directory=src.is_dir())
        except OSError:
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest)
    return wf


def write_yaml(path: Path, data: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def demo_overrides(tmp_path: Path) -> list[str]:
    """--configfile for a demo dry-run where ../shared/genesets may be absent."""
    if (GENESETS / "GO_BP_human_propagated.gmt").is_file():
        return []
    return ["--configfile", write_yaml(tmp_path / "no_gmt.yaml", {"patterns": {"samples": []}})]


# ---------------------------------------------------------------- static checks


def test_lint_is_clean(tmp_path):
    proc = smk(["--lint", *demo_overrides(tmp_path)], cwd=workdir(tmp_path), timeout=120)
    assert proc.returncode == 0, show(proc)
    assert "Congratulations, your workflow is in a good condition" in proc.stdout + proc.stderr, show(proc)
    assert "Lints for" not in proc.stdout + proc.stderr, show(proc)


def test_snakefmt_check():
    proc = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "."], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_rule_has_log_benchmark_and_env():
    rules = _rules()
    assert len(rules) >= 12
    for name, body in rules:
        for directive in ("log:", "benchmark:", "conda:", "threads:", "resources:", "script:"):
            assert f"    {directive}" in body, f"rule {name} has no {directive}"
        assert (REPO / "scripts" / re.search(r'"\.\./scripts/(\w+\.py)"', body).group(1)).is_file()
    gpu_rules = {n for n, b in rules if "gpu=1" in b}
    assert gpu_rules == {"pretrain", "enhance", "evaluate", "ablation", "patterns"}


#: the directives of a rule, in the order every rule file writes them (pyproject.toml [tool.snakefmt])
DIRECTIVE_ORDER = ["input", "output", "log", "benchmark", "params", "threads", "resources", "localrule", "conda", "script"]


def _rules() -> list[tuple[str, str]]:
    """(name, body) of every rule of rules/*.smk; a body is the indented block under ``rule NAME:``."""
    text = "\n".join(p.read_text() for p in sorted((REPO / "rules").glob("*.smk")))
    return re.findall(r"^rule (\w+):\n((?:[ \t]+\S.*\n|[ \t]*\n)*)", text + "\n", flags=re.M)


def test_rules_write_their_directives_in_one_order():
    for name, body in _rules():
        found = re.findall(r"^    (\w+):", body, flags=re.M)
        assert set(found) <= set(DIRECTIVE_ORDER), (name, found)
        assert found == sorted(found, key=DIRECTIVE_ORDER.index), f"rule {name}: {found}"


def test_scripts_are_thin_calls_of_the_api():
    """One script style: `run(snakemake, main)`, no argv strings parsed again, no sys.path edits."""
    scripts = sorted(p for p in (REPO / "scripts").glob("*.py") if p.name != "_common.py")
    assert len(scripts) >= 14
    for path in scripts:
        text = path.read_text()
        assert text.rstrip().endswith("run(snakemake, main)  # noqa: F821"), path.name
        for banned in ("argparse", "run_cli", "build_parser", "sys.path", "argv"):
            assert banned not in text, (path.name, banned)
        assert len(text.splitlines()) <= 60, f"{path.name}: move its logic into the package"
    common = (REPO / "scripts" / "_common.py").read_text()
    assert "sys.path.insert" not in common and "parents[1]" not in common  # the package comes from the env


def test_config_schema_lists_the_registry_methods():
    import yaml

    from stentrans.models.registry import METHODS, names

    schema = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())
    assert schema["definitions"]["method"]["enum"] == list(METHODS)
    # the methods that enhance with the pretrain rule's checkpoint (rules/common.smk reads this list)
    assert schema["definitions"]["network_method"]["enum"] == list(names("network"))


def test_config_schema_lists_the_protocol_table():
    """The schema's protocols are the table's protocols that need only the measured spots; evaluate.truth adds the others."""
    import yaml

    from stentrans.tl import PROTOCOLS

    schema = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())
    assert schema["definitions"]["protocol"]["enum"] == [n for n, p in PROTOCOLS.items() if p.needs is None]
    assert {p.needs for p in PROTOCOLS.values()} - {None} == {"simulation", "finer"}, "a new kind of truth: say in rules/common.smk which samples have it"


def test_config_readme_documents_every_section():
    import yaml

    schema = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())
    samples = yaml.safe_load((REPO / "schemas" / "samples.schema.yaml").read_text())
    readme = (REPO / "config" / "README.md").read_text()
    missing = [k for k in [*schema["properties"], *samples["properties"]] if f"| `{k}` |" not in readme]
    assert not missing, f"config/README.md does not document {missing}"


def test_conda_envs_install_this_checkout(tmp_path):
    """envs/*.yaml: pip installs the package from STENTRANS_CHECKOUT, which rules/common.smk sets.

    Snakemake copies an env file into .snakemake/conda/ and conda runs pip
    there with the pip entries as a requirements file (-r), so a relative
    path would resolve against that copy; here the same pip step runs from
    such a folder, offline and as a dry run.
    """
    import yaml

    assert 'os.environ.setdefault("STENTRANS_CHECKOUT", workflow.basedir)' in (REPO / "rules" / "common.smk").read_text()
    import tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["spatialdata"] and set(extras["spatialdata"]) <= set(extras["test"])
    # the CPU env (every CPU rule) mirrors the package's `spatialdata` extra after the checkout itself
    for name, rest in (("stentrans.yaml", extras["spatialdata"]), ("stentrans-cuda.yaml", [])):
        deps = yaml.safe_load((REPO / "envs" / name).read_text())["dependencies"]
        assert "pip" in deps, name
        (pip,) = [d["pip"] for d in deps if isinstance(d, dict)]
        assert pip == ["-e ${STENTRANS_CHECKOUT}", *rest], (name, pip)
    pip = pip[:1]  # the checkout (offline: no index for the rest)
    conda_dir = tmp_path / ".snakemake" / "conda"
    conda_dir.mkdir(parents=True)
    req = conda_dir / "condaenv.requirements.txt"
    req.write_text("\n".join(pip) + "\n")
    env = dict(os.environ, STENTRANS_CHECKOUT=str(REPO), PIP_NO_INDEX="1")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-build-isolation", "-r", req.name], cwd=conda_dir, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0 and "Would install stentrans" in proc.stdout, proc.stdout + proc.stderr


# ---------------------------------------------------------------- dry runs


def test_dry_run_demo(tmp_path):
    proc = smk(["-n", "--cores", "2", *demo_overrides(tmp_path)], cwd=workdir(tmp_path), timeout=120)
    assert proc.returncode == 0, show(proc)
    counts = job_counts(proc.stdout)
    # the users' default is the robust method: fitted inside the enhance job, no pretrain
    for rule, n in {"simulate": 2, "qc": 2, "grid": 2, "enhance": 2, "evaluate": 2, "downstream": 2, "plot_enhanced": 2, "summarize": 1, "benchmarks": 1, "run_info": 1}.items():
        assert counts.get(rule) == n, (rule, counts)
    assert "pretrain" not in counts, counts
    assert all("--variant" not in b and "model.pt" not in b for b in job_blocks(proc.stdout, "enhance"))
    # the grid stage sits between qc and enhance: enhance reads its mapping
    assert all("grid/mapping.json" in b.split("output:")[0] for b in job_blocks(proc.stdout, "enhance"))
    assert all("qc.h5ad" in b.split("output:")[0] for b in job_blocks(proc.stdout, "grid"))
    assert "download" not in counts  # the demo is offline
    if not demo_overrides(tmp_path):
        assert counts.get("patterns") == 1, counts
    # enhance.method: stentrans (a network method) puts the pretrain rule back in front of enhance
    paper = write_yaml(tmp_path / "paper_method.yaml", {"enhance": {"method": "stentrans"}})
    proc = smk(["-n", "--cores", "2", "--configfile", *demo_overrides(tmp_path)[1:], paper], cwd=workdir(tmp_path), timeout=120)
    assert proc.returncode == 0, show(proc)
    counts = job_counts(proc.stdout)
    assert counts.get("pretrain") == 2 and counts.get("enhance") == 2, counts
    assert all("model.pt" in b.split("output:")[0] for b in job_blocks(proc.stdout, "enhance"))
    # the default profile serialises GPU jobs: pretrain asks for one GPU
    assert all("gpu=1" in b for b in job_blocks(proc.stdout, "pretrain"))


def test_dry_run_paper(tmp_path):
    if not DATA.is_dir():
        pytest.skip(f"real data folder not found: {DATA} (see ../shared/README.md)")
    proc = smk(["-n", "--cores", "2", "--configfile", "config/paper.yaml"], cwd=workdir(tmp_path), timeout=180)
    assert proc.returncode == 0, show(proc)
    counts = job_counts(proc.stdout)
    # offline as shipped: HM, MP and AMHB (stand-ins binned from the shared STARmap and
    # Stereo-seq data), HBC (the ST breast cancer stand-in) and the two real Visium sets;
    # HBC_visium/MBSP/IDC (URLs) are listed but disabled
    assert "download" not in counts, counts
    assert counts.get("qc") == 6 and counts.get("bin_finer") == 2, counts
    # the paper's network: pretrain, then enhance with its checkpoint
    assert counts.get("pretrain") == 6 and counts.get("enhance") == 6 and counts.get("evaluate") == 6, counts
    assert counts.get("ablation") == 4, counts  # HM, MP, AMHB, HBC (MBSP, IDC when enabled)
    # MP and AMHB: binned from the stand-ins, scored against their real truth too
    for name, src in (("MP", "starmap_visp_1020genes_cells.h5ad"), ("AMHB", "stereoseq_bin1_crop.gem.gz")):
        (blk,) = [b for b in job_blocks(proc.stdout, "bin_finer") if f"resources/pseudospots/{name}.h5ad" in b]
        assert f"../shared/data/finer/{src}" in blk and f"resources/pseudospots/{name}_truth.h5ad" in blk
        (ev,) = [b for b in job_blocks(proc.stdout, "evaluate") if f"results/{name}/evaluate" in b]
        assert f"resources/pseudospots/{name}_truth.h5ad" in ev
    assert counts.get("patterns") == 1, counts  # melanoma, as Fig. 4
    assert counts.get("results_page") == 1, counts
    (page,) = job_blocks(proc.stdout, "results_page")
    assert "docs/realtruth.md" in page.split("output:")[0]  # the benchmark's 16 real-truth cases on the page
    assert "bin_cells" not in counts
    qc_inputs = " ".join(b.split("output:")[0] for b in job_blocks(proc.stdout, "qc"))
    assert "../shared/data/melanoma_mel1_rep1.tsv.gz" in qc_inputs
    assert "../shared/data/visium_mouse_cytassist" in qc_inputs
    assert "../shared/data/st_breast_layers/Layer2_BC_count_matrix-1.tsv.gz" in qc_inputs  # the HBC stand-in

    # with network: switching the 10x rows on downloads them
    table = (REPO / "config" / "samples_paper.tsv").read_text()
    rows = [ln if not ln.split("\t")[0] in ("HBC_visium", "MBSP", "IDC") else ln.rsplit("\t", 1)[0] + "\ttrue" for ln in table.splitlines()]
    online = tmp_path / "samples_online.tsv"
    online.write_text("\n".join(rows) + "\n")
    over = write_yaml(tmp_path / "online.yaml", {"samples": str(online)})
    proc = smk(["-n", "--cores", "2", "--configfile", "config/paper.yaml", over], cwd=workdir(tmp_path), timeout=180)
    assert proc.returncode == 0, show(proc)
    counts = job_counts(proc.stdout)
    assert counts.get("download") == 3 and counts.get("qc") == 9 and counts.get("ablation") == 6, counts
    qc_inputs = " ".join(b.split("output:")[0] for b in job_blocks(proc.stdout, "qc"))
    assert "resources/download/IDC" in qc_inputs


def test_paper_settings():
    import yaml

    cfg = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    assert cfg["evaluate"]["seeds"] == 5
    assert set(cfg["evaluate"]["methods"]) == {"stentrans", "robust", "dist", "linear", "cubic", "nn", "nedi"}
    assert set(cfg["evaluate"]["protocols"]) == {"paper", "nested", "heldout-genes"}
    assert cfg["patterns"]["samples"] == ["HM"]
    assert cfg["enhance"]["method"] == "stentrans"  # the paper's network for Fig. 4
    assert cfg["results_page"]["paper_new_terms"] == 79
    # the paper's Table 1 beside ours (../shared/docs/paper_numbers.md)
    assert cfg["results_page"]["paper_table1"]["HM"]["stentrans-nopos"] == "0.581 ± 0.017"
    assert set(cfg["results_page"]["paper_table1"]) == {"HM", "MP", "AMHB", "HBC", "MBSP", "IDC"}
    reduced = yaml.safe_load((REPO / "config" / "paper_reduced.yaml").read_text())
    assert reduced["results_page"]["dir"] == "docs" and reduced["evaluate"]["seeds"] == 3
    table = pd.read_csv(REPO / "config" / "samples_paper.tsv", sep="\t", comment="#", dtype=str, keep_default_na=False)
    assert {"HM", "MP", "AMHB", "HBC", "MBSP", "IDC"} <= set(table["sample"])
    hm = table.set_index("sample").loc["HM"]
    assert hm["sha256"] == "0b85ad5f478dad8e34c97e0028b9caea71edf489d559027c79db9c96af4034f4"
    for sid, name in {"HBC_visium": "V1_Breast_Cancer_Block_A_Section_1", "MBSP": "V1_Mouse_Brain_Sagittal_Posterior", "IDC": "V1_Human_Invasive_Ductal_Carcinoma"}.items():
        assert name in table.set_index("sample").loc[sid, "location"]
    # HBC: the ST breast cancer stand-in (layer 2), under nested and lost, said on the page, in both configs
    for tsv in ("samples_paper.tsv", "samples_paper_reduced.tsv"):
        t = pd.read_csv(REPO / "config" / tsv, sep="\t", comment="#", dtype=str, keep_default_na=False).set_index("sample")
        hbc = t.loc["HBC"]
        assert (hbc["location"], hbc["format"], hbc["lattice"], hbc["enabled"]) == ("../shared/data/st_breast_layers/Layer2_BC_count_matrix-1.tsv.gz", "st-table", "square", "true")
        assert hbc["sha256"] == "1ad44ddae8b878099fd628801f20192e59d2484c18829c4e9700694ab057fd1f"  # ../shared/README.md
    for c in (cfg, reduced):
        assert c["evaluate"]["samples"]["HBC"]["protocols"] == ["nested", "lost"]
    assert "Stahl et al. 2016" in cfg["results_page"]["stand_ins"]["HBC"] and "not reachable" in cfg["results_page"]["stand_ins"]["HBC"]
    assert set(cfg["results_page"]["stand_ins"]) == {"MP", "AMHB", "HBC"}
    assert "HBC stand-in" in reduced["results_page"]["notes"]


def test_slurm_profile_requests_gpus(tmp_path):
    profile = REPO / "profiles" / "slurm"
    if shutil.which("conda") is None:
        # dry-runs with conda deployment call `conda info`; everything else as shipped
        profile = tmp_path / "slurm"
        profile.mkdir()
        lines = (REPO / "profiles" / "slurm" / "config.yaml").read_text().splitlines(keepends=True)
        (profile / "config.yaml").write_text("".join(ln for ln in lines if not ln.startswith("software-deployment-method")))
    # the paper's network, so pretrain is in the DAG too
    files = [*demo_overrides(tmp_path)[1:], write_yaml(tmp_path / "paper_method.yaml", {"enhance": {"method": "stentrans"}})]
    proc = smk(["--profile", profile, "-n", "--configfile", *files], cwd=workdir(tmp_path), timeout=180)
    assert proc.returncode == 0, show(proc)
    out = proc.stdout + proc.stderr
    assert "Using profile" in out
    for rule in ("pretrain", "enhance", "evaluate"):
        blocks = job_blocks(proc.stdout, rule)
        assert blocks, rule
        for b in blocks:
            res = re.search(r"resources: (.*)", b).group(1)
            assert "gpu=1" in res and "slurm_partition=your_gpu_partition" in res, (rule, res)
    for b in job_blocks(proc.stdout, "qc"):
        res = re.search(r"resources: (.*)", b).group(1)
        assert "gpu" not in res and "slurm_partition=your_cpu_partition" in res, res
    # and the plugin turns the rule's gpu=1 into an sbatch GPU request
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    class Res(dict):
        __getattr__ = dict.__getitem__

    class Job:
        resources = Res(gpu=1)

    assert set_gres_string(Job()).strip() == "--gpus=1"


def test_config_errors_are_one_clear_line(tmp_path):
    bad = tmp_path / "samples.tsv"
    bad.write_text("sample\tsource\tlocation\tformat\tlattice\tsha256\tspecies\nsim\tsimulate\tsquare:huge\th5ad\tsquare\t\thuman\n")
    cfg = write_yaml(tmp_path / "bad.yaml", {"samples": str(bad), "patterns": {"samples": []}})
    proc = smk(["-n", "--cores", "1", "--configfile", cfg], cwd=workdir(tmp_path), timeout=120)
    assert proc.returncode != 0
    assert "square:huge" in proc.stdout + proc.stderr
    bad.write_text("sample\tsource\tlocation\tformat\tlattice\tsha256\tspecies\nsim\tftp\tx\th5ad\tsquare\t\thuman\n")
    proc = smk(["-n", "--cores", "1", "--configfile", cfg], cwd=workdir(tmp_path), timeout=120)
    assert proc.returncode != 0 and "ftp" in proc.stdout + proc.stderr


# ---------------------------------------------------------------- what the run records


def report_description(html_path: Path) -> str:
    """The workflow description of a `snakemake --report` HTML file, as plain text."""
    html = html_path.read_text(errors="replace")
    m = re.search(r'var workflow_desc = (".*?");\n', html, flags=re.S)
    assert m, "no workflow description in the report"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", json.loads(m.group(1))))


def report_results(html_path: Path) -> dict:
    """The result entries of a `snakemake --report` HTML file: path -> {mime_type, data_uri, caption, ...}."""
    html = html_path.read_text(errors="replace")
    m = re.search(r"var results = (\{.*?\});\n", html, flags=re.S)
    assert m, "no results in the report"
    return json.loads(m.group(1))


def report_page_is_shown_as_html(html_path: Path, page_html: Path) -> None:
    """The results page is a report item the report shows in place: text/html, the very file the rule wrote."""
    import base64

    results = report_results(html_path)
    (entry,) = [v for k, v in results.items() if k.endswith("page/results.html")]
    assert entry["mime_type"] == "text/html", entry["mime_type"]
    assert base64.b64decode(entry["data_uri"].split(",", 1)[1]) == page_html.read_bytes()
    assert not [k for k in results if k.endswith(".md")]  # the report opens nothing for Markdown


def test_run_records_its_command_and_the_report_describes_what_ran(tmp_path):
    """run_info and the results page get the command that was run; the HTML report describes the method that ran."""
    import yaml

    from stentrans.report.run import COMMAND_ENV, describe_run

    wf = workdir(tmp_path)
    cfg = [str(a) for a in demo_overrides(tmp_path)]
    target = "results/summary/run_info.yaml"
    env = {k: v for k, v in os.environ.items() if k != COMMAND_ENV}
    args = ["--cores", "1", *cfg, "--", target]
    proc = smk(args, cwd=wf, timeout=300, env=env)
    assert proc.returncode == 0, show(proc)
    info = yaml.safe_load((wf / target).read_text())
    assert info["command"] == shlex.join(["snakemake", *args])  # not the job's own argv
    demo = yaml.safe_load((REPO / "config.yaml").read_text())
    settings = {k: demo[k] for k in ("evaluate", "model", "train", "enhance")}
    run = describe_run(info, settings, info["command"], ["a"], fallback="snakemake --cores all")
    assert run["command"] == f"`{shlex.join(['snakemake', *args])}`"
    assert describe_run(info, settings, None, ["a"])["command"] == "not known (the run did not record its command)"
    assert "did not record" in describe_run(info, settings, None, ["a"], fallback="snakemake -c4")["command"]

    # the demo config: the robust method, fitted in the enhance job, no pretrain job
    # (the report of the finished target: its description is the workflow's)
    rep = smk(["--report", "demo.html", *cfg, "--", target], cwd=wf, timeout=180, env=env)
    assert rep.returncode == 0, show(rep)
    text = report_description(wf / "demo.html")
    assert "with the method robust" in text and "fitted inside the enhance job: there is no pretrain job" in text, text
    assert "pretrained" not in text and f"({demo['train']['epochs']} epochs" not in text, text
    assert f"trained inside each evaluation on the down-sampled data ({demo['evaluate']['epochs']} epochs" in text, text
    assert ("rule patterns" in text) == (not cfg) and "rule ablation" not in text, text  # demo: patterns on sim_square (unless switched off above), no ablation
    # what the default does: two working scales, not one library-size normalisation
    assert "fitted twice, on library-size-normalised and on raw counts" in text and "averaged per gene" in text, text
    assert "library-size normalisation" not in text, text
    if not cfg:  # the demo's 40 simulated genes are fewer than patterns.top (150): all of them are grouped
        n_sim, top = demo["simulate"]["n_genes"], demo["patterns"]["top"]
        assert n_sim < top and f"groups all of them (the simulated samples have {n_sim} genes, patterns.top is {top}) into pattern families" in text, text
        assert f"top {top}" not in text, text
    # the paper's network: the pretrain rule, with the train settings
    paper = write_yaml(tmp_path / "paper_method.yaml", {"enhance": {"method": "stentrans"}, "train": {"epochs": 7}, "ablation": {"samples": ["sim_hex"]}, "patterns": {"top": 20}})
    rep = smk(["--report", "paper.html", "--configfile", *cfg[1:], paper, "--", target], cwd=wf, timeout=180, env=env)
    assert rep.returncode == 0, show(rep)
    text = report_description(wf / "paper.html")
    assert "with the method stentrans" in text and "pretrained by rule pretrain" in text and "(7 epochs" in text, text
    assert "no pretrain job" not in text and "rule ablation" in text, text
    assert "fitted twice" not in text, text
    if not cfg:
        assert f"groups the top 20 genes of the {demo['simulate']['n_genes']} simulated ones into pattern families" in text, text


def _caption(name: str, config: dict, sample: str = "s") -> str:
    """A report caption rendered as Snakemake renders it (Jinja2, trim_blocks and lstrip_blocks), as plain text."""
    from types import SimpleNamespace

    from jinja2 import Environment

    env = Environment(trim_blocks=True, lstrip_blocks=True)
    job = SimpleNamespace(config=config, wildcards=SimpleNamespace(sample=sample))
    return re.sub(r"\s+", " ", env.from_string((REPO / "report" / name).read_text()).render(snakemake=job)).strip()


def test_fig4c_caption_names_the_genes_grouped():
    """Fig. 4c's caption: the demo groups all its 40 simulated genes (patterns.top 150 is more); a smaller top is said as such."""
    import yaml

    demo = yaml.safe_load((REPO / "config.yaml").read_text())
    n_sim, top = demo["simulate"]["n_genes"], demo["patterns"]["top"]
    assert demo["patterns"]["gmt"] == "planted" and n_sim < top
    text = _caption("fig4c.rst", demo)
    assert f"pattern families of all {n_sim} simulated genes, ranked by Sepal, in the measured" in text and f"top {top}" not in text, text
    fewer = {**demo, "patterns": {**demo["patterns"], "top": 20}}
    assert "pattern families of the top 20 Sepal-ranked genes in the measured" in _caption("fig4c.rst", fewer)
    gmt = {**demo, "patterns": {**demo["patterns"], "gmt": "GO_BP.gmt"}}  # real samples: the configured top
    assert f"the top {top} Sepal-ranked genes" in _caption("fig4c.rst", gmt)


# ---------------------------------------------------------------- binning


def _cells(n=600, seed=0):
    rng = np.random.default_rng(seed)
    xy = pd.DataFrame({"x": rng.uniform(0, 1000, n), "y": rng.uniform(0, 700, n)}, index=[f"cell{i}" for i in range(n)])
    counts = pd.DataFrame(rng.poisson(2.0, (n, 6)), columns=[f"G{i}" for i in range(6)], index=xy.index)
    return xy, counts


def test_bin_cells_sums_counts_on_a_square_lattice(tmp_path):
    import stentrans
    from stentrans.io import bin_cells

    xy, counts = _cells()
    a = bin_cells(xy, counts, 100.0)
    assert list(a.var_names) == list(counts.columns)
    assert a.X.sum() == pytest.approx(counts.to_numpy().sum())
    assert a.obs["n_cells"].sum() == len(xy)
    # every cell lands in the square holding it
    i = np.floor((xy["x"] - xy["x"].min()) / 100).astype(int)
    j = np.floor((xy["y"] - xy["y"].min()) / 100).astype(int)
    ids = [f"{a_}x{b_}" for a_, b_ in zip(i, j)]
    expect = counts.groupby(ids).sum()
    got = pd.DataFrame(a.X.toarray(), index=a.obs_names, columns=a.var_names)
    pd.testing.assert_frame_equal(got.loc[expect.index].astype(float), expect.astype(float), check_names=False)
    assert (a.obs["array_col"].to_numpy() == [int(s.split("x")[0]) for s in a.obs_names]).all()
    centre = a.obsm["spatial"][0]
    assert centre[0] == pytest.approx(xy["x"].min() + (a.obs["array_col"].iloc[0] + 0.5) * 100)
    path = tmp_path / "binned.h5ad"
    a.write_h5ad(path)
    back = stentrans.read(path)
    assert back.uns["stentrans"]["lattice"] == "square"
    assert back.n_obs == a.n_obs


def test_bin_molecules_and_min_cells():
    from stentrans.io import bin_cells

    mol = pd.DataFrame({"x": [0.5, 1.5, 0.2, 12.0, 12.5], "y": [0.5, 0.1, 0.9, 0.5, 0.6], "gene": ["A", "B", "A", "B", "B"]})
    a = bin_cells(mol, None, 2.0, origin=(0.0, 0.0))
    got = pd.DataFrame(a.X.toarray(), index=a.obs_names, columns=a.var_names)
    assert got.loc["0x0", "A"] == 2 and got.loc["0x0", "B"] == 1 and got.loc["6x0", "B"] == 2
    assert a.uns["stentrans"]["binning"]["unit"] == "molecules"
    b = bin_cells(mol, None, 2.0, origin=(0.0, 0.0), min_cells=3)
    assert list(b.obs_names) == ["0x0"]


def test_bin_cells_errors():
    from stentrans import InputError
    from stentrans.io import bin_cells

    xy, counts = _cells(20)
    with pytest.raises(InputError, match="bin_size"):
        bin_cells(xy, counts, 0)
    with pytest.raises(InputError, match="rows of counts"):
        bin_cells(xy, counts.iloc[:5], 10)
    with pytest.raises(InputError, match="'px'"):
        bin_cells(xy, counts, 10, x="px")


def test_bin_cli_and_workflow_dry_run(tmp_path):
    from stentrans.cli.bin import register_cli

    xy, counts = _cells()
    table = pd.concat([xy.rename(columns={"x": "cx", "y": "cy"}), counts.assign(slice_id=[1, 2] * 300)], axis=1)
    src = tmp_path / "cells.csv.gz"
    table.to_csv(src, index_label="cell")
    parser = argparse.ArgumentParser()
    register_cli(parser.add_subparsers())
    out = tmp_path / "binned.h5ad"
    args = parser.parse_args(["bin", str(src), "-o", str(out), "--bin-size", "100", "--x", "cx", "--y", "cy", "--drop", "slice_id", "--query", "slice_id == 1"])
    assert args.func(args) == 0
    import anndata as ad

    a = ad.read_h5ad(out)
    assert list(a.var_names) == list(counts.columns)  # not the cell ids, not slice_id
    assert a.obs["n_cells"].sum() == 300

    samples = tmp_path / "samples.tsv"
    samples.write_text(f"sample\tsource\tlocation\tformat\tlattice\tsha256\tspecies\nMPX\tpath\t{src}\tcells\tsquare\t\tmouse\n")
    cfg = write_yaml(tmp_path / "cfg.yaml", {"samples": str(samples), "patterns": {"samples": []}, "binning": {"MPX": {"bin_size": 100.0, "x": "cx", "y": "cy", "drop": ["slice_id"], "query": "slice_id == 1"}}})
    proc = smk(["-n", "--cores", "1", "--configfile", cfg], cwd=workdir(tmp_path), timeout=120)
    assert proc.returncode == 0, show(proc)
    assert job_counts(proc.stdout).get("bin_cells") == 1
    (blk,) = job_blocks(proc.stdout, "qc")
    assert "resources/binned/MPX.h5ad" in blk


HOLE = (550.0, 5 * 100 * np.sqrt(3) / 2)


def _molecules_with_a_hole(path: Path, seed: int = 0) -> Path:
    """A molecule table (generic x/y/gene) over a 1,200 x 900 rectangle with one small empty disk inside."""
    rng = np.random.default_rng(seed)
    n = 60_000
    x = rng.uniform(0, 1200, n)
    y = rng.uniform(0, 900, n)
    # the hole: no molecule within 60 of lattice point (5, 11) of spacing 100 (origin near 0, 0)
    keep = np.hypot(x - HOLE[0], y - HOLE[1]) > 60
    x, y = x[keep], y[keep]
    # three spatial programs and a flat gene: gene choice by position
    p = np.stack([np.ones_like(x), 1 + np.sin(x / 150), 1 + np.cos(y / 120), 1 + (x + y) / 1000], axis=1)
    p /= p.sum(1, keepdims=True)
    gene = np.array([f"g{k}" for k in range(4)])[(rng.random(x.size)[:, None] > np.cumsum(p, 1)).sum(1)]
    pd.DataFrame({"x": x.round(2), "y": y.round(2), "gene": gene}).to_csv(path, index=False)
    return path


def test_finer_sample_bins_and_scores_realtruth_with_lost_spots(tmp_path):
    """A `finer` sample runs bin_finer -> qc -> grid -> enhance -> evaluate (realtruth); fill_lost auto fills the hole."""
    import anndata as ad

    src = _molecules_with_a_hole(tmp_path / "molecules.csv")
    samples = tmp_path / "samples.tsv"
    samples.write_text(f"sample\tsource\tlocation\tformat\tlattice\tsha256\tspecies\nMOL\tpath\t{src}\tfiner\thex\t\tmouse\n")
    cfg = write_yaml(
        tmp_path / "cfg.yaml",
        {
            "samples": str(samples),
            "binning": {"MOL": {"spacing": 100.0}},
            "enhance": {"fill_lost": "auto"},
            # at most 3 of the 4 genes scored (evaluate.max_genes, per sample): the 2 panel genes and the most variable
            "evaluate": {"protocols": ["nested", "lost"], "truth": True, "methods": ["robust", "linear", "nn"], "seeds": 1, "n_panel_genes": 2, "samples": {"MOL": {"max_genes": 3}}},
            "patterns": {"samples": []},
            "ablation": {"samples": []},
        },
    )
    wf = workdir(tmp_path)
    targets = ["results/MOL/evaluate/summary.tsv", "results/MOL/enhanced.h5ad", "results/MOL/downstream/downstream.tsv"]
    dry = smk(["-n", "--cores", "1", *targets, "--configfile", cfg], cwd=wf, timeout=120)
    assert dry.returncode == 0, show(dry)
    assert job_counts(dry.stdout).get("bin_finer") == 1
    env = dict(os.environ, STENTRANS_THREADS="1")
    proc = smk(["--cores", "2", *targets, "--configfile", cfg], cwd=wf, timeout=600, env=env)
    assert proc.returncode == 0, show(proc)

    spots = ad.read_h5ad(wf / "resources" / "pseudospots" / "MOL.h5ad")
    truth = ad.read_h5ad(wf / "resources" / "pseudospots" / "MOL_truth.h5ad")
    assert spots.uns["binning"]["spacing"] == 100.0 and spots.uns["binning"]["spot_diameter"] == pytest.approx(55.0)
    # the hole: one lattice point in tissue without a spot, found and filled
    enh = ad.read_h5ad(wf / "results" / "MOL" / "enhanced.h5ad")
    assert enh.uns["stentrans"]["fill_lost"] == "auto" and int(enh.obs["is_lost"].sum()) == 1
    lost_rc = enh.obs.loc[enh.obs["is_lost"], ["array_row", "array_col"]].to_numpy()
    centres = spots.obsm["spatial"]
    for r, c in lost_rc:  # the filled lost spot is the hole's lattice point, where no measured spot is
        assert (r, c) == (5, 11)
    assert not np.any(np.hypot(centres[:, 0] - HOLE[0], centres[:, 1] - HOLE[1]) < 30)
    mapping = json.loads((wf / "results" / "MOL" / "grid" / "mapping.json").read_text())
    assert mapping["n_lost"] == int(enh.obs["is_lost"].sum()) and mapping["fill_lost"] == "auto"
    # realtruth ran beside nested, with the ceiling; linear and robust scored at the new positions
    ev = pd.read_csv(wf / "results" / "MOL" / "evaluate" / "summary.tsv", sep="\t")
    rt = ev[ev["protocol"] == "realtruth"].set_index("method")
    assert {"robust", "linear", "nn", "ceiling"} <= set(rt.index) and set(ev["protocol"]) >= {"nested", "realtruth", "lost"}
    # holes punched in the pseudo-spots, scored against their own (truth) counts
    assert set(ev.loc[ev["protocol"] == "lost", "method"]) == {"robust", "linear", "nn"}
    assert rt.loc["linear", "n_spots"] == int(truth.obs["is_imputed"].sum())
    assert 0.5 < rt.loc["linear", "mean"] <= rt.loc["ceiling", "mean"] + 0.05
    per_gene = pd.read_csv(wf / "results" / "MOL" / "evaluate" / "per_gene.tsv", sep="\t")
    assert per_gene["gene"].nunique() == 3 and set(rt["n_genes"]) == {3}, sorted(per_gene["gene"].unique())
    # downstream against the finer truth at every position, measured and new, on the same genes
    ds = pd.read_csv(wf / "results" / "MOL" / "downstream" / "downstream.tsv", sep="\t").set_index("output")
    assert list(ds.index) == ["truth", "robust", "linear", "nn", "measured-only", "truth halves"]
    assert ds.loc["truth", "ari_kmeans"] == 1.0 and set(ds["n_genes"]) == {3} and set(ds["n_positions"]) == {truth.n_obs}


def test_workflow_rejects_bad_fill_lost_and_realtruth_without_truth(tmp_path):
    cfg = write_yaml(tmp_path / "bad.yaml", {"enhance": {"fill_lost": "everywhere"}, "patterns": {"samples": []}})
    proc = smk(["-n", "--cores", "1", "--configfile", cfg], cwd=workdir(tmp_path), timeout=120)
    assert proc.returncode != 0 and "everywhere" in proc.stdout + proc.stderr
    # realtruth is added by evaluate.truth to the samples that have a truth of finer data, never listed
    cfg = write_yaml(tmp_path / "bad2.yaml", {"evaluate": {"protocols": ["nested", "realtruth"]}, "patterns": {"samples": []}})
    proc = smk(["-n", "--cores", "1", "--configfile", cfg], cwd=workdir(tmp_path), timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "'realtruth' is not one of" in out, show(proc)
    # a list of positions is accepted (the demo's square sample) and reaches the grid and enhance jobs
    cfg = write_yaml(tmp_path / "ok.yaml", {"enhance": {"fill_lost": ["3x4"]}, "patterns": {"samples": []}})
    proc = smk(["-n", "-p", "--cores", "1", "--configfile", cfg], cwd=workdir(tmp_path), timeout=120)
    assert proc.returncode == 0, show(proc)


# ---------------------------------------------------------------- end to end

NEEDED_COMMANDS = ("simulate", "qc", "train", "enhance", "evaluate", "patterns")


def _missing_commands() -> list[str]:
    from stentrans import cli

    try:
        parser = cli.build_parser()
    except ImportError as err:  # a listed module does not exist yet
        return [f"(parser: {err})"]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [c for c in NEEDED_COMMANDS if c not in sub.choices]


def _tiny_config(tmp: Path) -> Path:
    genes = [f"gene_{i:04d}" for i in range(20)]
    gmt = tmp / "test.gmt"
    gmt.write_text("".join(f"term {k} (GO:000000{k})\tGO:000000{k}\t" + "\t".join(genes[k::4]) + "\n" for k in range(4)) + "first half (GO:0000010)\tGO:0000010\t" + "\t".join(genes[:10]) + "\n")
    return write_yaml(
        tmp / "tiny.yaml",
        {
            "simulate": {"n_genes": 20, "seed": 0},
            "model": {"patch_size": 3, "depth": 1, "heads": 2},
            "train": {"epochs": 100, "checkpoint_every": 5, "device": "cpu", "crop": 0},  # crop: reaches `stentrans train`
            "enhance": {"method": "stentrans"},  # exercises pretrain (kill + resume); robust: step 6
            "evaluate": {"protocols": ["nested"], "truth": True, "methods": ["stentrans", "robust", "dist", "linear", "nn"], "seeds": 1, "epochs": 3, "dist_epochs": 3, "n_panel_genes": 2},
            "ablation": {"samples": ["sim_hex"], "protocol": "paper"},
            "patterns": {"samples": ["sim_square"], "gmt": str(gmt), "top": 10},
            "plots": {"n_genes": 2},
            "resources": {"default": {"threads": 1, "mem_mb": 1000, "runtime": 10}, "pretrain": {"threads": 1}, "enhance": {"threads": 1}, "evaluate": {"threads": 1}, "patterns": {"threads": 1}},
        },
    )


@pytest.mark.slow
def test_demo_end_to_end_with_kill_and_resume(tmp_path):
    missing = _missing_commands()
    if missing:
        pytest.skip(f"stentrans commands not available yet: {', '.join(missing)}")
    t0 = time.time()
    wf = copy_workflow(tmp_path / "wf")
    cfg = ["--configfile", _tiny_config(tmp_path)]
    env = dict(os.environ, STENTRANS_THREADS="1")

    # 1. start the demo and kill everything (snakemake and its jobs) during pretrain
    log1 = open(tmp_path / "run1.log", "w")
    proc = subprocess.Popen(SNAKEMAKE + ["--cores", "2", *map(str, cfg)], cwd=wf, stdout=log1, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    ckpts: list[str] = []
    try:
        deadline = time.time() + 180
        while time.time() < deadline and proc.poll() is None:
            ckpts = glob.glob(str(wf / "results" / "*" / ".pretrain-*" / "model.pt"))
            if ckpts:
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        log1.close()
    assert ckpts, "no pretrain checkpoint appeared before the run ended:\n" + (tmp_path / "run1.log").read_text()[-4000:]
    killed_sample = Path(ckpts[0]).parts[-3]
    assert not (wf / "results" / killed_sample / "model.pt").exists()

    # 2. recover: release the lock the killed run left, rerun what was incomplete
    unlock = smk(["--unlock", *cfg], cwd=wf, timeout=60, env=env)
    assert unlock.returncode == 0, show(unlock)
    run2 = smk(["--cores", "2", "--rerun-incomplete", *cfg], cwd=wf, timeout=420, env=env)
    assert run2.returncode == 0, show(run2)
    assert "resumed from" in (wf / "logs" / "pretrain" / f"{killed_sample}.log").read_text()
    assert not glob.glob(str(wf / "results" / "*" / ".pretrain-*"))  # scratch checkpoints cleaned up

    # 3. everything is there
    import anndata as ad

    for s, lattice in (("sim_square", "square"), ("sim_hex", "hex")):
        enh = ad.read_h5ad(wf / "results" / s / "enhanced.h5ad")
        assert enh.obs["is_imputed"].any() and (~enh.obs["is_imputed"]).any()
        assert enh.uns["stentrans"]["lattice"] == lattice
        assert enh.uns["stentrans"]["train_config"]["crop"] == 0  # config -> pretrain script -> tl.train -> checkpoint
        per_gene = pd.read_csv(wf / "results" / s / "evaluate" / "per_gene.tsv", sep="\t")
        assert {"gene", "method", "protocol", "seed", "pcc", "n_spots"} <= set(per_gene.columns)
        assert {"stentrans", "dist", "linear", "nn"} <= set(per_gene["method"])
        assert {"nested", "truth"} <= set(per_gene["protocol"])
        for f in ("summary.tsv", "summary.md", "boxplot.png", "gene_panels.png"):
            assert (wf / "results" / s / "evaluate" / f).stat().st_size > 0, f
        assert (wf / "results" / s / "figures" / "enhanced_genes.png").stat().st_size > 0
        # one footing at every position, the counts kept, intervals around every value, their map drawn
        X, lo, hi = (np.asarray(m.todense() if hasattr(m, "todense") else m) for m in (enh.X, enh.layers["lower"], enh.layers["upper"]))
        assert enh.uns["stentrans"]["measured"] == "estimate" and enh.uns["stentrans"]["interval"]["level"] == 0.9
        assert (lo <= X + 1e-4).all() and (X <= hi + 1e-4).all() and (lo >= 0).all()
        assert enh.layers["counts"][enh.obs["is_imputed"].to_numpy()].nnz == 0
        assert (wf / "results" / s / "figures" / "intervals.png").stat().st_size > 0
        # the grid rule's lattice mapping: the positions enhancement filled
        mapping = json.loads((wf / "results" / s / "grid" / "mapping.json").read_text())
        assert mapping["lattice"] == lattice and mapping["n_enhanced"] == enh.n_obs and mapping["n_new"] == int(enh.obs["is_imputed"].sum())
        assert (wf / "results" / s / "grid" / "lattice_mapping.png").stat().st_size > 0
    assert (wf / "results" / "sim_hex" / "ablation" / "table1.tsv").is_file()
    pat = wf / "results" / "sim_square" / "patterns"
    for f in ("ranking.tsv", "families_enhanced.tsv", "new_terms.tsv", "summary.json", "fig4b_ranked_genes.png", "fig4c_family_summary.png", "fig4d_new_terms.png"):
        assert (pat / f).is_file(), f
    summary = pd.read_csv(wf / "results" / "summary" / "median_pcc.tsv", sep="\t")
    assert set(summary["dataset"]) == {"sim_square", "sim_hex"}
    # the results page: made by a rule from the run's own tables, figures small enough to commit
    page = (wf / "results" / "page" / "results.md").read_text()
    ev = pd.read_csv(wf / "results" / "sim_square" / "evaluate" / "summary.tsv", sep="\t").set_index(["method", "protocol"])
    for method in ("linear", "robust", "stentrans"):
        assert f"{ev.loc[(method, 'nested'), 'mean']:.3f}" in page, method
    assert "## Which of the paper's claims hold here" in page and "Fig. 4" in page
    assert "## Lattice mapping" in page and "results_files/sim_hex_lattice_mapping.png" in page
    # downstream beside the accuracy: the default's row of each simulated sample's table, and the verdict on it
    for s in ("sim_square", "sim_hex"):
        ds = pd.read_csv(wf / "results" / s / "downstream" / "downstream.tsv", sep="\t").set_index("output")
        assert f"| {s} | stEnTrans robust | {ds.loc['robust', 'mixing']:.3f} | {ds.loc['robust', 'ari_kmeans']:.3f} |" in page
        assert f"**{s}**: mixing of the default {ds.loc['robust', 'mixing']:+.3f}" in page
    # the command of the run that made the page (run 2), not a configured or assumed one
    made_by = shlex.join(["snakemake", "--cores", "2", "--rerun-incomplete", *map(str, cfg)])
    assert f"- command: `{made_by}`" in page, page[:2000]
    figs = list((wf / "results" / "page" / "results_files").glob("*.png"))
    assert len(figs) >= 7 and all(f.stat().st_size <= 300_000 for f in figs)
    assert all(f"results_files/{f.name}" in page for f in figs)
    bench = pd.read_csv(wf / "results" / "summary" / "benchmarks.tsv", sep="\t")
    assert {"pretrain", "enhance", "evaluate"} <= set(bench["rule"])
    for rule in ("pretrain", "enhance", "qc"):
        assert (wf / "logs" / rule / "sim_square.log").stat().st_size > 0

    # 4. a second run has nothing to do
    run3 = smk(["--cores", "2", *cfg], cwd=wf, timeout=120, env=env)
    assert run3.returncode == 0, show(run3)
    assert "Nothing to be done" in run3.stdout + run3.stderr, show(run3)

    # 5. the HTML report
    rep = smk(["--report", "report.html", *cfg], cwd=wf, timeout=180, env=env)
    assert rep.returncode == 0, show(rep)
    html = (wf / "report.html").read_text(errors="replace")
    assert len(html) > 10_000 and "median_pcc" in html
    report_page_is_shown_as_html(wf / "report.html", wf / "results" / "page" / "results.html")
    text = report_description(wf / "report.html")
    assert "with the method stentrans" in text and "pretrained by rule pretrain" in text and "(100 epochs" in text, text

    # 6. the users' default method: switching enhance.method to robust reruns enhance
    # (its input and params changed) without a pretrain step
    robust = write_yaml(tmp_path / "robust.yaml", {"enhance": {"method": "robust"}})
    target = "results/sim_hex/enhanced.h5ad"
    run4 = smk(["--cores", "2", "--configfile", cfg[1], robust, "--", target], cwd=wf, timeout=120, env=env)
    assert run4.returncode == 0, show(run4)
    out4 = run4.stdout + run4.stderr
    assert "rule enhance:" in out4 and "rule pretrain:" not in out4, show(run4)
    enh = ad.read_h5ad(wf / target)
    assert enh.uns["stentrans"]["method"] == "robust" and "variant" not in enh.uns["stentrans"]
    assert enh.obs["is_imputed"].sum() > 0 and np.isfinite(enh.X).all()

    # 7. the report of that config describes the robust method, without a pretrain job
    rep = smk(["--report", "robust.html", "--configfile", cfg[1], robust], cwd=wf, timeout=180, env=env)
    assert rep.returncode == 0, show(rep)
    text = report_description(wf / "robust.html")
    assert "with the method robust" in text and "there is no pretrain job" in text and "pretrained" not in text, text
    print(f"end-to-end demo: {time.time() - t0:.0f} s")  # speed lives in benchmarks, not in a timed assert
