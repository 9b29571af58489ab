"""The results page (stentrans.report.page): PNG shrinking, tables, paired tests, the page from given files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon

from stentrans.report import page as resultspage


def test_shrink_png_gets_under_the_limit(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    fig, ax = plt.subplots(figsize=(10, 10))
    ax.imshow(rng.random((400, 400)), cmap="viridis")  # noise: a PNG that compresses badly
    big = tmp_path / "big.png"
    fig.savefig(big, dpi=150)
    plt.close(fig)
    assert big.stat().st_size > 300_000
    out = resultspage.shrink_png(big, tmp_path / "out" / "small.png", max_bytes=300_000)
    assert 10_000 < out.stat().st_size <= 300_000
    from PIL import Image

    w0, h0 = Image.open(big).size
    w1, h1 = Image.open(out).size
    assert w1 < w0 and abs(w1 / h1 - w0 / h0) < 0.02  # aspect kept
    # small files are copied as they are
    same = resultspage.shrink_png(out, tmp_path / "copy.png", max_bytes=300_000)
    assert same.read_bytes() == out.read_bytes()


def _per_gene():
    rng = np.random.default_rng(1)
    genes = [f"g{i}" for i in range(200)]
    rows = []
    for seed in (0, 1):
        base = rng.normal(0.2, 0.1, len(genes))
        for m, shift in (("linear", 0.0), ("nn", -0.05), ("robust", 0.03)):
            noise = rng.normal(0, 0.02, len(genes))
            rows += [{"dataset": "d", "gene": g, "method": m, "protocol": "nested", "seed": seed, "pcc": v} for g, v in zip(genes, base + shift + noise)]
    return pd.DataFrame(rows)


def test_paired_test_equals_scipy_on_seed_means():
    pg = _per_gene()
    t = resultspage.paired_test(pg, "nested", "robust", "linear")
    wide = pg.groupby(["gene", "method"])["pcc"].mean().unstack()
    d = wide["robust"] - wide["linear"]
    assert t["n"] == 200
    assert t["p"] == wilcoxon(d).pvalue
    assert np.isclose(t["median_diff"], np.median(d)) and np.isclose(t["frac_better"], (d > 0).mean())
    assert resultspage.paired_test(pg, "paper", "robust", "linear") is None  # nothing to compare


def test_method_table_and_claims():
    summary = pd.DataFrame(
        [
            {"dataset": "d", "method": m, "protocol": "nested", "median_seed0": v, "median_seed1": v + 0.01, "mean": v + 0.005, "sd": 0.007, "n_genes": 200, "n_excluded": 0, "n_spots": 50}
            for m, v in (("stentrans", 0.05), ("robust", 0.2), ("linear", 0.1), ("nn", 0.07))
        ]
    )
    tab = resultspage.method_table(summary, "nested", ["stentrans", "robust", "linear", "nn"])
    row = tab.iloc[0]
    assert row["Linear"] == "0.105 ± 0.007" and row["best baseline"] == "Linear 0.105" and row["seeds"] == 2
    m, v = resultspage.best_baseline(summary, "d", "nested")
    assert m == "linear" and np.isclose(v, 0.105)
    other = _per_gene().assign(dataset="other", pcc=0.0)  # another data set must not enter d's test
    claims = resultspage.claims(summary, pd.concat([_per_gene(), other]), None, {}, {}, None)
    assert len(claims) == 1
    assert "beats interpolation: does not hold (stEnTrans 0.055 vs Linear 0.105)" in claims[0]
    assert "The robust method: 0.205 (beats Linear, paired Wilcoxon across 200 genes p " in claims[0]
    assert resultspage.format_p(0.0) == "< 1e-300" and resultspage.format_p(3.4e-5) == "= 3.4e-05"


# ---------------------------------------------------------------------------
# the page from the files it is given (no results tree guessed)
# ---------------------------------------------------------------------------
def _summary_rows(dataset="d"):
    return pd.DataFrame(
        [
            {"method": m, "protocol": "nested", "median_seed0": v, "median_seed1": v + 0.01, "mean": v + 0.005, "sd": 0.007, "n_genes": 200, "n_excluded": 0, "n_spots": 50}
            for m, v in (("stentrans", 0.05), ("robust", 0.2), ("linear", 0.1), ("nn", 0.07))
        ]
    )


def _png(path, color="red"):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (80, 60), color).save(path)
    return path


def test_render_reads_only_the_files_it_is_given(tmp_path):
    import json

    from stentrans.models import registry
    from stentrans.report.mapping import grid_mapping
    from stentrans.datasets import simulate

    # an arbitrary layout: nothing like results/<sample>/...
    odd = tmp_path / "somewhere"
    odd.mkdir()
    _summary_rows().to_csv(odd / "s.tsv", sep="\t", index=False)
    _per_gene().drop(columns="dataset").to_csv(odd / "pg.tsv", sep="\t", index=False)
    grid = grid_mapping(simulate("hex", n_genes=4, seed=0, shape=(8, 12)))
    (odd / "grid.json").write_text(json.dumps(grid))
    files = {
        "d": {"summary": odd / "s.tsv", "per_gene": odd / "pg.tsv", "grid": odd / "grid.json", "boxplot": _png(odd / "box.png"), "grid_figure": _png(odd / "g.png", "blue")},
        "e": {"summary": odd / "missing.tsv"},  # listed but not written: left out
    }
    page_dir = tmp_path / "page"
    text = resultspage.render(files, title="T", fig_dir=page_dir / "files", page_dir=page_dir, run_info={"command": "`x`"})
    assert text.startswith("# T\n") and "- command: `x`" in text
    # labels are the registry's, in the figures' order
    head = next(line for line in text.splitlines() if line.startswith("| data set | ") and "best baseline" in line)
    assert head.split(" | ")[1:5] == [registry.label(m) for m in registry.order(["stentrans", "robust", "linear", "nn"])]
    assert "## Lattice mapping" in text and f"| d | hex | {grid['grid']['shape'][0]} x {grid['grid']['shape'][1]} |" in text
    assert f"| {grid['n_measured']} | {grid['n_kept']} | {grid['n_removed']} | {grid['n_enhanced']} | {grid['n_new']} |" in text
    assert "](files/d_box.png)" in text and "](files/d_g.png)" in text
    assert {p.name for p in (page_dir / "files").iterdir()} == {"d_box.png", "d_g.png"}
    assert "| e |" not in text
    with pytest.raises(ValueError, match="unknown kinds"):
        resultspage.collect({"d": {"summry": odd / "s.tsv"}})
    # collect: data sets named by the mapping's keys, benchmarks from the path given
    bench = tmp_path / "b.tsv"
    pd.DataFrame({"rule": ["qc", "evaluate"], "job": ["d", "d"], "s": [60.0, 120.0], "max_rss": [512.0, 1024.0]}).to_csv(bench, sep="\t", index=False)
    data = resultspage.collect(files, benchmarks=bench)
    assert set(data["summary"]["dataset"]) == {"d"} and data["benchmarks"]["s"].sum() == 180.0
    assert "3.0 min of job wall time" in resultspage.render(files, benchmarks=bench)


def test_stand_ins_are_said_on_the_page(tmp_path):
    """A stand-in for one of the paper's data sets (config results_page.stand_ins) is named as one wherever it appears."""
    rows = pd.concat([_summary_rows().assign(protocol=p) for p in ("paper", "nested")], ignore_index=True)
    rows.to_csv(tmp_path / "hbc.tsv", sep="\t", index=False)
    rows.to_csv(tmp_path / "hm.tsv", sep="\t", index=False)
    abl = pd.DataFrame([{"method": m, "protocol": "paper", "mean": v, "sd": 0.01, "n_genes": 200} for m, v in zip(("stentrans", "stentrans-nopos", "stentrans-nores", "stentrans-noposres"), (0.5, 0.4, 0.45, 0.42))])
    abl.to_csv(tmp_path / "abl.tsv", sep="\t", index=False)
    files = {"HBC": {"summary": tmp_path / "hbc.tsv", "ablation": tmp_path / "abl.tsv"}, "HM": {"summary": tmp_path / "hm.tsv"}}
    stand_ins = {"HBC": "layer 2 of the ST breast cancer sections (Stahl et al. 2016); the paper's HBC is 10x Visium FFPE", "MP": "STARmap visual cortex"}
    kw = dict(title="T", paper_medians={"HBC": 0.584, "HM": 0.636}, paper_table1={"HBC": {"stentrans": "0.584 ± 0.006"}})
    text = resultspage.render(files, stand_ins=stand_ins, **kw)
    lines = text.splitlines()
    i = lines.index("## Stand-ins for the paper's data sets")
    assert lines[i + 4] == "- **HBC**: " + stand_ins["HBC"] and not any(ln.startswith("- **MP**") for ln in lines)  # MP is not in this run
    # the paper's values beside the stand-in are marked, the paper's own data set (HM) is not
    paper_rows = [ln for ln in lines if ln.startswith("| HBC |") or ln.startswith("| HM |")]
    assert any("| 0.584 † |" in ln for ln in paper_rows) and any("| 0.636 |" in ln for ln in paper_rows)
    assert "| 0.584 ± 0.006 † |" in text
    assert text.count("† HBC: stand-in for the paper's data set of that name") == 2  # under the paper-protocol table and Table 1
    assert "**HBC (stand-in), `paper` protocol**" in text and "the paper reports 0.584 on its own HBC, not this stand-in" in text
    assert "**HBC (stand-in), Table 1**" in text and "**HM, `paper` protocol**" in text and "the paper reports 0.636)" in text
    # without stand-ins nothing is marked
    plain = resultspage.render(files, **kw)
    assert "Stand-ins" not in plain and "†" not in plain and "(stand-in)" not in plain


def _rt_rows(robust, linear):
    rows = []
    for proto, vals in (("realtruth", {"robust": robust, "linear": linear, "nn": 0.05, "ceiling": 0.6}), ("realtruth-log", {"robust": 0.3, "linear": 0.25, "nn": 0.2, "ceiling": 0.7}), ("realtruth-denoise", {"robust": 0.4, "linear": 0.35, "nn": 0.3, "raw-half": 0.33}), ("lost", {"robust": 0.5, "linear": 0.4, "nn": 0.3}), ("nested", {"robust": 0.2, "linear": 0.1, "nn": 0.07})):
        rows += [{"method": m, "protocol": proto, "median_seed0": v, "mean": v, "sd": np.nan, "n_genes": 40, "n_excluded": 0, "n_spots": 90} for m, v in vals.items()]
    return pd.DataFrame(rows)


def test_page_leads_with_the_real_truth_and_says_where_the_default_loses(tmp_path):
    from stentrans.models import registry

    _rt_rows(0.30, 0.20).to_csv(tmp_path / "win.tsv", sep="\t", index=False)
    _rt_rows(0.10, 0.20).to_csv(tmp_path / "lose.tsv", sep="\t", index=False)
    text = resultspage.render({"slideseq_hex": {"summary": tmp_path / "win.tsv"}, "starmap_hex": {"summary": tmp_path / "lose.tsv"}}, title="T")
    rt, nested, lost = (text.index(h) for h in ("## Real 2x truth", "## Median per-gene PCC, nested protocol", "## Median per-gene PCC, lost protocol"))
    assert rt < nested < lost
    d = registry.label(registry.DEFAULT_METHOD)
    assert f"slideseq_hex: the default ({d}) 0.300 beats the best baseline (Linear) 0.200." in text
    assert f"starmap_hex: the default ({d}) 0.100 **loses to** the best baseline (Linear) 0.200." in text
    # the ceiling and the fraction of it, per method row (robust: 0.30 / 0.6)
    row = next(line for line in text.splitlines() if line.startswith(f"| slideseq_hex | {d} |"))
    assert "| 0.300 | 0.600 | 0.500 |" in row
    assert "interior in-tissue spots removed" in text
    # no real truth in the summary: no section
    _summary_rows().to_csv(tmp_path / "plain.tsv", sep="\t", index=False)
    assert "## Real 2x truth" not in resultspage.render({"d": {"summary": tmp_path / "plain.tsv"}}, title="T")


def test_page_shows_the_benchmarks_real_truth_table_after_the_runs(tmp_path):
    """The committed docs/realtruth.md (benchmarks/realtruth.py): its 16 cases follow the run's own table."""
    import os
    from pathlib import Path

    doc = Path(__file__).resolve().parents[1] / "docs" / "realtruth.md"
    _rt_rows(0.30, 0.20).to_csv(tmp_path / "win.tsv", sep="\t", index=False)
    page_dir = tmp_path / "page"
    text = resultspage.render({"slideseq_hex": {"summary": tmp_path / "win.tsv"}}, title="T", realtruth_doc=doc, page_dir=page_dir)
    own, bench, nested = text.index("## Real 2x truth (samples"), text.index("## Real 2x truth at two spot sizes"), text.index("## Median per-gene PCC, nested")
    assert own < bench < nested
    section = text[bench:nested]
    rows = [x for x in section.splitlines() if x.startswith("| ") and not x.startswith("| set") and not x.startswith("| :")]
    sets = {r.split("|")[1].strip() for r in rows}
    assert len(rows) == 16 and sets == {"slideseq", "merscope", "starmap", "stereoseq"}
    assert {r.split("|")[2].strip() for r in rows} == {"hex", "square"}
    assert "Made by `python benchmarks/realtruth.py" in section and "loses to the best baseline" in section
    assert f"]({Path(os.path.relpath(doc, page_dir)).as_posix()})" in section  # the link resolves from the page
    # a file without the table: one line naming it
    bad = tmp_path / "bad.md"
    bad.write_text("# nothing here\n")
    with pytest.raises(ValueError, match="bad.md: no section"):
        resultspage.render({"slideseq_hex": {"summary": tmp_path / "win.tsv"}}, realtruth_doc=bad)


# ---------------------------------------------------------------------------
# the run's summary tables (rules summarize, benchmarks, run_info)
# ---------------------------------------------------------------------------
def test_median_pcc_table_and_markdown(tmp_path):
    from stentrans.models import registry
    from stentrans.report.summary import COLUMNS, median_pcc_markdown, median_pcc_table, write_median_pcc

    one = _summary_rows().assign(median_seed1=[0.06, np.nan, 0.11, 0.08])
    path = tmp_path / "s.tsv"
    one.to_csv(path, sep="\t", index=False)
    table = median_pcc_table({"x": path, "y": _summary_rows()}, {"x": 0.636})
    assert list(table.columns) == COLUMNS and list(dict.fromkeys(table["dataset"])) == ["x", "y"]
    assert table.loc[(table["dataset"] == "x") & (table["method"] == "robust"), "n_seeds"].item() == 1
    assert table.loc[(table["dataset"] == "x") & (table["method"] == "stentrans"), "paper_median"].item() == 0.636
    assert table["paper_median"].notna().sum() == 1  # the paper's value only on its method and sample
    md = median_pcc_markdown(table, {"x": 0.636})
    assert "## protocol `nested`" in md and f"| dataset | {registry.label('stentrans')} | {registry.label('robust')} |" in md
    assert "| x | 0.055 ± 0.007 |" in md and f"| paper ({registry.label('stentrans')}) |" in md
    assert next(line for line in md.splitlines() if line.startswith("| x |")).endswith("| 0.636 |")
    tsv, mdp = write_median_pcc(table, tsv=tmp_path / "m.tsv", md=tmp_path / "m.md", paper_medians={"x": 0.636})
    back = pd.read_csv(tsv, sep="\t")
    assert back.shape == table.shape and "NA" in tsv.read_text() and mdp.read_text() == md


def test_benchmark_table_and_run_description(tmp_path):
    import yaml

    from stentrans.report.run import benchmark_table, describe_run, run_info, write_benchmark_table, write_run_info

    a = tmp_path / "a.tsv"
    pd.DataFrame({"s": [1.5], "h:m:s": ["0:00:01"], "max_rss": [100.0], "io_in": [0.0]}).to_csv(a, sep="\t", index=False)
    t = benchmark_table({("qc", "s1"): a, ("enhance", "s1"): a})
    assert list(t.columns) == ["rule", "job", "s", "h:m:s", "max_rss"] and list(t["rule"]) == ["qc", "enhance"]
    assert list(benchmark_table({}).columns) == ["rule", "job", "s"]
    write_benchmark_table({("qc", "s1"): a}, tmp_path / "b" / "bench.tsv")
    assert pd.read_csv(tmp_path / "b" / "bench.tsv", sep="\t").to_dict("records") == [{"rule": "qc", "job": "s1", "s": 1.5, "h:m:s": "0:00:01", "max_rss": 100.0}]
    info = run_info(config={"k": 1})
    assert info["config"] == {"k": 1} and "numpy" in info["packages"] and "available" in info["cuda"]
    assert yaml.safe_load(write_run_info(info, tmp_path / "info.yaml").read_text()) == info
    settings = {
        "evaluate": {"protocols": ["nested"], "methods": ["robust", "linear"], "seeds": 2, "epochs": 10, "dist_epochs": None},
        "model": {"patch_size": 3, "depth": 2, "heads": 2},
        "train": {"batch_size": 512, "lr": 0.001},
        "enhance": {"method": "robust"},
    }
    run = describe_run(info, settings, "snakemake --cores 2", ["a", "b"])
    assert run["command"] == "`snakemake --cores 2`" and run["samples"] == "a, b"
    assert "(DIST its default 200)" in run["evaluation"] and "enhanced by robust" in run["model"]
    assert run["machine"].endswith("CUDA not available (CPU)") or "device" in run["machine"]
