"""Pattern families, GO enrichment, new terms, figures and the patterns driver."""

from __future__ import annotations

import argparse
import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.spatial import cKDTree
from sklearn.metrics import adjusted_rand_score

from stentrans import InputError
from stentrans.lattice import enhanced_mask
from stentrans import pl
from stentrans.cli.patterns import register_cli
from stentrans.run import patterns_to
from stentrans.tl import enrich_families, family_representative, new_terms, pair_families, pattern_families, read_gmt, sepal_scores

from test_sepal import make_synthetic, positions


def fake_enhanced(adata) -> ad.AnnData:
    """Stand-in for the enhance step: H(M) spots, new spots = mean of the measured
    spots within 0.75 spacings (linear interpolation), half-step coordinates."""
    lat = adata.uns["stentrans"]["lattice"]
    r = adata.obs["array_row"].to_numpy(int)
    c = adata.obs["array_col"].to_numpy(int)
    r0, c0 = r.min(), c.min()
    if lat == "hex" and (r0 + c0) % 2:
        c0 -= 1
    M = np.zeros((r.max() - r0 + 1, c.max() - c0 + 1), bool)
    M[r - r0, c - c0] = True
    P, Q = np.nonzero(enhanced_mask(M, lat))
    er, ec = r0 + P / 2.0, c0 + Q / 2.0
    near = cKDTree(positions(r, c, lat)).query_ball_point(positions(er, ec, lat), 0.75)
    X = adata.X.toarray() if sp.issparse(adata.X) else np.asarray(adata.X)
    Y = np.stack([X[j].mean(0) for j in near]).astype(np.float32)
    e = ad.AnnData(
        X=Y,
        obs=pd.DataFrame({"array_row": er, "array_col": ec, "is_imputed": (P % 2 == 1) | (Q % 2 == 1)}, index=[f"e{i}" for i in range(P.size)]),
        var=pd.DataFrame(index=adata.var_names.copy()),
    )
    e.uns["stentrans"] = {"lattice": lat}
    return e


@pytest.fixture(scope="module")
def square():
    a = make_synthetic("square", n=30, tissue_radius=0.36, hole=True)
    return a, sepal_scores(a)


@pytest.fixture(scope="module")
def hexa():
    a = make_synthetic("hex", n=30)
    return a, sepal_scores(a)


def _write_gmt(path, sets):
    with open(path, "w") as fh:
        for name, genes in sets.items():
            fh.write(f"{name}\t{name.split('(')[-1].rstrip(')')}\t" + "\t".join(genes) + "\n")
    return path


# --------------------------------------------------------------------------
# families
# --------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["square", "hexa"])
def test_families_recover_programs(which, request):
    a, r = request.getfixturevalue(which)
    fam = pattern_families(a, r, top=30)
    assert list(fam.columns[:2]) == ["gene", "family"] and len(fam) == 30
    assert fam.attrs["rule"] == "silhouette" and fam.attrs["n_families"] >= 2
    truth = a.var.loc[fam["gene"], "program"].to_numpy()
    assert adjusted_rand_score(truth, fam["family"]) > 0.8
    sizes = fam.groupby("family").size()
    assert list(sizes.index) == list(range(1, sizes.size + 1)) and sizes.is_monotonic_decreasing


def test_family_rules_and_errors(square):
    a, r = square
    fixed = pattern_families(a, r, top=30, n_families=3)
    assert fixed["family"].nunique() == 3 and fixed.attrs["rule"] == "fixed"
    assert adjusted_rand_score(a.var.loc[fixed["gene"], "program"], fixed["family"]) > 0.8
    km = pattern_families(a, r, top=30, n_families=3, method="kmeans", seed=1)
    assert adjusted_rand_score(a.var.loc[km["gene"], "program"], km["family"]) > 0.8
    sep = pattern_families(a, r, top=30, rule="sepal")
    assert sep.attrs["n_families"] == min(30, sep.attrs["n_pcs"])
    with pytest.raises(InputError):
        pattern_families(a, r, top=2)


def test_family_representative_matches_program(square):
    a, r = square
    fam = pattern_families(a, r, top=30, n_families=3)
    rep = family_representative(a, fam)
    assert rep.shape == (a.n_obs, 3) and (rep.index == a.obs_names).all()
    truth = a.uns["truth_patterns"]
    for f, genes in fam.groupby("family")["gene"]:
        prog = int(pd.Series(a.var.loc[list(genes), "program"]).mode()[0])
        assert np.corrcoef(rep[f], truth[:, prog - 1])[0, 1] > 0.8


def test_pair_families_by_overlap_and_maps(square):
    a, r = square
    fo = pattern_families(a, r, top=30, n_families=3)
    fe = fo.copy()
    fe["family"] = fe["family"].map({1: 3, 2: 1, 3: 2})  # same families, other numbers
    pairs = pair_families(fo, fe)
    assert dict(zip(pairs["family_original"], pairs["family_enhanced"])) == {1: 3, 2: 1, 3: 2}
    assert np.allclose(pairs["jaccard"], 1)
    ro = family_representative(a, fo)
    re_ = family_representative(a, fe)
    pairs2 = pair_families(fo, fe, rep_orig=ro, rep_enh=re_)
    assert np.allclose(pairs2["correlation"], 1) and dict(zip(pairs2["family_original"], pairs2["family_enhanced"])) == {1: 3, 2: 1, 3: 2}
    one = pair_families(fo, fe[fe["family"] == 1])  # unequal numbers: leftovers unpaired
    assert one["family_enhanced"].isna().sum() == 2 and one["family_enhanced"].notna().sum() == 1


# --------------------------------------------------------------------------
# enrichment
# --------------------------------------------------------------------------
def test_enrichment_finds_planted_set(square, tmp_path):
    a, r = square
    fam = pattern_families(a, r, top=30, n_families=3)
    rng = np.random.default_rng(0)
    noise = [g for g in a.var_names if g.startswith("NOISE")]
    p1 = [g for g in a.var_names if g.startswith("P1G")]
    gmt = _write_gmt(
        tmp_path / "t.gmt",
        {
            "planted program one (GO:0000001)": p1 + ["ABSENT1", "ABSENT2"],
            "random noise set (GO:0000002)": list(rng.choice(noise, 10, replace=False)) + [p1[0]],
            "biological process (GO:0000003)": list(a.var_names),
        },
    )
    sets = read_gmt(gmt)
    assert len(sets) == 3 and "ABSENT1" in sets["planted program one (GO:0000001)"]
    enr = enrich_families(fam, gmt, background=list(r.index))
    assert {"family", "term", "overlap", "p_value", "adj_p", "significant"} <= set(enr.columns)
    fam_p1 = fam.loc[fam["gene"].isin(p1), "family"].mode()[0]
    hit = enr[(enr["family"] == fam_p1) & (enr["term"] == "planted program one (GO:0000001)")]
    assert len(hit) == 1 and hit["adj_p"].iloc[0] < 0.05 and hit["significant"].iloc[0]
    assert not enr.loc[enr["term"] == "random noise set (GO:0000002)", "significant"].any()
    assert not enr.loc[enr["term"] == "biological process (GO:0000003)", "significant"].any()
    assert enr.attrs["universe"] == a.n_vars
    assert all(v["n_unmapped"] == 0 for v in enr.attrs["mapping"].values())


def test_enrichment_mouse_symbols_and_unmapped(square):
    a, r = square
    fam = pattern_families(a, r, top=30, n_families=3)
    lower = {g: g.capitalize() for g in a.var_names}  # mouse-style symbols, e.g. "P1g1"
    fam_m = fam.assign(gene=fam["gene"].map(lower))
    p1 = [g for g in a.var_names if g.startswith("P1G")]
    sets = {"planted (GO:1)": p1[:-2], "all (GO:2)": [g for g in a.var_names if g not in p1[-2:]]}
    enr = enrich_families(fam_m, sets, background=[lower[g] for g in r.index], species="mouse")
    assert enr.loc[enr["term"] == "planted (GO:1)", "significant"].any()
    left_out = int(fam["gene"].isin(p1[-2:]).sum())  # in no gene set at all
    assert sum(v["n_unmapped"] for v in enr.attrs["mapping"].values()) == left_out
    with pytest.raises(InputError, match="species"):
        enrich_families(fam_m, sets, background=list(r.index), species="fly")


def test_new_terms_only_in_enhanced():
    cols = dict(overlap="1/1", p_value=0.001, odds_ratio=2.0, genes="G")
    eo = pd.DataFrame([dict(family=1, term="A", adj_p=0.01, significant=True, **cols), dict(family=2, term="B", adj_p=0.2, significant=False, **cols)])
    ee = pd.DataFrame(
        [
            dict(family=1, term="A", adj_p=0.001, significant=True, **cols),
            dict(family=1, term="B", adj_p=0.01, significant=True, **cols),
            dict(family=2, term="A", adj_p=0.02, significant=True, **cols),
            dict(family=2, term="C", adj_p=0.3, significant=False, **cols),
        ]
    )
    pairs = pd.DataFrame({"family_original": pd.array([1, 2], dtype="Int64"), "family_enhanced": pd.array([1, 2], dtype="Int64")})
    nt = new_terms(eo, ee, pairs=pairs)
    overall = nt[nt["scope"] == "overall"]
    assert overall["term"].tolist() == ["B"] and overall["adj_p_original"].iloc[0] == 0.2
    paired = nt[nt["scope"] == "paired"]
    assert sorted(zip(paired["family_enhanced"], paired["term"])) == [(1, "B"), (2, "A")]
    assert len(new_terms(eo, ee.iloc[0:0])) == 0


# --------------------------------------------------------------------------
# figures and driver
# --------------------------------------------------------------------------
def test_plots_hex_and_square(hexa, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.collections import PolyCollection

    a, r = hexa
    e = fake_enhanced(a[:, list(r.index[:3])].copy())
    fig = pl.ranked_genes(a, r, enhanced=e, ranking_enhanced=sepal_scores(e), n=2)
    polys = [c for ax in fig.axes for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(polys) == 4
    hexagon = polys[0].get_paths()[0].vertices
    assert len(hexagon) >= 6  # six corners (plus closing vertex)
    side = np.linalg.norm(hexagon[1] - hexagon[0])
    assert side == pytest.approx(1 / np.sqrt(3), rel=1e-6)  # hexagons of the spot spacing tile the slide
    side_e = np.linalg.norm(polys[1].get_paths()[0].vertices[1] - polys[1].get_paths()[0].vertices[0])
    assert side_e == pytest.approx(side / 2, rel=1e-6)  # enhanced spots: half spacing
    fam = pattern_families(a, r, top=30)
    fig = pl.family_summary(fam, fam_enh=fam, save=tmp_path / "fig4c")
    nt = pd.DataFrame({"scope": ["paired"] * 2, "family_enhanced": pd.array([1, 2], dtype="Int64"), "family_original": pd.array([1, 2], dtype="Int64"), "term": ["x (GO:1)", "y (GO:2)"], "adj_p": [1e-3, 1e-2], "adj_p_original": [0.5, 0.9], "overlap": ["1/2", "1/2"], "genes": ["A", "B"]})
    pl.new_terms(nt, save=tmp_path / "fig4d")
    pl.new_terms(nt.iloc[0:0], save=tmp_path / "empty")
    for stem in ["fig4c", "fig4d", "empty"]:
        for ext in ["png", "pdf"]:
            assert (tmp_path / f"{stem}.{ext}").stat().st_size > 1000


def test_patterns_to_end_to_end(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    a = make_synthetic("square", n=24, tissue_radius=0.42, genes_per_program=8, n_noise=40, seed=2)
    e = fake_enhanced(a)
    assert e.obs["is_imputed"].any() and np.allclose((e.obs[["array_row", "array_col"]] * 2) % 1, 0)
    p1 = [g for g in a.var_names if g.startswith("P1G")]
    gmt = _write_gmt(tmp_path / "t.gmt", {"planted one (GO:1)": p1, "all genes (GO:2)": list(a.var_names)})
    out = tmp_path / "out"
    res = patterns_to(a, out, enhanced=e, gmt=gmt, top=24, seeds=1, control="none")
    for f in ["ranking.tsv", "families_original.tsv", "families_enhanced.tsv", "enrichment_original.tsv", "enrichment_enhanced.tsv", "new_terms.tsv", "family_pairs.tsv", "summary.json"]:
        assert (out / f).is_file(), f
    for stem in ["fig4b_ranked_genes", "fig4c_family_summary", "fig4d_new_terms"]:
        assert (out / f"{stem}.png").is_file() and (out / f"{stem}.pdf").is_file()
    assert not list(out.glob(".*part*"))  # no partial files left
    rk = pd.read_csv(out / "ranking.tsv", sep="\t")
    assert {"gene", "diffusion_time", "rank_original", "rank_enhanced"} <= set(rk.columns)
    assert sorted(rk["rank_original"]) == list(range(1, a.n_vars + 1))
    s = json.loads((out / "summary.json").read_text())
    assert len(s["top10"]["original"]) == 10 and len(s["top10"]["enhanced"]) == 10
    assert set(s["families"]) == {"original", "enhanced"}
    assert sum(s["families"]["original"]["sizes"].values()) == 24
    assert "significant_terms" in s["families"]["enhanced"] and "n_new_terms" in s
    assert s["seconds"]["total"] > 0 and s["converged_fraction"]["original"] == 1.0
    # the planted genes lead in both data sets (interpolation gives smoothed
    # noise genes some short-range structure, so allow one intruder there)
    top_o = rk.sort_values("rank_original")["gene"].head(20)
    top_e = rk.sort_values("rank_enhanced")["gene"].head(20)
    assert (a.var.loc[top_o, "program"] > 0).all() and (a.var.loc[top_e, "program"] > 0).sum() >= 19
    enr = pd.read_csv(out / "enrichment_original.tsv", sep="\t")
    assert enr.loc[enr["term"] == "planted one (GO:1)", "significant"].any()


def test_cli(tmp_path):
    import matplotlib

    matplotlib.use("Agg")

    a = make_synthetic("hex", n=12, genes_per_program=5, n_noise=10)
    a.X = sp.csr_matrix(a.X)
    del a.uns["truth_patterns"]
    a.write_h5ad(tmp_path / "in.h5ad")
    parser = argparse.ArgumentParser(prog="stentrans")
    sub = parser.add_subparsers(dest="command")
    register_cli(sub)
    args = parser.parse_args(["patterns", str(tmp_path / "in.h5ad"), "--top", "12", "-o", str(tmp_path / "o")])
    assert args.species == "human" and args.enhanced is None and args.gmt is None
    assert args.func(args) == 0
    assert (tmp_path / "o" / "ranking.tsv").is_file() and (tmp_path / "o" / "summary.json").is_file()
    bad = parser.parse_args(["patterns", str(tmp_path / "in.h5ad"), "--enhanced", str(tmp_path / "nope.h5ad"), "-o", str(tmp_path / "o2")])
    with pytest.raises(InputError, match="not found"):
        bad.func(bad)

    args_bad_top = parser.parse_args(["patterns", str(tmp_path / "in.h5ad"), "--top", "2", "-o", str(tmp_path / "o3")])
    with pytest.raises(InputError, match="--top"):
        args_bad_top.func(args_bad_top)


def test_cli_defaults_are_the_config():
    """The command's defaults, tl.patterns' and pattern_families' are PatternsConfig's (written once)."""
    import dataclasses
    import inspect

    import stentrans
    from stentrans.tl import PatternsConfig

    cfg = PatternsConfig()
    parser = argparse.ArgumentParser(prog="stentrans")
    register_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["patterns", "x.h5ad", "-o", "o"])
    sig = inspect.signature(stentrans.tl.patterns).parameters
    for f in dataclasses.fields(PatternsConfig):
        if f.name not in ("seeds", "control"):  # the control's settings: run.patterns_to reads them from the config
            assert sig[f.name].default == getattr(cfg, f.name), f.name
        if f.metadata.get("cli", True):
            assert getattr(args, f.name) == getattr(cfg, f.name), f.name
    assert not hasattr(args, "cutoff")
    assert args.min_spot_fraction == 0.1 and args.lattice == "auto" and not args.no_filter
    fam = inspect.signature(pattern_families).parameters
    assert (fam["top"].default, fam["n_families"].default, fam["seed"].default) == (cfg.top, cfg.n_families, cfg.seed)
    enr = inspect.signature(enrich_families).parameters
    assert (enr["species"].default, enr["cutoff"].default) == (cfg.species, cfg.cutoff)


# --------------------------------------------------------------------------
# figures: ax=/fig=, save= only when asked; spot tiles; correlations
# --------------------------------------------------------------------------
def test_figures_draw_into_given_axes_and_write_only_with_save(square, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)
    a, r = square
    fam = pattern_families(a, r, top=30, n_families=3)
    fig, axes = plt.subplots(2, 1)
    assert pl.ranked_genes(a, r, n=2, axes=axes) is fig
    assert all(len(ax.collections) == 1 for ax in axes)
    fig2, axes2 = plt.subplots(1, 2)
    assert pl.family_summary(fam, axes=axes2) is fig2 and len(axes2[0].patches) == 3
    nt = pd.DataFrame({"scope": ["paired"], "family_enhanced": pd.array([1], dtype="Int64"), "family_original": pd.array([1], dtype="Int64"), "term": ["x (GO:1)"], "adj_p": [1e-3], "adj_p_original": [0.5], "overlap": ["1/2"], "genes": ["A"]})
    fig3 = plt.figure()
    assert pl.new_terms(nt, fig=fig3) is fig3 and len(fig3.axes) == 1
    assert list(tmp_path.iterdir()) == []  # nothing written without save=
    for f in (fig, fig2, fig3):
        plt.close(f)
    out = pl.ranked_genes(a, r, n=1, save=tmp_path / "maps")
    assert isinstance(out, matplotlib.figure.Figure)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["maps.pdf", "maps.png"]
    from stentrans.pl._patterns import figure_files

    assert figure_files(tmp_path / "maps") == [str(tmp_path / "maps.png"), str(tmp_path / "maps.pdf")]


@pytest.mark.parametrize("lattice", ["square", "hex"])
def test_spot_tiles_are_the_old_ones(lattice):
    """lattice.spot_polygons gives the tiles the figures drew before (pointy-top hexagons, radius a/sqrt(3))."""
    from stentrans.pl._patterns import _spot_patches
    from stentrans.tl import lattice_coords

    a = make_synthetic(lattice, n=6, genes_per_program=1, n_noise=1)
    for data in (a, fake_enhanced(a)):
        row, col, f = lattice_coords(data)
        xy_old = positions(row, col, lattice) / f  # the old _physical(row, col, lattice) / f
        xy_old[:, 1] *= -1
        ang = np.deg2rad([45, 135, 225, 315] if lattice == "square" else [30, 90, 150, 210, 270, 330])
        rad = (1.0 / f) / (np.sqrt(2) if lattice == "square" else np.sqrt(3))
        old = xy_old[:, None, :] + (np.column_stack([np.cos(ang), np.sin(ang)]) * rad)[None]
        polys, xy = _spot_patches(data)
        assert np.array_equal(xy, xy_old)
        k = old.shape[1]
        shift = int(np.argmin(np.abs(polys[0] - old[0, :1]).sum(1)))  # same corners, another first corner
        assert np.allclose(np.roll(old, shift, axis=1), polys, atol=1e-12, rtol=0), (lattice, shift, k)


def test_cross_correlation_and_spearman():
    from scipy.stats import spearmanr

    from stentrans.metrics import cross_correlation, spearman

    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(50, 3)), rng.normal(size=(50, 4))
    B[:, 1] = 2 * A[:, 0] + 1
    R = cross_correlation(A, B)
    assert R.shape == (3, 4) and np.allclose(R, np.corrcoef(A.T, B.T)[:3, 3:])
    assert R[0, 1] == pytest.approx(1)
    B[:, 2] = 5.0  # constant column: 0, not NaN
    assert np.all(cross_correlation(A, B)[:, 2] == 0)
    x, y = rng.normal(size=20), rng.normal(size=20)
    assert spearman(x, y) == float(spearmanr(x, y)[0])


def test_new_terms_control_counts_seeds_and_linear_interpolation(tmp_path):
    """Fig. 4's control: new terms after enhancement at 3 seeds and after linear interpolation of the same spots, each against the same original families."""
    import stentrans
    from stentrans.datasets import simulate, write_program_gmt

    a = simulate("square", n_genes=30, seed=1, size="st")
    gmt = tmp_path / "planted.gmt"
    write_program_gmt(a, gmt)
    enh = stentrans.tl.enhance(a, model=stentrans.tl.train(a, method="robust", seed=0, progress=False), progress=False)
    assert enh.uns["stentrans"]["seed"] == 0  # the model's seed, at the top of the provenance
    controls = stentrans.tl.control_enhancements(a, "robust", [1, 2], control="linear")
    assert [s for s, _ in controls["enhanced"]] == [1, 2] and [s for s, _ in controls["linear"]] == [0]
    assert controls["linear"][0][1].uns["stentrans"]["method"] == "linear"
    res = stentrans.tl.patterns(a, enhanced=enh, gmt=gmt, top=20, controls=controls)
    assert res["new_terms_control"] is not None
    # run.patterns_to fits the same control itself, from the enhanced file's method and seed
    res = patterns_to(a, tmp_path / "out", enhanced=enh, gmt=gmt, top=20, plots=False, seeds=3, control="linear")
    ctl = pd.read_csv(tmp_path / "out" / "new_terms_control.tsv", sep="\t")
    assert list(ctl["data"]) == ["enhanced", "enhanced", "enhanced", "linear"] and list(ctl["seed"]) == [0, 1, 2, 0]
    # the first row is the run's own new terms
    assert ctl.loc[0, "new_overall"] == res["summary"]["n_new_terms"]["overall"]
    s = res["summary"]["new_terms_control"]
    assert s["enhanced"]["seeds"] == [0, 1, 2] and len(s["linear"]["overall"]) == 1
    assert (ctl["n_spots"] == enh.n_obs).all() and (ctl["new_overall"] >= 0).all()
    # the page's claim compares the seeds' mean with the control
    from stentrans.report import page

    lines = page.claims(pd.DataFrame({"dataset": [], "method": [], "protocol": [], "mean": []}), None, None, {"d": {"summary": res["summary"]}}, {}, 79)
    (line,) = [x for x in lines if "Fig. 4" in x]
    e, b = np.mean(s["enhanced"]["overall"]), s["linear"]["overall"][0]
    assert f"{b:.0f} new terms): {'holds' if e > b else 'does not hold'}, {e:.1f} new terms after enhancement (mean over 3 seeds)" in line


def test_enrichment_is_the_same_in_every_process(tmp_path):
    """The genes column does not depend on Python's string hashing (gseapy returns set order): two processes, two hash seeds, one table."""
    import os
    import subprocess
    import sys

    code = (
        "import pandas as pd\n"
        "from stentrans.tl import enrich_families\n"
        "fam = pd.DataFrame({'gene': [f'G{i}' for i in range(12)], 'family': [1] * 6 + [2] * 6})\n"
        "sets = {'A (GO:1)': [f'G{i}' for i in range(8)], 'B (GO:2)': [f'G{i}' for i in range(4, 12)]}\n"
        "print(enrich_families(fam, sets, background=[f'G{i}' for i in range(30)])['genes'].tolist())\n"
    )
    outs = []
    for seed in ("1", "2", "3"):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": seed}, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        outs.append(proc.stdout.strip().splitlines()[-1])
    assert len(set(outs)) == 1, outs
    assert outs[0] == str(["G0;G1;G2;G3;G4;G5", "G4;G5", "G10;G11;G6;G7;G8;G9", "G6;G7"])
