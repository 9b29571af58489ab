"""SpatialData in and out (stentrans.io.spatialdata): a Visium slide in spatialdata-io's layout read as our
AnnData, the enhanced result written as SpatialData that spatialdata reads and spatialdata-plot draws."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("spatialdata")

import spatialdata as sd  # noqa: E402
from spatialdata.models import Image2DModel, ShapesModel, TableModel, get_table_keys  # noqa: E402
from spatialdata.transformations import Identity, Scale, get_transformation  # noqa: E402

import stentrans  # noqa: E402
from stentrans import InputError  # noqa: E402
from stentrans.io.spatialdata import INSTANCE_KEY, REGION_KEY, SHAPES_KEY, TABLE_KEY, to_spatialdata, write_spatialdata  # noqa: E402

from conftest import REPO  # noqa: E402

N_GENES = 40  # the most expressed genes of the real slide: enough to enhance, quick to fit
LIB = "prostate"
LOWRES = 0.02  # scale of the small image (full-resolution pixels -> image pixels)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # spatialdata / dask / zarr deprecation chatter
        yield


def _top_genes(a, n=N_GENES):
    totals = np.asarray(a.X.sum(axis=0)).ravel()
    return a[:, np.sort(np.argsort(-totals, kind="stable")[:n])].copy()


@pytest.fixture(scope="module")
def visium(shared_data, tmp_path_factory):
    """The prostate Visium crop as spatialdata-io lays a Visium slide out, written with ``sdata.write``.

    Returns (measured AnnData read from the Space Ranger folder, zarr path, radius, transformations).
    """
    a = _top_genes(stentrans.read(shared_data / "visium_prostate_normal_crop"))
    (lib_in,) = a.uns["spatial"]
    radius = a.uns["spatial"][lib_in]["scalefactors"]["spot_diameter_fullres"] / 2.0
    transformations = {"global": Identity(), "downscaled_lowres": Scale([LOWRES, LOWRES], axes=("y", "x"))}
    circles = ShapesModel.parse(a.obsm["spatial"], geometry=0, radius=np.full(a.n_obs, radius), index=np.arange(a.n_obs), transformations=transformations)
    t = a.copy()
    t.uns = {}
    t.obs["region"] = pd.Categorical([LIB] * t.n_obs)
    t.obs["spot_id"] = np.arange(t.n_obs)
    table = TableModel.parse(t, region=LIB, region_key="region", instance_key="spot_id")
    # a small lowres image (a tissue-like gradient) in the coordinate system spatialdata-io gives it
    h, w = (np.ceil(a.obsm["spatial"].max(axis=0)[::-1] * LOWRES) + 10).astype(int)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([200 + 0 * xx, (255 * xx / w), (255 * yy / h)]).astype(np.uint8)
    image = Image2DModel.parse(img, dims=("c", "y", "x"), transformations={"downscaled_lowres": Identity()})
    sdata = sd.SpatialData(images={f"{LIB}_lowres_image": image}, shapes={LIB: circles}, tables={"table": table})
    path = tmp_path_factory.mktemp("sdata") / "prostate.zarr"
    sdata.write(path)
    return a, path, radius, transformations


def _assert_drawn(png, min_colours=20):
    from PIL import Image

    assert png.is_file() and png.stat().st_size > 5_000
    px = np.asarray(Image.open(png).convert("RGB")).reshape(-1, 3)
    assert px.std(axis=0).max() > 10, "blank figure"
    assert len(np.unique(px, axis=0)) >= min_colours, "no colour scale drawn"


def _plot(sdata, png, coordinate_system, color, images=False):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import spatialdata_plot  # noqa: F401  (registers sdata.pl)

    p = sdata.pl.render_images() if images else sdata
    p.pl.render_shapes(SHAPES_KEY, color=color).pl.show(coordinate_systems=coordinate_system, save=png)
    plt.close("all")
    _assert_drawn(png)


# ---------------------------------------------------------------- in


def test_read_spatialdata_visium_layout(visium):
    a, path, radius, transformations = visium
    b = stentrans.read(path)
    assert b.shape == a.shape and list(b.obs_names) == list(a.obs_names) and list(b.var_names) == list(a.var_names)
    assert np.array_equal(b.X.toarray(), a.X.toarray())
    for col in ("array_row", "array_col", "in_tissue"):
        assert np.array_equal(b.obs[col].to_numpy(), a.obs[col].to_numpy()), col  # from the table's obs
    assert np.array_equal(b.obsm["spatial"], a.obsm["spatial"])  # the circles' centres
    st = b.uns["stentrans"]
    assert st["lattice"] == "hex" and st["format"] == "spatialdata" and st["source"] == str(path)
    assert st["grid"] == a.uns["stentrans"]["grid"]
    assert st["spatialdata"] == {"table": "table", "region": LIB, "coordinate_systems": sorted(transformations)}
    assert len(st["input_sha256"]) == 64
    assert b.uns["spatial"][LIB]["scalefactors"]["spot_diameter_fullres"] == 2 * radius
    assert REGION_KEY not in b.obs and INSTANCE_KEY not in b.obs
    assert stentrans.read(path, library_id=LIB).n_obs == a.n_obs


def test_read_spatialdata_refuses_what_it_cannot_read(visium, tmp_path):
    a, path, _, _ = visium
    with pytest.raises(InputError, match="library_id"):
        stentrans.read(path, library_id="nope")
    with pytest.raises(InputError, match="bin_size"):
        stentrans.read(path, bin_size=16)
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(InputError, match="not a zarr store"):
        stentrans.read(tmp_path / "empty.zarr")
    # images and shapes but no table annotating them
    src = sd.read_zarr(path)
    bare = sd.SpatialData(shapes={LIB: src.shapes[LIB]})
    bare.write(tmp_path / "bare.zarr")
    with pytest.raises(InputError, match="no table annotating a shapes element"):
        stentrans.read(tmp_path / "bare.zarr")


def test_read_spatialdata_bins_pick_a_table_by_bin_size(shared_data, tmp_path):
    """Visium HD as spatialdata-io lays it out: one table per bin size, each annotating its bin polygons."""
    import geopandas as gpd
    import shapely

    a = _top_genes(stentrans.read(shared_data / "melanoma_mel1_rep1.tsv.gz"), 12)  # a real square lattice, um
    side = 100.0
    tables, shapes = {}, {}
    for name in ("square_008um", "square_016um"):
        x, y = a.obsm["spatial"].T
        squares = shapely.box(x - side / 2, y - side / 2, x + side / 2, y + side / 2)
        shapes[f"slide_{name}"] = ShapesModel.parse(gpd.GeoDataFrame(geometry=squares, index=np.arange(a.n_obs)), transformations={"global": Identity()})
        t = a.copy()
        t.uns = {}
        t.obs["region"] = pd.Categorical([f"slide_{name}"] * t.n_obs)
        t.obs["location_id"] = np.arange(t.n_obs)
        tables[name] = TableModel.parse(t, region=f"slide_{name}", region_key="region", instance_key="location_id")
    path = tmp_path / "hd.zarr"
    sd.SpatialData(shapes=shapes, tables=tables).write(path)
    with pytest.raises(InputError, match="several tables annotate shapes"):
        stentrans.read(path)
    b = stentrans.read(path, bin_size=16)
    assert b.uns["stentrans"]["lattice"] == "square" and b.uns["stentrans"]["spatialdata"]["table"] == "square_016um"
    assert np.allclose(b.obsm["spatial"], a.obsm["spatial"])  # the polygons' centroids
    assert np.array_equal(b.X.toarray(), a.X.toarray()) and np.array_equal(b.obs["array_col"], a.obs["array_col"])
    assert np.isclose(b.uns["spatial"]["slide_square_016um"]["scalefactors"]["spot_diameter_fullres"], side)
    assert stentrans.read(path, library_id="slide_square_008um").uns["stentrans"]["spatialdata"]["table"] == "square_008um"


# ---------------------------------------------------------------- out


def test_enhanced_hex_slide_written_as_spatialdata(visium, tmp_path):
    a, path, radius, transformations = visium
    b = stentrans.read(path)
    enh = stentrans.tl.enhance(b, model="linear", progress=False)
    out = write_spatialdata(enh, tmp_path / "enhanced.zarr")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["enhanced.zarr"]  # no staging folder left
    o = sd.read_zarr(out)
    table = o.tables[TABLE_KEY]
    assert get_table_keys(table) == (SHAPES_KEY, REGION_KEY, INSTANCE_KEY)
    assert table.n_obs == enh.n_obs and list(table.var_names) == list(enh.var_names)
    np.testing.assert_array_equal(np.asarray(table.X), np.asarray(enh.X))
    # the counts and the predictive intervals travel with X
    assert set(table.layers) == {"counts", "lower", "upper"}
    for name in ("lower", "upper"):
        np.testing.assert_array_equal(np.asarray(table.layers[name]), np.asarray(enh.layers[name]))
    assert (table.layers["counts"] != enh.layers["counts"]).nnz == 0 and table.uns["stentrans"]["interval"]["level"] == 0.9
    assert table.obs["is_imputed"].sum() == enh.obs["is_imputed"].sum() > 0
    assert table.uns["stentrans"]["lattice"] == "hex"
    circles = o.shapes[SHAPES_KEY]
    assert set(circles.geometry.geom_type) == {"Point"}
    assert np.allclose(circles["radius"], radius / 2)  # halved diameter
    # one circle per row, where the enhanced AnnData puts the spot
    assert np.array_equal(circles.index.to_numpy(), table.obs[INSTANCE_KEY].to_numpy())
    xy = np.column_stack([circles.geometry.x, circles.geometry.y])
    assert np.allclose(xy, enh.obsm["spatial"])
    measured = ~enh.obs["is_imputed"].to_numpy()
    # (the enhanced positions are an affine fit to the measured spots: within a pixel of them, spots ~290 px apart)
    assert np.abs(xy[measured] - b[enh.obs["barcode"][measured]].obsm["spatial"]).max() < 2.0
    # the input's coordinate systems and images
    got = get_transformation(circles, get_all=True)
    assert set(got) == set(transformations)
    for cs, tr in transformations.items():
        assert np.allclose(got[cs].to_affine_matrix(("x", "y"), ("x", "y")), tr.to_affine_matrix(("x", "y"), ("x", "y"))), cs
    src = sd.read_zarr(path)
    assert set(o.images) == set(src.images) == {f"{LIB}_lowres_image"}
    np.testing.assert_array_equal(np.asarray(o.images[f"{LIB}_lowres_image"]), np.asarray(src.images[f"{LIB}_lowres_image"]))
    # the source given as an object does the same; an AnnData from elsewhere gets one "global" system
    again = to_spatialdata(enh, source=src)
    assert set(again.images) == set(src.images) and set(get_transformation(again.shapes[SHAPES_KEY], get_all=True)) == set(transformations)
    plain = enh.copy()
    plain.uns["stentrans"] = {**plain.uns["stentrans"], "format": "h5ad"}
    assert set(get_transformation(to_spatialdata(plain).shapes[SHAPES_KEY], get_all=True)) == {"global"} and not to_spatialdata(plain).images
    # spatialdata-plot draws it: over its image, and on its own in full-resolution pixels
    _plot(o, tmp_path / "lowres.png", "downscaled_lowres", enh.var_names[0], images=True)
    _plot(o, tmp_path / "global.png", "global", enh.var_names[1])


def test_enhanced_st_table_written_as_squares(shared_data, tmp_path):
    a = _top_genes(stentrans.read(shared_data / "melanoma_mel1_rep1.tsv.gz"))
    assert a.uns["stentrans"]["lattice"] == "square"
    enh = stentrans.tl.enhance(a, model="linear", progress=False)
    o = sd.read_zarr(write_spatialdata(enh, tmp_path / "st.zarr"))
    squares = o.shapes[SHAPES_KEY]
    assert set(squares.geometry.geom_type) == {"Polygon"} and len(squares) == enh.n_obs
    assert all(len(g.exterior.coords) == 5 for g in squares.geometry)  # four corners, closed
    # tiles of the enhanced pitch: 100 um (ST spots are 200 um apart), centred on the spots
    assert np.allclose(squares.geometry.area, 100.0**2)
    c = squares.geometry.centroid
    assert np.allclose(np.column_stack([c.x, c.y]), enh.obsm["spatial"])
    assert set(get_transformation(squares, get_all=True)) == {"global"} and not o.images
    assert get_table_keys(o.tables[TABLE_KEY])[0] == SHAPES_KEY
    _plot(o, tmp_path / "st.png", "global", enh.var_names[0])


def test_write_is_atomic(visium, tmp_path, monkeypatch):
    a, path, _, _ = visium
    enh = stentrans.tl.enhance(stentrans.read(path), model="linear", progress=False)
    out = write_spatialdata(enh, tmp_path / "out.zarr")
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))

    def broken(self, file_path, **kw):  # writes part of a store, then fails
        os.makedirs(os.path.join(file_path, "tables"))
        raise OSError("disk full")

    monkeypatch.setattr(sd.SpatialData, "write", broken)
    with pytest.raises(OSError, match="disk full"):
        write_spatialdata(enh[:10].copy(), out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr"]  # nothing partial left
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before  # the previous output kept
    monkeypatch.undo()
    assert sd.read_zarr(out).tables[TABLE_KEY].n_obs == enh.n_obs
    with pytest.raises(InputError, match=r"\.zarr"):
        write_spatialdata(enh, tmp_path / "out.h5ad")


def test_cli_enhance_to_zarr_and_h5ad(visium, tmp_path):
    """`stentrans enhance IN.zarr -o OUT.zarr` writes SpatialData; `.h5ad` stays the default format."""
    import anndata as ad

    a, path, radius, _ = visium
    env = dict(os.environ, STENTRANS_THREADS="1")
    for out in (tmp_path / "cli.zarr", tmp_path / "cli.h5ad"):
        proc = subprocess.run([sys.executable, "-m", "stentrans.cli", "enhance", str(path), "-o", str(out), "--no-filter"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        # each library warning once (zarr's autosharding notice came once per array: 19 times)
        warned = [ln for ln in proc.stderr.splitlines() if "Warning:" in ln]
        assert len(warned) == len(set(warned)), proc.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli.h5ad", "cli.zarr"]
    h5 = ad.read_h5ad(tmp_path / "cli.h5ad")
    o = sd.read_zarr(tmp_path / "cli.zarr")
    table = o.tables[TABLE_KEY]
    assert h5.uns["stentrans"]["method"] == table.uns["stentrans"]["method"] == "robust"
    assert list(table.obs_names) == list(h5.obs_names)
    np.testing.assert_array_equal(np.asarray(table.X), np.asarray(h5.X))  # the same enhancement, either format
    assert np.allclose(o.shapes[SHAPES_KEY]["radius"], radius / 2) and set(o.images) == {f"{LIB}_lowres_image"}
    # the enhanced store is not measured data
    with pytest.raises(InputError, match="enhanced output"):
        stentrans.read(tmp_path / "cli.zarr")
