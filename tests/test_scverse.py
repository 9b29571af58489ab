"""The scverse stack on our output: what users run on an enhanced slide.

The standard scanpy pipeline (normalise, log, PCA, neighbours, UMAP, Leiden)
and squidpy's grid graph, Moran's I and Sepal, on the enhanced mouse Visium
slide (2,898 measured spots -> 10,892 enhanced): above 8,192 observations
scanpy leaves exact neighbour search for its approximate path, which broke
on a csr_array from pynndescent 0.7 (pyproject.toml bounds it).
"""

from __future__ import annotations

import numpy as np
import pytest

import stentrans as st

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def enhanced_mouse(shared_data, tmp_path_factory):
    a = st.read(shared_data / "visium_mouse_cytassist")
    a = st.pp.qc(a, min_spot_fraction=0.1)
    # the 200 most variable genes keep the test short; the spot count is the slide's
    X = a.X.toarray() if hasattr(a.X, "toarray") else np.asarray(a.X)
    top = np.argsort(-X.var(0))[:200]
    a = a[:, np.sort(top)].copy()
    out = tmp_path_factory.mktemp("scverse") / "enhanced.h5ad"
    st.run.enhance_to(a, out, progress=False)
    import anndata as ad

    return ad.read_h5ad(out)


def test_enhanced_slide_is_past_the_exact_neighbour_limit(enhanced_mouse):
    # 2,898 measured + 7,994 new positions, and the lost spots filled by default (fill_lost auto) with their new neighbours
    n_lost = int(enhanced_mouse.obs["is_lost"].sum())
    assert n_lost > 0 and enhanced_mouse.n_obs == 11157
    assert enhanced_mouse.n_obs > 8192


def test_standard_scanpy_pipeline_runs_on_the_enhanced_slide(enhanced_mouse):
    sc = pytest.importorskip("scanpy")
    a = enhanced_mouse.copy()
    sc.pp.normalize_total(a)
    sc.pp.log1p(a)
    sc.pp.pca(a, n_comps=20)
    sc.pp.neighbors(a, n_neighbors=15)
    sc.tl.umap(a)
    sc.tl.leiden(a, resolution=0.5, flavor="igraph", n_iterations=2, directed=False)
    assert a.obsp["connectivities"].shape == (a.n_obs, a.n_obs)
    assert a.obsm["X_umap"].shape == (a.n_obs, 2) and np.isfinite(a.obsm["X_umap"]).all()
    n_clusters = a.obs["leiden"].nunique()
    assert 2 <= n_clusters < 100, n_clusters


def _interior_degree(adata, coord_type_n):
    sq = pytest.importorskip("squidpy")
    sq.gr.spatial_neighbors(adata, coord_type="grid", n_neighs=coord_type_n)
    deg = np.asarray(adata.obsp["spatial_connectivities"].sum(1)).ravel()
    return deg


def test_squidpy_grid_graph_has_lattice_degree_on_hex(enhanced_mouse):
    a = enhanced_mouse.copy()
    deg = _interior_degree(a, 6)
    # most enhanced spots are interior: their degree is that of the triangular lattice
    assert np.median(deg) == 6
    assert deg.max() == 6
    assert (deg == 6).mean() > 0.7


def test_squidpy_grid_graph_has_lattice_degree_on_square():
    a = st.datasets.simulate("square", n_genes=30, seed=0, size="st")
    enh = st.tl.enhance(a, progress=False)
    deg = _interior_degree(enh, 4)
    assert np.median(deg) == 4
    assert deg.max() == 4


def test_squidpy_autocorr_and_sepal_run_on_the_enhanced_slide(enhanced_mouse):
    sq = pytest.importorskip("squidpy")
    a = enhanced_mouse[:, :20].copy()
    sq.gr.spatial_neighbors(a, coord_type="grid", n_neighs=6)
    sq.gr.spatial_autocorr(a, mode="moran", n_perms=None, n_jobs=1)
    moran = a.uns["moranI"]
    assert len(moran) == 20 and np.isfinite(moran["I"]).all()
    # structured tissue: the top gene is clearly spatially autocorrelated
    assert moran["I"].max() > 0.3
    sq.gr.sepal(a, max_neighs=6, genes=list(a.var_names[:5]), n_jobs=1, show_progress_bar=False)
    assert "sepal_score" in a.uns and len(a.uns["sepal_score"]) == 5
