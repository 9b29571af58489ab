"""The results page's building blocks: PNG shrinking, tables and paired tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

from stentrans import resultspage


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
    claims = resultspage._claims(summary, pd.concat([_per_gene(), other]), None, {}, {}, None)
    assert len(claims) == 1
    assert "beats interpolation: does not hold (stEnTrans 0.055 vs Linear 0.105)" in claims[0]
    assert "The robust variant: 0.205 (beats Linear, paired Wilcoxon across 200 genes p " in claims[0]
    assert resultspage._p(0.0) == "< 1e-300" and resultspage._p(3.4e-5) == "= 3.4e-05"
