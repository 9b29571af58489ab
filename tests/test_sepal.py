"""Sepal ranking: lattice graphs, planted patterns, squidpy agreement, melanoma."""

from __future__ import annotations

import time

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from stentrans import InputError
from stentrans.lattice import physical
from stentrans.tl import lattice_coords, sepal, sepal_scores, spot_graph
from stentrans.tl._diffusion import DT, diffusion_operator, diffusion_times, normalize_profiles


def positions(row, col, lattice):
    """``(n, 2)`` physical positions in units of the neighbour spacing (Sepal's nearest-node search)."""
    return np.column_stack(physical(row, col, lattice))


# --------------------------------------------------------------------------
# synthetic data (also used by test_patterns.py)
# --------------------------------------------------------------------------
def _lattice_points(lattice, n):
    if lattice == "square":
        r, c = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    else:  # Visium: n rows x 2n columns, checkerboard
        r, c = np.meshgrid(np.arange(n), np.arange(2 * n), indexing="ij")
        keep = (r + c) % 2 == 0
        r, c = r[keep], c[keep]
    return r.ravel(), c.ravel()


def make_synthetic(lattice="square", n=30, genes_per_program=10, n_noise=60, seed=0, tissue_radius=None, hole=False):
    """Counts with 3 planted spatial programs plus spatially random genes.

    Programs (x, y in [0, 1] over the array): a blob, a stripe pattern in the
    upper half, a second blob. Program genes: Poisson(b * exp(2.5 p)),
    b ~ U(2, 8); noise genes: Poisson(b), b ~ U(2, 8 e^1.25) (the same
    expression range). ``tissue_radius`` keeps only a disc (an ST-sized
    tissue on the array), ``hole`` punches a hole in the middle.
    ``var["program"]`` is 0 for noise genes.
    """
    rng = np.random.default_rng(seed)
    r, c = _lattice_points(lattice, n)
    if lattice == "square":
        x, y = c / (n - 1), r / (n - 1)
    else:
        x, y = c / (2 * n - 1), r / (n - 1)
    keep = np.ones(r.size, dtype=bool)
    if tissue_radius is not None:
        keep &= (x - 0.5) ** 2 + (y - 0.5) ** 2 <= tissue_radius**2
    if hole:
        keep &= (x - 0.5) ** 2 + (y - 0.5) ** 2 > 0.1**2
    r, c, x, y = r[keep], c[keep], x[keep], y[keep]
    sig = 0.08
    programs = [
        np.exp(-((x - 0.35) ** 2 + (y - 0.35) ** 2) / (2 * sig**2)),
        (0.5 + 0.5 * np.cos(2 * np.pi * 3 * x)) * (y > 0.55),
        np.exp(-((x - 0.68) ** 2 + (y - 0.33) ** 2) / (2 * sig**2)),
    ]
    cols, names, truth = [], [], []
    for k, p in enumerate(programs):
        for j in range(genes_per_program):
            cols.append(rng.poisson(rng.uniform(2, 8) * np.exp(2.5 * p)))
            names.append(f"P{k + 1}G{j + 1}")
            truth.append(k + 1)
    for j in range(n_noise):
        cols.append(rng.poisson(rng.uniform(2, 8 * np.exp(1.25)), size=r.size))
        names.append(f"NOISE{j + 1}")
        truth.append(0)
    a = ad.AnnData(
        X=np.column_stack(cols).astype(np.float32),
        obs=pd.DataFrame({"array_row": r, "array_col": c}, index=[f"s{i}" for i in range(r.size)]),
        var=pd.DataFrame({"program": truth}, index=names),
    )
    a.uns["stentrans"] = {"lattice": lattice}
    a.uns["truth_patterns"] = np.column_stack(programs)
    return a


def _planted(a, genes):
    return (a.var.loc[list(genes), "program"] > 0).to_numpy()


# --------------------------------------------------------------------------
# graph
# --------------------------------------------------------------------------
@pytest.mark.parametrize("lattice,k", [("square", 4), ("hex", 6)])
def test_spot_graph_degrees(lattice, k):
    a = make_synthetic(lattice, n=12, genes_per_program=1, n_noise=1)
    A = spot_graph(a)
    assert sp.issparse(A) and A.shape == (a.n_obs, a.n_obs)
    assert (A != A.T).nnz == 0
    deg = np.diff(sp.csr_matrix(A).indptr)
    r, c = a.obs["array_row"].to_numpy(), a.obs["array_col"].to_numpy()
    interior = (r > 0) & (r < r.max()) & (c > 1) & (c < c.max() - 1)
    assert (deg[interior] == k).all()
    assert deg.max() == k and deg.min() >= 2
    # neighbour offsets are exactly the lattice's
    i, j = sp.find(sp.triu(A))[:2]
    off = {(int(dr), int(dc)) for dr, dc in zip(np.abs(r[j] - r[i]), np.abs(c[j] - c[i]))}
    assert off == ({(0, 1), (1, 0)} if lattice == "square" else {(0, 2), (1, 1)})


@pytest.mark.parametrize("lattice,k", [("square", 4), ("hex", 6)])
def test_spot_graph_half_step_coordinates(lattice, k):
    """Enhanced data: half-step coordinates -> doubled lattice of the same kind."""
    rows, cols = [], []
    base = make_synthetic(lattice, n=8, genes_per_program=1, n_noise=1)
    r, c = base.obs["array_row"].to_numpy(), base.obs["array_col"].to_numpy()
    A = spot_graph(base)
    rows.append(r.astype(float))
    cols.append(c.astype(float))
    i, j = sp.find(sp.triu(A))[:2]
    rows.append((r[i] + r[j]) / 2)  # midpoints of neighbours
    cols.append((c[i] + c[j]) / 2)
    if lattice == "square":  # centres of 2x2 blocks
        full = set(zip(r, c))
        cen = [(a + 0.5, b + 0.5) for a, b in full if {(a + 1, b), (a, b + 1), (a + 1, b + 1)} <= full]
        rows.append(np.array([p[0] for p in cen]))
        cols.append(np.array([p[1] for p in cen]))
    er, ec = np.concatenate(rows), np.concatenate(cols)
    e = ad.AnnData(X=np.zeros((er.size, 1), np.float32), obs=pd.DataFrame({"array_row": er, "array_col": ec}, index=[f"e{t}" for t in range(er.size)]))
    e.uns["stentrans"] = {"lattice": lattice}
    rr, cc, f = lattice_coords(e)
    assert f == 2
    if lattice == "hex":
        assert ((rr + cc) % 2 == 0).all()
    deg = np.diff(spot_graph(e).indptr)
    assert deg.max() == k and (deg == k).sum() > e.n_obs // 3


def test_lattice_errors():
    a = make_synthetic("square", n=6, genes_per_program=1, n_noise=1)
    b = a.copy()
    b.obs["array_row"] = b.obs["array_row"] + 0.25
    with pytest.raises(InputError, match="integers or half steps"):
        spot_graph(b)
    h = make_synthetic("hex", n=6, genes_per_program=1, n_noise=1)
    h.obs["array_col"] = h.obs["array_col"] + 1
    with pytest.raises(InputError, match="odd row"):
        spot_graph(h)
    d = a.copy()
    d.obs.iloc[1, d.obs.columns.get_loc("array_row")] = d.obs["array_row"].iloc[0]
    d.obs.iloc[1, d.obs.columns.get_loc("array_col")] = d.obs["array_col"].iloc[0]
    with pytest.raises(InputError, match="more than one spot"):
        spot_graph(d)
    n = a.copy()
    del n.uns["stentrans"]
    with pytest.raises(InputError, match="lattice"):
        sepal_scores(n)
    with pytest.raises(InputError, match="not in var_names"):
        sepal_scores(a, genes=["nope"])


def test_operator_rows():
    """Stencil at saturated nodes; boundary rows copy (the mean of) nearest saturated rows."""
    a = make_synthetic("hex", n=6, genes_per_program=1, n_noise=1)
    A = spot_graph(a)
    r, c, _ = lattice_coords(a)
    L, sat = diffusion_operator(A, positions(r, c, "hex"), "hex")
    L = L.toarray()
    i = np.flatnonzero(sat)[0]
    assert L[i, i] == pytest.approx(-6 * 2 / 3)
    assert np.allclose(L.sum(1), 0)  # every row is a (mean of) stencil row(s)
    sq = make_synthetic("square", n=6, genes_per_program=1, n_noise=1)
    rs, cs, _ = lattice_coords(sq)
    Ls, sats = diffusion_operator(spot_graph(sq), positions(rs, cs, "square"), "square", h=0.5)
    j = np.flatnonzero(sats)[0]
    assert Ls.toarray()[j, j] == pytest.approx(-4 / 0.25)


# --------------------------------------------------------------------------
# ranking
# --------------------------------------------------------------------------
def test_planted_genes_rank_first_square():
    # 30 x 30 ST array with an ST-sized tissue (~330 spots, the regime the
    # paper's dt = 0.001 is made for) and a hole
    a = make_synthetic("square", n=30, tissue_radius=0.36, hole=True)
    r = sepal_scores(a)
    assert list(r.columns) == ["diffusion_time", "converged", "rank"]
    assert r["rank"].tolist() == list(range(1, a.n_vars + 1))
    assert r["converged"].all()
    assert r.attrs["dt"] == DT["square"] == 1e-3 and r.attrs["h"] == 1.0
    assert _planted(a, r.index[:20]).all()
    t = r["diffusion_time"]
    assert t[_planted(a, r.index)].median() > 3 * t[~_planted(a, r.index)].median()


def test_planted_genes_rank_first_hex():
    a = make_synthetic("hex", n=30)  # 900 Visium spots
    r = sepal_scores(a)
    assert r.attrs["dt"] == DT["hex"] == 1e-2
    assert r.attrs["n_saturated"] == int((np.diff(spot_graph(a).indptr) == 6).sum())
    assert _planted(a, r.index[:25]).all()
    t = r["diffusion_time"]
    assert t[_planted(a, r.index)].min() > t[~_planted(a, r.index)].median()


def test_half_spacing_equals_quarter_time_step():
    """Half-step coordinates use h = 0.5: identical steps to h = 1 with 4 dt."""
    a = make_synthetic("square", n=30, seed=1, n_noise=30)
    b = a.copy()
    b.obs["array_row"] = b.obs["array_row"] / 2
    b.obs["array_col"] = b.obs["array_col"] / 2
    rb = sepal_scores(b)
    assert rb.attrs["h"] == 0.5 and rb.attrs["coordinate_factor"] == 2
    ra = sepal_scores(a, dt=4e-3)
    steps_b = np.rint(rb["diffusion_time"] / 1e-3)
    steps_a = np.rint(ra["diffusion_time"].reindex(rb.index) / 4e-3)
    assert (steps_a == steps_b).mean() > 0.98 and (steps_a - steps_b).abs().max() <= 1
    # on a full 30 x 30 array the finer criterion separates the planted genes
    assert _planted(a, rb.index[:30]).sum() >= 28


def test_unconverged_and_zero_profiles():
    a = make_synthetic("square", n=10, genes_per_program=2, n_noise=2)
    r = sepal_scores(a, max_iter=3)
    assert (~r["converged"]).any()
    assert np.allclose(r.loc[~r["converged"], "diffusion_time"], 3 * 1e-3)
    assert r["converged"].iloc[: (~r["converged"]).sum()].eq(False).all()  # lower bounds rank first
    z = a.copy()
    z.X[:, 0] = 0
    rz = sepal_scores(z, normalize=False)  # nothing to diffuse: time 0
    assert rz.loc[z.var_names[0], "diffusion_time"] == 0 and rz.loc[z.var_names[0], "converged"]


def test_torch_backend_matches_numpy():
    a = make_synthetic("hex", n=10, genes_per_program=3, n_noise=5)
    r, c, _ = lattice_coords(a)
    L, sat = diffusion_operator(spot_graph(a), positions(r, c, "hex"), "hex")
    C0 = normalize_profiles(a.X)
    tn, cn, sn = diffusion_times(C0, L, sat, 0.01, backend="numpy")
    tt, ct, st = diffusion_times(C0, L, sat, 0.01, backend="torch", device="cpu")
    assert (sn == st).all() and (cn == ct).all()
    # gene chunks (here 64 genes each) give the same steps as one block
    C1 = np.tile(C0, (1, 5))
    _, _, s1 = diffusion_times(C1, L, sat, 0.01, chunk_mb=1e-9)
    assert (s1 == np.tile(sn, 5)).all()
    # float32 state: at most one step apart
    _, _, s32 = diffusion_times(C0, L, sat, 0.01, dtype="float32")
    assert np.abs(s32 - sn).max() <= 1


def test_sepal_writes_into_the_anndata(tmp_path):
    """Scanpy style: tl.sepal stores what sepal_scores returns in var/uns; copy=True leaves the input alone."""
    a = make_synthetic("square", n=10, genes_per_program=2, n_noise=3)
    ref = sepal_scores(a)
    assert sepal(a) is None
    assert np.array_equal(a.var["sepal_score"].to_numpy(), ref["diffusion_time"].reindex(a.var_names).to_numpy())
    assert (a.var["sepal_rank"] == ref["rank"].reindex(a.var_names)).all() and str(a.var["sepal_rank"].dtype) == "Int64"
    assert (a.var["sepal_converged"] == ref["converged"].reindex(a.var_names)).all()
    st = a.uns["sepal"]
    assert st["method"] == "sepal" and st["dt"] == DT["square"] and st["ties"] == "mean" and st["n_genes"] == a.n_vars
    b = make_synthetic("square", n=10, genes_per_program=2, n_noise=3)
    sub = list(b.var_names[:3])
    c = sepal(b, genes=sub, key_added="sp", copy=True, ties="first", max_iter=50)
    assert "sp_score" not in b.var and "sp" not in b.uns
    assert c.var["sp_score"].notna().sum() == 3 and c.var["sp_rank"].isna().sum() == b.n_vars - 3
    assert c.uns["sp"]["ties"] == "first" and c.uns["sp"]["max_iter"] == 50
    c.write_h5ad(tmp_path / "c.h5ad")  # nullable columns and settings are h5ad-safe
    back = ad.read_h5ad(tmp_path / "c.h5ad")
    assert back.var["sp_rank"].isna().sum() == b.n_vars - 3 and back.uns["sp"]["lattice"] == "square"


@pytest.mark.parametrize("lattice", ["square", "hex"])
def test_positions_are_the_old_formula(lattice):
    """lattice.physical (spacing 1) is bit-identical to the old Sepal positions, also on half steps."""
    a = make_synthetic(lattice, n=8, genes_per_program=1, n_noise=1)
    r, c, _ = lattice_coords(a)
    for rr, cc in ((r, c), (r / 2.0, c / 2.0)):
        if lattice == "hex":
            old = np.column_stack([np.asarray(cc, float) / 2.0, np.asarray(rr, float) * (np.sqrt(3.0) / 2.0)])
        else:
            old = np.column_stack([np.asarray(cc, float), np.asarray(rr, float)])
        assert np.array_equal(positions(rr, cc, lattice), old)


# --------------------------------------------------------------------------
# squidpy
# --------------------------------------------------------------------------
def _squidpy_input(a, X):
    b = ad.AnnData(X=np.asarray(X, dtype=np.float64), obs=a.obs.copy(), var=pd.DataFrame(index=a.var_names))
    r, c, _ = lattice_coords(a)
    b.obsm["spatial"] = positions(r, c, a.uns["stentrans"]["lattice"])
    b.obsp["spatial_connectivities"] = spot_graph(a)
    return b


@pytest.mark.parametrize("lattice", ["square", "hex"])
def test_agrees_with_squidpy(lattice):
    """Same graph, dt and normalised input: times equal squidpy's + one dt.

    squidpy reports (steps - 1) * dt, the authors steps * dt; squidpy's tie
    rule at the boundary is ``ties="first"``. The default ``ties="mean"``
    differs only at boundary nodes with several equally near saturated nodes;
    on these small lattices with a hole (a third of the spots on a boundary)
    that still moves ranks (Spearman ~0.85 on hex), but the planted genes
    lead in both.
    """
    sq = pytest.importorskip("squidpy")
    from scipy.stats import spearmanr

    a = make_synthetic(lattice, n=14, genes_per_program=4, n_noise=12, seed=3, hole=True)
    dt = DT[lattice]
    ref = sq.gr.sepal(_squidpy_input(a, normalize_profiles(a.X)), max_neighs=4 if lattice == "square" else 6, dt=dt, copy=True, n_jobs=1, show_progress_bar=False)
    ref = ref["sepal_score"]
    assert ref.notna().all()
    mine = sepal_scores(a, ties="first")["diffusion_time"].reindex(ref.index)
    assert np.allclose(mine, ref + dt, atol=1e-9, rtol=0)
    mean = sepal_scores(a)["diffusion_time"].reindex(ref.index)
    assert spearmanr(mean, ref)[0] > 0.75
    k = int((a.var["program"] > 0).sum())
    assert _planted(a, ref.sort_values(ascending=False).index[:k]).mean() >= 0.8
    assert _planted(a, mean.sort_values(ascending=False).index[:k]).mean() >= 0.8


def test_squidpy_raw_counts_explained():
    """squidpy on raw counts = this module with normalize=False (no log2(x+2) pedestal)."""
    sq = pytest.importorskip("squidpy")
    a = make_synthetic("square", n=12, genes_per_program=3, n_noise=6, seed=5)
    ref = sq.gr.sepal(_squidpy_input(a, a.X), max_neighs=4, n_iter=3000, copy=True, n_jobs=1, show_progress_bar=False)["sepal_score"]
    mine = sepal_scores(a, normalize=False, ties="first", max_iter=3000)
    ok = ref.notna()
    assert np.allclose(mine["diffusion_time"].reindex(ref.index)[ok], ref[ok] + 1e-3, atol=1e-9)
    assert (~mine["converged"]).sum() == (~ok).sum()


# --------------------------------------------------------------------------
# real data
# --------------------------------------------------------------------------
def read_melanoma(path) -> ad.AnnData:
    """The ST melanoma table (spots x genes, ids ``XxY``: X = array_col, Y = array_row)."""
    df = pd.read_csv(path, sep="\t", index_col=0)
    xy = np.array([[float(v) for v in s.split("x")] for s in df.index])
    a = ad.AnnData(X=sp.csr_matrix(df.to_numpy(np.float32)), obs=pd.DataFrame(index=df.index.astype(str)), var=pd.DataFrame(index=df.columns.astype(str)))
    a.obs["array_col"] = np.rint(xy[:, 0]).astype(int)
    a.obs["array_row"] = np.rint(xy[:, 1]).astype(int)
    a.uns["stentrans"] = {"lattice": "square", "source": str(path)}
    a.var_names_make_unique()
    return a


@pytest.mark.slow
def test_melanoma_markers_and_time(shared_data):
    from stentrans import pp

    path = shared_data / "melanoma_mel1_rep1.tsv.gz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    a = pp.qc(read_melanoma(path), min_spot_fraction=0.1)
    assert a.n_vars == 6472
    t0 = time.perf_counter()
    r = sepal_scores(a)
    sec = time.perf_counter() - t0
    print(f"melanoma: {a.n_vars} genes, {sec:.1f} s, top-10 {list(r.index[:10])}")
    assert sec < 30, f"sepal took {sec:.1f} s on {a.n_vars} genes"
    assert r["converged"].all()
    rank = r["rank"]
    # melanocyte / melanoma (MLANA, PMEL, MCAM) and stroma (COL1A1) markers lead
    for g in ["MLANA", "PMEL", "MCAM", "COL1A1"]:
        assert rank[g] <= 10, (g, rank[g])
    for g in ["TYR", "COL3A1", "LUM"]:
        assert rank[g] <= 150, (g, rank[g])
    # house-keeping genes do not
    for g in ["ACTB", "GAPDH"]:
        if g in rank:
            assert rank[g] > 500, (g, rank[g])
