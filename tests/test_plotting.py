"""Plotting an enhanced slide with squidpy, scanpy and spatialdata-plot, as the README shows.

Slides without a tissue image are the case in point: a Space Ranger ``outs``
folder without ``tissue_*_image.png`` (its library has no images, where
``sc.pl.spatial(adata, color=gene)`` stops with a bare StopIteration) and an
ST count table (no ``uns["spatial"]`` at all). The enhanced output is made by
``stentrans enhance`` and read back from its file; each plot is drawn on an
Agg canvas and checked: one shape per spot, at the spot's position and
diameter, coloured by the gene's value through the colour map.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import pytest
from scipy.spatial import cKDTree
from test_io import make_spaceranger, write_st_table

import stentrans as st
from stentrans import cli

CMAP = "viridis"


def _enhance(tmp_path, kind, suffix):
    """``stentrans enhance`` of an image-less input; returns the output path."""
    if kind == "spaceranger-no-image":
        src, _ = make_spaceranger(tmp_path / "in", image=False)
    else:  # an ST count table: spot ids XxY, no scale factors, no image
        a = st.datasets.simulate("square", n_genes=8, seed=0, size="st")
        ids = [f"{c}x{r}" for r, c in zip(a.obs["array_row"], a.obs["array_col"])]
        src = tmp_path / "counts.tsv"
        write_st_table(src, np.rint(a.X.toarray()).astype(int), ids, list(a.var_names))
    out = tmp_path / f"enhanced{suffix}"
    assert cli.main(["enhance", str(src), "-o", str(out), "--seed", "0"]) == 0
    return out


@pytest.fixture(params=["spaceranger-no-image", "st-table"])
def enhanced_h5ad(request, tmp_path):
    return ad.read_h5ad(_enhance(tmp_path, request.param, ".h5ad"))


def _gene(adata):
    """The gene with the most distinct values, and its values (obs order)."""
    X = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
    j = int(np.argmax([len(np.unique(x)) for x in X.T]))
    return adata.var_names[j], X[:, j].astype(float)


def _drawn(ax):
    """Centres, sizes (bounding-box widths) and RGBA face colours of the one collection of shapes on ``ax``."""
    ax.figure.canvas.draw()
    (coll,) = [c for c in ax.collections if len(c.get_paths()) > 1]
    boxes = np.array([[p.vertices.min(0), p.vertices.max(0)] for p in coll.get_paths()])
    centres, sizes = boxes.mean(1), boxes[:, 1] - boxes[:, 0]
    return coll, centres, sizes, coll.get_facecolors()


def _check(ax, xy, values, diameter=None):
    """One shape per spot, at the spots' positions (up to the plot's scale), coloured by ``values``."""
    coll, centres, sizes, colours = _drawn(ax)
    assert len(centres) == len(xy) == len(colours)
    scale = np.ptp(centres[:, 0]) / np.ptp(xy[:, 0])
    dist, idx = cKDTree(xy).query(centres / scale)
    assert dist.max() < 1e-3 * np.ptp(xy), dist.max()
    assert len(np.unique(idx)) == len(xy)  # every spot drawn once
    if diameter is not None:
        np.testing.assert_allclose(sizes, diameter * scale, rtol=1e-3)
    v = values[idx]
    expected = plt.get_cmap(CMAP)(plt.Normalize(values.min(), values.max())(v))
    np.testing.assert_allclose(colours[:, :3], expected[:, :3], atol=1e-6)
    # the colours follow the values: brightness rises with the value (viridis), the brightest shape is the largest value
    from scipy.stats import spearmanr

    lum = colours[:, :3] @ [0.299, 0.587, 0.114]
    assert spearmanr(lum, v)[0] > 0.99 and v[np.argmax(lum)] == values.max()


def _diameter(adata):
    (lib,) = adata.uns["spatial"]
    return adata.uns["spatial"][lib]["scalefactors"]["spot_diameter_fullres"]


def test_enhanced_output_without_image_has_a_spot_diameter_and_no_image(enhanced_h5ad):
    (lib,) = enhanced_h5ad.uns["spatial"]
    assert enhanced_h5ad.uns["spatial"][lib]["images"] == {}
    d = _diameter(enhanced_h5ad)
    # nearest-neighbour distance of the enhanced spots: half the measured pitch
    nn = np.median(cKDTree(enhanced_h5ad.obsm["spatial"]).query(enhanced_h5ad.obsm["spatial"], k=2)[0][:, 1])
    lattice = enhanced_h5ad.uns["stentrans"]["lattice"]
    # Visium 55 um spots 100 um apart (the Space Ranger scale factor, halved); ST 100 um at 200 um (from the pitch)
    assert d / nn == pytest.approx({"hex": 0.55, "square": 0.5}[lattice], rel=1e-3)


@pytest.mark.parametrize("lattice", ["square", "hex"])
def test_imageless_diameter_matches_the_technology(lattice):
    """Without uns["spatial"] the enhanced diameter is the one the simulator's scale factors give."""
    a = st.datasets.simulate(lattice, n_genes=6, seed=0, size="st")
    b = a.copy()
    del b.uns["spatial"]
    with_uns = st.tl.enhance(a, model="linear", progress=False)
    without = st.tl.enhance(b, model="linear", progress=False)
    assert _diameter(without) == pytest.approx(with_uns.uns["spatial"]["simulated"]["scalefactors"]["spot_diameter_fullres"])
    (lib,) = without.uns["spatial"]
    assert without.uns["spatial"][lib]["images"] == {}


def test_squidpy_spatial_scatter_on_enhanced_output(enhanced_h5ad):
    sq = pytest.importorskip("squidpy")
    gene, values = _gene(enhanced_h5ad)
    fig, ax = plt.subplots()
    sq.pl.spatial_scatter(enhanced_h5ad, color=gene, img=False, cmap=CMAP, ax=ax)
    _check(ax, enhanced_h5ad.obsm["spatial"], values, diameter=_diameter(enhanced_h5ad))
    plt.close(fig)


def test_scanpy_spatial_without_image_key_on_enhanced_output(enhanced_h5ad):
    sc = pytest.importorskip("scanpy")
    gene, values = _gene(enhanced_h5ad)
    fig, ax = plt.subplots()
    with pytest.warns(FutureWarning):  # scanpy 1.11 deprecates sc.pl.spatial for squidpy's
        sc.pl.spatial(enhanced_h5ad, color=gene, img_key=None, cmap=CMAP, ax=ax, show=False)
    _check(ax, enhanced_h5ad.obsm["spatial"], values, diameter=_diameter(enhanced_h5ad))
    plt.close(fig)


@pytest.mark.parametrize("kind", ["spaceranger-no-image", "st-table"])
def test_spatialdata_plot_on_enhanced_output(tmp_path, kind):
    sd = pytest.importorskip("spatialdata")
    pytest.importorskip("spatialdata_plot")
    from stentrans.io.spatialdata import SHAPES_KEY, TABLE_KEY

    sdata = sd.read_zarr(_enhance(tmp_path, kind, ".zarr"))
    table = sdata.tables[TABLE_KEY]
    gene, values = _gene(table)
    fig, ax = plt.subplots()
    sdata.pl.render_shapes(SHAPES_KEY, color=gene, cmap=CMAP).pl.show(ax=ax)
    # circles of the halved diameter (hex), squares of the enhanced pitch (square)
    diameter = _diameter(table) if table.uns["stentrans"]["lattice"] == "hex" else None
    _check(ax, table.obsm["spatial"], values, diameter=diameter)
    plt.close(fig)
