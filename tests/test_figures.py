"""Figures (stentrans.pl): the ax=/fig=/save= contract, registry labels and colours,
spot tiles from stentrans.lattice, the lattice-mapping QC figure and its record."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from stentrans import pl
from stentrans.models import registry


@pytest.fixture(scope="module", params=["square", "hex"])
def section(request):
    from stentrans.datasets import simulate

    return simulate(request.param, n_genes=6, seed=0, shape=(10, 12) if request.param == "square" else (8, 16))


def _per_gene(methods=("linear", "stentrans", "dist", "robust"), protocols=("nested", "paper")):
    rng = np.random.default_rng(0)
    rows = [{"gene": f"g{g}", "method": m, "protocol": p, "seed": s, "pcc": rng.uniform(-0.2, 0.9), "n_spots": 10} for m in methods for p in protocols for s in (0, 1) for g in range(12)]
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------
# spot tiles: stentrans.lattice.physical / spot_polygons, as the figures drew them before
# ---------------------------------------------------------------------------
def _old_tiles(rows, cols, lattice, step):
    """The figures' tiles before lattice.physical: x = col, y = row * sqrt(3) on hex."""
    x = np.asarray(cols, float)
    y = np.asarray(rows, float) * (math.sqrt(3.0) if lattice == "hex" else 1.0)
    if lattice == "hex":
        R = 2.0 * step / math.sqrt(3.0)
        ang = np.deg2rad(90.0 + 60.0 * np.arange(6))
        off = np.column_stack([R * np.cos(ang), R * np.sin(ang)])
    else:
        off = np.array([[-step / 2, -step / 2], [step / 2, -step / 2], [step / 2, step / 2], [-step / 2, step / 2]])
    return np.stack([x, y], axis=1)[:, None, :] + off[None]


def test_spot_tiles_are_the_old_tiles(section):
    from stentrans.grid import to_grid
    from stentrans.lattice import enhanced_mask

    gd = to_grid(section, genes=[])
    lat = gd.grid.lattice
    for grid, mask in ((gd.grid, gd.mask), (gd.grid.up(), enhanced_mask(gd.mask, lat))):
        r, c = grid.coords(*np.nonzero(mask))
        new = pl.spot_tiles(r, c, lat, step=grid.step)
        np.testing.assert_allclose(new, _old_tiles(r, c, lat, grid.step), rtol=0, atol=1e-12)
        assert np.array_equal(new, _old_tiles(r, c, lat, grid.step))  # in fact bit for bit


# ---------------------------------------------------------------------------
# the contract: a Figure back, files only with save=
# ---------------------------------------------------------------------------
def test_boxplots_return_a_figure_and_write_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fig = pl.pcc_boxplots(_per_gene())
    assert isinstance(fig, Figure) and not list(tmp_path.iterdir())
    # registry order, labels and colours (no table of the figures' own)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == [registry.label(m) for m in registry.order(["linear", "stentrans", "dist", "robust"])]
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == labels
    faces = [tuple(np.round(h.get_facecolor()[:3], 3)) for h in legend.legend_handles]
    from matplotlib.colors import to_rgb

    assert faces == [tuple(np.round(to_rgb(registry.color(m)), 3)) for m in registry.order(["linear", "stentrans", "dist", "robust"])]
    # a dark method's (DIST's) median line is white, the others black
    colors = [line.get_color() for line in ax.lines]
    assert registry.METHODS["dist"].dark and colors.count("white") == 1
    # into a given figure, written with save=
    own = Figure()
    out = pl.pcc_boxplots(_per_gene(), protocols=["nested"], fig=own, save=tmp_path / "b")
    assert out is own and len(own.axes) == 1
    assert (tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (tmp_path / "b.pdf").read_bytes()[:4] == b"%PDF"
    assert not list(tmp_path.glob(".*part*"))  # atomic writes


def test_median_pcc_bars(tmp_path):
    table = pd.DataFrame(
        [{"dataset": d, "protocol": p, "method": m, "mean": 0.3, "sd": 0.01} for d in ("a", "b") for p in ("nested", "paper") for m in ("stentrans", "linear")]
    )
    fig = pl.median_pcc_bars(table, paper_medians={"a": 0.5}, save=tmp_path / "m")
    assert len(fig.axes) == 2 and (tmp_path / "m.png").is_file()
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert sorted(texts) == sorted([registry.label("stentrans"), registry.label("linear"), "paper stEnTrans"])


def test_gene_panels_and_enhanced_genes(section, tmp_path):
    import stentrans
    from stentrans.grid import to_grid

    genes = list(section.var_names[:2])
    gd = to_grid(section, genes=genes)
    preds = {"linear": gd.maps, "robust": np.ones((2, 2 * gd.maps.shape[1], 2 * gd.maps.shape[2]), np.float32)}
    fig = pl.gene_panels(section, genes, preds, title="toy")
    assert isinstance(fig, Figure)
    assert [a.get_title() for a in fig.axes[:4]] == ["Ground truth", "Down-sampled input", registry.label("linear"), registry.label("robust")]
    with pytest.raises(ValueError, match="shape"):
        pl.gene_panels(section, genes, {"bad": np.zeros((2, 3, 3))})
    enhanced = stentrans.tl.enhance(section, model="linear", progress=False)
    fig = pl.enhanced_genes(section, enhanced, n_genes=2, dataset="toy", save=tmp_path / "enh.png")
    assert (tmp_path / "enh.png").is_file() and (tmp_path / "enh.pdf").is_file()
    assert [a.get_title().split("\n")[0] for a in fig.axes[:2]] == pl.top_variance_genes(section, 2)
    assert fig.texts[0].get_text().startswith("toy: measured vs ")
    # named genes win; unknown ones are skipped
    fig = pl.enhanced_genes(section, enhanced, genes=[genes[1], "nope"])
    assert len(fig.axes) == 2 and fig.axes[0].get_title().startswith(genes[1])


def test_top_variance_genes():
    import anndata as ad

    X = np.array([[0, 5, 1], [0, 0, 1], [0, 9, 2]], float)
    a = ad.AnnData(X=X, var=pd.DataFrame(index=["flat", "wild", "mild"]))
    assert pl.top_variance_genes(a, 2) == ["wild", "mild"]
    assert pl.top_variance_genes(a, 3, among=["mild", "flat"]) == ["mild", "flat"]
    # ties keep the var_names order
    b = ad.AnnData(X=np.array([[0, 0], [1, 1]], float), var=pd.DataFrame(index=["b", "a"]))
    assert pl.top_variance_genes(b, 2) == ["b", "a"]


# ---------------------------------------------------------------------------
# the lattice mapping: its record and its QC figure
# ---------------------------------------------------------------------------
def test_grid_mapping_counts(section, tmp_path):
    from stentrans.grid import to_grid
    from stentrans.lattice import enhanced_mask, kept_mask
    from stentrans import lost as stentrans_lost
    from stentrans.report.mapping import grid_mapping, write_grid_mapping

    m = grid_mapping(section)
    gd = to_grid(section, genes=[])
    lat = gd.grid.lattice
    assert m["lattice"] == lat and m["grid"]["shape"] == list(gd.grid.shape) and m["enhanced_grid"]["shape"] == [2 * s for s in gd.grid.shape]
    assert m["grid"]["origin"] == {"array_row": gd.grid.row0, "array_col": gd.grid.col0} and m["grid"]["step"] == 1.0
    assert m["n_measured"] == section.n_obs == gd.mask.sum()
    assert m["n_kept"] == kept_mask(gd.mask, lat).sum() and m["n_kept"] + m["n_removed"] == m["n_measured"]
    lost = stentrans_lost.detect(gd.mask, lat)  # filled by default
    assert m["fill_lost"] == "auto" and m["n_lost"] == lost.sum()
    assert m["n_enhanced"] == enhanced_mask(gd.mask | lost, lat).sum() == m["n_measured"] + m["n_new"]
    assert grid_mapping(section, fill_lost="none")["n_enhanced"] == enhanced_mask(gd.mask, lat).sum()
    assert m["n_lattice_points"] == (gd.mask.size if lat == "square" else gd.mask.size // 2)
    # the enhancement fills exactly these positions
    import stentrans

    enh = stentrans.tl.enhance(section, model="linear", progress=False)
    assert enh.n_obs == m["n_enhanced"] and int(enh.obs["is_imputed"].sum()) == m["n_new"]
    path = write_grid_mapping(m, tmp_path / "g" / "mapping.json")
    assert json.loads(path.read_text()) == m


def test_lattice_mapping_figure(section, tmp_path):
    from stentrans.report.mapping import grid_mapping

    m = grid_mapping(section)
    fig = pl.lattice_mapping(section)
    assert isinstance(fig, Figure) and not list(tmp_path.iterdir())
    a0, a1, a2 = fig.axes[:3]
    # every position drawn apart: lattice points, M, D kept/removed, H(M) measured/new
    n_tiles = [sum(len(c.get_paths()) for c in ax.collections) for ax in (a0, a1, a2)]
    empty = m["n_lattice_points"] - m["n_measured"]
    assert n_tiles == [empty + m["n_measured"], empty + m["n_kept"] + m["n_removed"], empty + m["n_enhanced"]]
    assert str(m["n_measured"]) in a0.get_title() and f"{m['n_kept']} kept" in a1.get_title() and str(m["n_enhanced"]) in a2.get_title()
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(labels) == 5 and any("H(M)" in t for t in labels) and any("kept by D" in t for t in labels)
    pl.lattice_mapping(section, title="x", save=tmp_path / "grid.png")
    assert (tmp_path / "grid.png").stat().st_size > 1000 and (tmp_path / "grid.pdf").is_file()
