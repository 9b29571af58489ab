"""Readers (stentrans.read and friends) on real data and on synthetic layouts."""

from __future__ import annotations

import gzip
import io as _io
import json

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

import stentrans
from stentrans import InputError, cli
from stentrans.io import read_positions, snap_to_lattice
from stentrans.grid import grid_of, to_grid
from stentrans.lattice import fit_grid, spots_to_pixels

MELANOMA_SHA256 = "0b85ad5f478dad8e34c97e0028b9caea71edf489d559027c79db9c96af4034f4"


# ---------------------------------------------------------------------------
# helpers: synthetic inputs
# ---------------------------------------------------------------------------
def hex_spots(n_rows=6, n_cols=10):
    """Visium-like checkerboard: (array_row, array_col) with row + col even."""
    rc = [(r, c) for r in range(n_rows) for c in range(0, 2 * n_cols) if (r + c) % 2 == 0]
    return np.array(rc, dtype=int)


def hex_pixels(rc, spacing=100.0, origin=(1000.0, 500.0)):
    """Full-resolution pixel (row, col) of Visium array coordinates."""
    r, c = rc[:, 0], rc[:, 1]
    pxl_col = origin[0] + c * spacing / 2
    pxl_row = origin[1] + r * spacing * np.sqrt(3) / 2
    return pxl_row, pxl_col


def counts_matrix(n_spots, n_genes, seed=0, density=0.4):
    rng = np.random.default_rng(seed)
    X = rng.poisson(3.0, size=(n_spots, n_genes)) * (rng.random((n_spots, n_genes)) < density)
    X[:, 0] += 1  # every spot has counts
    return X.astype(np.int64)


def write_10x_h5(path, X, barcodes, ids, names):
    """Write the 10x feature-barcode HDF5 layout (CSC of genes x barcodes)."""
    M = sp.csr_matrix(X)  # spots x genes == CSC of genes x spots
    with h5py.File(path, "w") as f:
        f.attrs["filetype"] = "matrix"
        f.attrs["library_ids"] = np.array([b"synthetic_lib"])
        f.attrs["chemistry_description"] = "Spatial 3' v1"
        g = f.create_group("matrix")
        g.create_dataset("barcodes", data=np.array([b.encode() for b in barcodes]))
        g.create_dataset("data", data=M.data.astype(np.int32))
        g.create_dataset("indices", data=M.indices.astype(np.int64))
        g.create_dataset("indptr", data=M.indptr.astype(np.int64))
        g.create_dataset("shape", data=np.array([X.shape[1], X.shape[0]], dtype=np.int32))
        fg = g.create_group("features")
        fg.create_dataset("_all_tag_keys", data=np.array([b"genome"]))
        fg.create_dataset("id", data=np.array([s.encode() for s in ids]))
        fg.create_dataset("name", data=np.array([s.encode() for s in names]))
        fg.create_dataset("feature_type", data=np.array([b"Gene Expression"] * len(ids)))
        fg.create_dataset("genome", data=np.array([b"GRCh38"] * len(ids)))


def write_10x_mtx(folder, X, barcodes, ids, names):
    folder.mkdir(parents=True)
    buf = _io.BytesIO()
    scipy.io.mmwrite(buf, sp.coo_matrix(np.asarray(X).T), field="integer")
    with gzip.open(folder / "matrix.mtx.gz", "wb") as fh:
        fh.write(buf.getvalue())
    with gzip.open(folder / "features.tsv.gz", "wt") as fh:
        for i, n in zip(ids, names):
            fh.write(f"{i}\t{n}\tGene Expression\n")
    with gzip.open(folder / "barcodes.tsv.gz", "wt") as fh:
        fh.write("".join(f"{b}\n" for b in barcodes))


def make_spaceranger(root, matrix="h5", positions="header", scalefactors=True, image=False, seed=0):
    """A Space Ranger ``outs`` folder under ``root/sample``; returns (outs, truth dict)."""
    rc = hex_spots()
    n_all = len(rc)
    barcodes_all = [f"SPOT{i:04d}-1" for i in range(n_all)]
    rng = np.random.default_rng(seed)
    in_tissue = (rng.random(n_all) < 0.8).astype(int)
    in_tissue[:3] = 1
    # the matrix holds the in-tissue spots except two (positions without counts
    # for some spots are fine) plus one out-of-tissue spot (dropped)
    tissue_idx = np.flatnonzero(in_tissue == 1)
    out_idx = np.flatnonzero(in_tissue == 0)
    mat_idx = np.concatenate([tissue_idx[:-2], out_idx[:1]])
    n_genes = 7
    ids = [f"ENSG{i:05d}" for i in range(n_genes)]
    names = ["A", "B", "C", "C", "D", "E", "F"]  # duplicate symbol C
    X = counts_matrix(len(mat_idx), n_genes, seed=seed)
    outs = root / "sample" / "outs"
    (outs / "spatial").mkdir(parents=True)
    bcs = [barcodes_all[i] for i in mat_idx]
    if matrix == "h5":
        write_10x_h5(outs / "filtered_feature_bc_matrix.h5", X, bcs, ids, names)
    else:
        write_10x_mtx(outs / "filtered_feature_bc_matrix", X, bcs, ids, names)
    pxl_row, pxl_col = hex_pixels(rc)
    pos = pd.DataFrame(
        {
            "barcode": barcodes_all,
            "in_tissue": in_tissue,
            "array_row": rc[:, 0],
            "array_col": rc[:, 1],
            "pxl_row_in_fullres": pxl_row.round().astype(int),
            "pxl_col_in_fullres": pxl_col,
        }
    )
    if positions == "header":
        pos.to_csv(outs / "spatial" / "tissue_positions.csv", index=False)
    else:
        pos.to_csv(outs / "spatial" / "tissue_positions_list.csv", index=False, header=False)
    if scalefactors:
        sf = {"spot_diameter_fullres": 55.0, "tissue_hires_scalef": 0.5, "tissue_lowres_scalef": 0.1, "fiducial_diameter_fullres": 80.0}
        (outs / "spatial" / "scalefactors_json.json").write_text(json.dumps(sf))
    if image:
        import matplotlib.image

        matplotlib.image.imsave(outs / "spatial" / "tissue_hires_image.png", np.zeros((20, 30, 3)))
    n_kept = len(tissue_idx) - 2
    truth = {"X": X[:n_kept], "barcodes": bcs[:n_kept], "pos": pos.set_index("barcode"), "ids": ids, "names": names}
    return outs, truth


def write_st_table(path, X, spot_ids, genes, transpose=False, sep="\t"):
    df = pd.DataFrame(X, index=spot_ids, columns=genes)
    if transpose:
        df = df.T
    if str(path).endswith(".gz"):
        with gzip.open(path, "wt") as fh:
            df.to_csv(fh, sep=sep)
    else:
        df.to_csv(path, sep=sep)


def check_common(a, lattice):
    """Invariants every reader result satisfies."""
    assert sp.isspmatrix_csr(a.X) or isinstance(a.X, sp.csr_array)
    assert a.X.dtype == np.float32
    assert a.obs_names.is_unique and a.var_names.is_unique
    for k in ("array_row", "array_col"):
        assert np.issubdtype(a.obs[k].dtype, np.integer)
    assert (a.obs["in_tissue"] == 1).all()
    assert a.obsm["spatial"].shape == (a.n_obs, 2)
    assert np.issubdtype(a.obsm["spatial"].dtype, np.floating)
    st = a.uns["stentrans"]
    assert st["lattice"] == lattice
    assert set(st) >= {"lattice", "source", "format", "input_sha256", "grid"}
    assert len(st["input_sha256"]) == 64
    g = grid_of(a)
    assert g.lattice == lattice
    p, q = spots_to_pixels(a.obs["array_row"].to_numpy(), a.obs["array_col"].to_numpy(), g, ids=a.obs_names)
    assert len(set(zip(p.tolist(), q.tolist()))) == a.n_obs


# ---------------------------------------------------------------------------
# real data
# ---------------------------------------------------------------------------
def test_melanoma_st_table(shared_data):
    path = shared_data / "melanoma_mel1_rep1.tsv.gz"
    a = stentrans.read(path)
    assert a.shape == (279, 15666)
    check_common(a, "square")
    st = a.uns["stentrans"]
    assert st["format"] == "st_table"
    assert st["input_sha256"] == MELANOMA_SHA256
    # first row of the file: spot 2x9, genes ANXA2 DNAH1 PPP6C CCL19 H3F3B = 0 0 1 0 4
    assert a.obs_names[0] == "2x9"
    assert (a.obs["array_col"].iloc[0], a.obs["array_row"].iloc[0]) == (2, 9)
    np.testing.assert_array_equal(a[0, ["ANXA2", "DNAH1", "PPP6C", "CCL19", "H3F3B"]].X.toarray().ravel(), [0, 0, 1, 0, 4])
    # no pixels in ST tables: 200 um per lattice unit
    np.testing.assert_allclose(a.obsm["spatial"], 200.0 * a.obs[["array_col", "array_row"]].to_numpy())
    assert grid_of(a).shape == (25, 21)
    assert "spatial" not in a.uns


#: the ST breast cancer layers (../shared/README.md): spots, genes, largest snapping offset (lattice units), sha256
BREAST_LAYERS = {
    1: (254, 14880, 0.235, "7cd62f485828d2ba081f07ee9045f11f30c70e6243f0b8457e9c4472f62b92cf"),
    2: (251, 14789, 0.270, "1ad44ddae8b878099fd628801f20192e59d2484c18829c4e9700694ab057fd1f"),
    3: (264, 14929, 0.217, "cc21eae21224a3665d5f2bde8000db220aeba9cff0ab56efa2bb3bba8b7db8ef"),
    4: (262, 14808, 0.235, "81035f5996c2579937960419bc90cd22047718049efa8c525345e4a9a7df6168"),
}


@pytest.mark.parametrize("layer", list(BREAST_LAYERS))
def test_st_breast_layers_snap_to_the_square_lattice(shared_data, layer):
    """Spot ids with decimals (``17.907x4.967``) round to unique integer positions; layer 2 is the paper reproduction's HBC stand-in."""
    path = shared_data / "st_breast_layers" / f"Layer{layer}_BC_count_matrix-1.tsv.gz"
    if not path.exists():
        pytest.skip(f"{path} not found (see ../shared/README.md)")
    n_spots, n_genes, offset, sha = BREAST_LAYERS[layer]
    a = stentrans.read(path)
    assert a.shape == (n_spots, n_genes)
    check_common(a, "square")
    st = a.uns["stentrans"]
    assert st["input_sha256"] == sha and st["snap"]["n_snapped"] == n_spots and abs(st["snap"]["max_offset"] - offset) < 1e-9
    # every position is the rounded id, and the ids' decimals are kept beside it
    np.testing.assert_array_equal(a.obs["array_col"], np.rint(a.obs["spot_x"]))
    np.testing.assert_array_equal(a.obs["array_row"], np.rint(a.obs["spot_y"]))
    assert not a.obs.duplicated(["array_row", "array_col"]).any()
    if layer == 2:  # the file's first row
        assert a.obs_names[0] == "17.907x4.967" and (a.obs["array_col"].iloc[0], a.obs["array_row"].iloc[0]) == (18, 5)


def test_mouse_visium_h5_and_mtx(shared_data):
    folder = shared_data / "visium_mouse_cytassist"
    a = stentrans.read(folder)
    assert a.shape == (2898, 19465)
    check_common(a, "hex")
    assert a.uns["stentrans"]["format"] == "spaceranger"
    # pixel coordinates as scanpy: (pxl_col, pxl_row)
    pos = read_positions(folder)
    assert pos.shape[0] == 4992 and int(pos["in_tissue"].sum()) == 2898
    p = pos.loc[a.obs_names]
    np.testing.assert_allclose(a.obsm["spatial"], p[["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy())
    np.testing.assert_array_equal(a.obs["array_row"], p["array_row"])
    assert ((a.obs["array_row"] + a.obs["array_col"]) % 2 == 0).all()
    # uns["spatial"] in scanpy's layout, scalefactors from the json
    (lib,) = a.uns["spatial"]
    sf = a.uns["spatial"][lib]["scalefactors"]
    assert sf["spot_diameter_fullres"] == pytest.approx(14.964878633873417)
    assert a.uns["spatial"][lib]["images"] == {}
    assert "gene_ids" in a.var and a.var["gene_ids"].iloc[0] == "ENSMUSG00000051951"
    # README: median 226 counts per spot
    assert np.median(np.asarray(a.X.sum(axis=1)).ravel()) == pytest.approx(226, abs=1)
    # the mtx folder gives the same matrix
    b = stentrans.read(folder / "filtered_feature_bc_matrix")
    assert list(b.obs_names) == list(a.obs_names) and list(b.var_names) == list(a.var_names)
    assert (a.X != b.X).nnz == 0
    g = grid_of(a)
    assert g.shape == (78, 119)


def test_prostate_crop(shared_data):
    a = stentrans.read(shared_data / "visium_prostate_normal_crop")
    assert a.shape == (987, 1255)
    check_common(a, "hex")
    u, v = grid_of(a).shape
    assert u <= 26  # a band of about 25 array rows
    (lib,) = a.uns["spatial"]
    sf = a.uns["spatial"][lib]["scalefactors"]
    # no scalefactors_json.json: spot diameter estimated from the spot spacing
    assert 0 < sf["spot_diameter_fullres"] < 1e3
    assert "scalefactors_note" in a.uns["spatial"][lib]["metadata"]


def test_idc_positions_only(shared_data, tmp_path):
    folder = shared_data / "visium_idc_positions_only"
    pos = read_positions(folder)
    assert pos.shape[0] == 4992
    tissue = pos[pos["in_tissue"] == 1]
    assert len(tissue) == 4727
    r, c = tissue["array_row"].to_numpy(), tissue["array_col"].to_numpy()
    g = fit_grid(r, c, "hex")
    p, q = spots_to_pixels(r, c, g, ids=tissue.index)
    assert len(set(zip(p.tolist(), q.tolist()))) == 4727
    assert g.shape == (76, 128)
    # positions only: reading needs counts
    with pytest.raises(InputError, match="positions without counts"):
        stentrans.read(folder)
    # ... which counts= supplies (a synthetic table over the real barcodes)
    X = counts_matrix(len(tissue), 5, seed=3)
    csv = tmp_path / "counts.csv"
    pd.DataFrame(X, index=tissue.index, columns=[f"g{i}" for i in range(5)]).to_csv(csv)
    a = stentrans.read(folder, counts=csv)
    assert a.shape == (4727, 5)
    check_common(a, "hex")
    assert a.uns["stentrans"]["format"] == "positions+counts"
    np.testing.assert_array_equal(a.X.toarray(), X)
    # pixel positions alone recover the same lattice (up to a lattice symmetry)
    xy = tissue[["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy(float)
    r2, c2, lat, info = snap_to_lattice(xy, ids=tissue.index)
    assert lat == "hex" and info["max_offset"] < 0.05
    M = np.column_stack([r, c, np.ones_like(r)]).astype(float)
    coef, *_ = np.linalg.lstsq(M, np.column_stack([r2, c2]).astype(float), rcond=None)
    np.testing.assert_allclose(M @ coef, np.column_stack([r2, c2]), atol=1e-6)
    np.testing.assert_allclose(np.abs(coef[:2]), np.eye(2), atol=1e-9)


# ---------------------------------------------------------------------------
# synthetic Space Ranger layouts
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("matrix", ["h5", "mtx"])
@pytest.mark.parametrize("positions", ["header", "list"])
def test_spaceranger_layouts(tmp_path, matrix, positions):
    outs, truth = make_spaceranger(tmp_path, matrix=matrix, positions=positions, image=(matrix == "h5"))
    for path in (outs, outs.parent):  # the outs folder or its parent
        a = stentrans.read(path)
        check_common(a, "hex")
        assert list(a.obs_names) == truth["barcodes"]
        np.testing.assert_array_equal(a.X.toarray(), truth["X"])
        assert list(a.var_names) == ["A", "B", "C", "C-1", "D", "E", "F"]
        assert list(a.var["gene_ids"]) == truth["ids"]
        pos = truth["pos"].loc[a.obs_names]
        np.testing.assert_array_equal(a.obs["array_row"], pos["array_row"])
        np.testing.assert_array_equal(a.obs["array_col"], pos["array_col"])
        np.testing.assert_allclose(a.obsm["spatial"][:, 0], pos["pxl_col_in_fullres"])
        np.testing.assert_allclose(a.obsm["spatial"][:, 1], pos["pxl_row_in_fullres"])
        st = a.uns["stentrans"]
        assert st["n_out_of_tissue_dropped"] == 1
        assert st["n_positions_without_counts"] == 2
        lib = a.uns["spatial"]
        key = "synthetic_lib" if matrix == "h5" else "sample"
        assert list(lib) == [key]
        assert lib[key]["scalefactors"]["spot_diameter_fullres"] == 55.0
        if matrix == "h5":
            assert lib[key]["images"]["hires"].shape[:2] == (20, 30)
            assert lib[key]["metadata"]["chemistry_description"] == "Spatial 3' v1"
        else:
            assert lib[key]["images"] == {}
    # explicit lattices: hex agrees, square contradicts the checkerboard
    assert stentrans.read(outs, lattice="hex").uns["stentrans"]["lattice"] == "hex"
    with pytest.raises(InputError, match="contradicts"):
        stentrans.read(outs, lattice="square")


def test_spaceranger_h5_file_and_roundtrip(tmp_path):
    outs, truth = make_spaceranger(tmp_path, matrix="h5", positions="header", scalefactors=False)
    a = stentrans.read(outs / "filtered_feature_bc_matrix.h5")
    np.testing.assert_array_equal(a.X.toarray(), truth["X"])
    (lib,) = a.uns["spatial"]
    # no json: diameter estimated from the 100 px spacing
    assert a.uns["spatial"][lib]["scalefactors"]["spot_diameter_fullres"] == pytest.approx(55.0, rel=0.02)
    out = tmp_path / "a.h5ad"
    a.write_h5ad(out)
    b = stentrans.read(out)
    check_common(b, "hex")
    np.testing.assert_array_equal(b.X.toarray(), truth["X"])
    assert b.uns["stentrans"]["format"] == "h5ad"
    assert list(b.uns["spatial"]) == [lib]


# ---------------------------------------------------------------------------
# ST tables
# ---------------------------------------------------------------------------
def test_st_centroid_snapping(tmp_path):
    ids = ["2x3", "3.1x3", "4x2.95", "2.04x4.2", "16.92x9.015"]
    X = counts_matrix(len(ids), 4)
    path = tmp_path / "st.tsv"
    write_st_table(path, X, ids, ["g1", "g2", "g3", "g4"])
    a = stentrans.read(path)
    check_common(a, "square")
    np.testing.assert_array_equal(a.obs["array_col"], [2, 3, 4, 2, 17])
    np.testing.assert_array_equal(a.obs["array_row"], [3, 3, 3, 4, 9])
    np.testing.assert_allclose(a.obs["spot_x"], [2, 3.1, 4, 2.04, 16.92])
    snap = a.uns["stentrans"]["snap"]
    assert snap["n_snapped"] == 4 and snap["max_offset"] == pytest.approx(0.2)
    # a tighter tolerance rejects 2.04x4.2 (offset 0.2) and names it
    with pytest.raises(InputError, match=r"2\.04x4\.2") as e:
        stentrans.read(path, snap_tol=0.1)
    assert "off-lattice" in str(e.value)
    # farther than 0.3 is off-lattice
    bad = tmp_path / "far.tsv"
    write_st_table(bad, X[:2], ["2x3", "5.45x3"], ["g1", "g2", "g3", "g4"])
    with pytest.raises(InputError, match=r"5\.45x3"):
        stentrans.read(bad)
    # two spots on one lattice point: both named
    col = tmp_path / "collide.tsv"
    write_st_table(col, X[:3], ["2x3", "2.1x2.9", "7x7"], ["g1", "g2", "g3", "g4"])
    with pytest.raises(InputError, match="collision") as e:
        stentrans.read(col)
    assert "2x3" in str(e.value) and "2.1x2.9" in str(e.value)


def test_st_transposed_and_csv(tmp_path):
    rng = np.random.default_rng(1)
    spots = [f"{x}x{y}" for x in range(1, 6) for y in range(1, 5)]
    genes = [f"G{i}" for i in range(9)]
    X = rng.poisson(2.0, size=(len(spots), len(genes)))
    a_path = tmp_path / "rows.tsv.gz"
    b_path = tmp_path / "cols.csv"
    write_st_table(a_path, X, spots, genes)
    write_st_table(b_path, X, spots, genes, transpose=True, sep=",")
    a = stentrans.read(a_path)
    b = stentrans.read(b_path)
    assert a.shape == b.shape == (20, 9)
    assert b.uns["stentrans"]["orientation"] == "genes x spots"
    assert a.uns["stentrans"]["orientation"] == "spots x genes"
    np.testing.assert_array_equal(a.X.toarray(), X)
    np.testing.assert_array_equal(b.X.toarray(), X)
    assert list(b.var_names) == genes and list(b.obs_names) == spots
    assert grid_of(a).shape == (4, 5)
    gd = to_grid(a)
    # pixel (p, q) = (Y - 1, X - 1): spot 3x2 -> (1, 2)
    i = spots.index("3x2")
    np.testing.assert_array_equal(gd.maps[:, 1, 2], X[i])
    with pytest.raises(InputError, match="contradicts"):
        stentrans.read(a_path, lattice="hex")


def test_st_checkerboard_stays_square_under_auto(tmp_path):
    # ST tables are square under "auto" even when the spots happen to form a checkerboard
    ids = ["1x1", "3x1", "2x2", "1x3", "3x3"]
    path = tmp_path / "cb.tsv"
    write_st_table(path, counts_matrix(5, 2), ids, ["g1", "g2"])
    assert stentrans.read(path).uns["stentrans"]["lattice"] == "square"
    assert stentrans.read(path, lattice="hex").uns["stentrans"]["lattice"] == "hex"


def test_header_without_corner_cell(tmp_path):
    path = tmp_path / "r_style.tsv"
    path.write_text("g1\tg2\n1x1\t1\t2\n2x1\t3\t0\n")
    a = stentrans.read(path)
    np.testing.assert_array_equal(a.X.toarray(), [[1, 2], [3, 0]])
    assert list(a.var_names) == ["g1", "g2"]


# ---------------------------------------------------------------------------
# counts + coordinates tables (the authors' layout)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("header", [True, False])
def test_counts_plus_coords_hex(tmp_path, header):
    rc = hex_spots(5, 6)
    ids = [f"s{i}" for i in range(len(rc))]
    X = counts_matrix(len(ids), 6, seed=2)
    counts = tmp_path / "counts.csv"
    pd.DataFrame(X, index=ids, columns=[f"g{i}" for i in range(6)]).to_csv(counts)
    coords = tmp_path / "coords.csv"
    cdf = pd.DataFrame({"row": rc[:, 0], "col": rc[:, 1]}, index=ids)
    cdf = cdf.iloc[::-1]  # order need not match
    cdf.to_csv(coords, header=header)
    a = stentrans.read(counts, coords=coords)
    check_common(a, "hex")
    assert a.uns["stentrans"]["format"] == "counts+coords"
    np.testing.assert_array_equal(a.X.toarray(), X)
    np.testing.assert_array_equal(a.obs["array_row"], rc[:, 0])
    np.testing.assert_array_equal(a.obs["array_col"], rc[:, 1])
    # no pixels: hex lattice in um, 100 um between neighbours
    d = np.linalg.norm(a.obsm["spatial"][0] - a.obsm["spatial"][1])
    assert d == pytest.approx(100.0)


def test_counts_plus_coords_square_and_transposed(tmp_path):
    ids = [f"bc{i}" for i in range(12)]
    rows, cols = np.divmod(np.arange(12), 4)
    X = counts_matrix(12, 3, seed=4)
    counts = tmp_path / "counts.tsv"
    pd.DataFrame(X, index=ids, columns=["a", "b", "c"]).T.to_csv(counts, sep="\t")
    coords = tmp_path / "coords.csv"
    pd.DataFrame({"array_row": rows + 0.1, "array_col": cols}, index=pd.Index(ids, name="barcode")).to_csv(coords)
    a = stentrans.read(counts, coords=coords)
    check_common(a, "square")
    np.testing.assert_array_equal(a.X.toarray(), X)
    np.testing.assert_array_equal(a.obs["array_row"], rows)
    # a bin size belongs to Visium HD bins only: not ignored here
    with pytest.raises(InputError, match="bin_size"):
        stentrans.read(counts, coords=coords, bin_size=16)
    # a counts spot without coordinates is an error naming it
    pd.DataFrame({"array_row": rows[1:], "array_col": cols[1:]}, index=pd.Index(ids[1:], name="barcode")).to_csv(coords)
    with pytest.raises(InputError, match="bc0"):
        stentrans.read(counts, coords=coords)


# ---------------------------------------------------------------------------
# h5ad
# ---------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Variable names are not unique")
def test_h5ad_obs_coordinates_and_in_tissue(tmp_path):
    rc = hex_spots(4, 5)
    n = len(rc)
    X = counts_matrix(n, 3)
    obs = pd.DataFrame({"array_row": rc[:, 0].astype(float), "array_col": rc[:, 1], "in_tissue": [0] + [1] * (n - 1)}, index=[f"b{i}" for i in range(n)])
    a = ad.AnnData(X=X.astype(np.float64), obs=obs)
    a.var_names = ["g", "g", "h"]
    path = tmp_path / "x.h5ad"
    a.write_h5ad(path)
    b = stentrans.read(path)
    check_common(b, "hex")
    assert b.n_obs == n - 1 and list(b.var_names) == ["g", "g-1", "h"]
    # no pixels: lattice coordinates scaled
    assert b.uns["stentrans"]["spatial_units"].startswith("um")
    assert stentrans.read(path, lattice="hex").uns["stentrans"]["lattice"] == "hex"
    with pytest.raises(InputError, match="contradicts"):
        stentrans.read(path, lattice="square")


@pytest.mark.parametrize("lattice", ["square", "hex"])
def test_h5ad_pixels_only_snapped(tmp_path, lattice):
    rng = np.random.default_rng(5)
    if lattice == "hex":
        rc = hex_spots(8, 9)
        pr, pc = hex_pixels(rc, spacing=80.0)
        xy = np.column_stack([pc, pr])
    else:
        rc = np.array([(r, c) for r in range(9) for c in range(11)])
        xy = rc[:, ::-1] * 80.0 + 300.0
    th = 0.2
    R = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    xy = xy @ R.T + rng.normal(0, 3.0, xy.shape)  # rotated, jittered
    a = ad.AnnData(X=counts_matrix(len(rc), 2).astype(np.float32))
    a.obsm["spatial"] = xy
    path = tmp_path / "px.h5ad"
    a.write_h5ad(path)
    b = stentrans.read(path)
    check_common(b, lattice)
    assert b.uns["stentrans"]["coordinates_from"] == 'obsm["spatial"]'
    assert b.uns["stentrans"]["snap"]["spacing"] == pytest.approx(80.0, rel=0.02)
    r2, c2 = b.obs["array_row"].to_numpy(), b.obs["array_col"].to_numpy()
    M = np.column_stack([rc, np.ones(len(rc))]).astype(float)
    coef, *_ = np.linalg.lstsq(M, np.column_stack([r2, c2]).astype(float), rcond=None)
    np.testing.assert_allclose(M @ coef, np.column_stack([r2, c2]), atol=1e-6)
    # one spot pushed half-way between lattice points: off-lattice, named
    xy2 = xy.copy()
    xy2[7] += 0.5 * (xy[8] - xy[7])
    a.obsm["spatial"] = xy2
    a.write_h5ad(path)
    with pytest.raises(InputError, match=r"off-lattice\): 7 \(offset 0\.[45]"):
        stentrans.read(path)


# ---------------------------------------------------------------------------
# CLI (in process; the subprocess runs are in test_bad_input.py)
# ---------------------------------------------------------------------------
def test_cli_info_and_qc(tmp_path, capsys):
    outs, truth = make_spaceranger(tmp_path, matrix="h5", positions="list", image=True)
    assert cli.main(["info", str(outs)]) == 0
    out = capsys.readouterr().out
    n = len(truth["barcodes"])
    assert f"spots: {n}" in out and "genes: 7" in out and "lattice: hex" in out
    assert "format: spaceranger" in out
    a = stentrans.read(outs)
    u, v = grid_of(a).shape
    assert f"grid: {u} x {v}" in out
    occ = n / grid_of(a).lattice_mask().sum()
    assert f"occupied: {occ:.3f}" in out

    dest = tmp_path / "res" / "qc.h5ad"
    assert cli.main(["qc", str(outs), "-o", str(dest), "--min-spots", "2", "--normalize", "--log1p"]) == 0
    b = ad.read_h5ad(dest)
    assert b.n_obs == n
    detected = (truth["X"] > 0).sum(0) >= 2
    assert b.n_vars == int(detected.sum())
    np.testing.assert_array_equal(b.layers["counts"].toarray(), truth["X"][:, detected])
    np.testing.assert_allclose(np.expm1(b.X.toarray()).sum(1), 1e4, rtol=1e-4)
    assert b.uns["stentrans"]["qc"]["n_spots_after"] == n
    assert b.uns["stentrans"]["lattice"] == "hex"
    assert b.uns["spatial"]["synthetic_lib"]["images"]["hires"].shape[:2] == (20, 30)
    assert list(grid_of(b).shape) == list(grid_of(a).shape)
    # the written file is itself a valid input (counts from layers["counts"])
    c = stentrans.read(dest)
    np.testing.assert_array_equal(c.X.toarray(), truth["X"][:, detected])
    assert not list(dest.parent.glob(".*part*"))


def test_gene_filter_default_keeps_genes_seen_in_3_spots_and_says_what_it_dropped(caplog):
    """pp.qc: genes detected in >= 3 spots by default, the authors' 10 % on request; the rule, the counts and the settings recorded and logged."""
    import logging

    from stentrans import pp

    n = 50
    det = np.array([0, 1, 2, 3, 5, 6, 30, 50])  # spots each gene is detected in
    X = np.zeros((n, det.size), dtype=np.float32)
    for j, k in enumerate(det):
        X[:k, j] = 1.0
    obs = pd.DataFrame({"array_row": np.arange(n) // 10, "array_col": np.arange(n) % 10}, index=[f"s{i}" for i in range(n)])
    a = ad.AnnData(X, obs=obs, var=pd.DataFrame(index=[f"g{k}" for k in det]))
    a.uns["stentrans"] = {"lattice": "square"}
    with caplog.at_level(logging.DEBUG, logger="stentrans.qc"):
        b = pp.qc(a)
    assert list(b.var_names) == ["g3", "g5", "g6", "g30", "g50"]
    q = b.uns["stentrans"]["qc"]
    assert (q["n_genes_before"], q["n_genes_after"], q["n_genes_dropped"], q["n_genes_undetected"]) == (8, 5, 3, 1)
    assert q["gene_rule"] == "detected in at least 3 spots" and q["min_spots"] == 3 and q["min_spot_fraction"] == 0.0
    assert "genes: 5 of 8 kept (detected in at least 3 spots); 3 dropped, 1 of them never detected" in caplog.text
    note = pp.gene_filter_note(b)
    assert note.endswith("Change with --min-spots N, --min-spot-fraction F (--no-filter keeps every gene)")
    assert "qc.min_spots" in pp.gene_filter_note(b, how="workflow")
    # the authors' rule: more than 10 % of the spots (here: 6 or more), the minimum of 3 no longer binding
    c = pp.qc(a, min_spot_fraction=0.1)
    assert list(c.var_names) == ["g6", "g30", "g50"] and c.uns["stentrans"]["qc"]["gene_rule"] == "detected in more than 10% of the 50 spots: 6 or more"
    # min_spots 0 still drops a gene detected nowhere; the evaluation's genes are the 10 % rule's
    assert list(pp.qc(a, min_spots=0).var_names) == [f"g{k}" for k in det[1:]]
    assert pp.scored_genes(b) == ["g6", "g30", "g50"]
    with pytest.raises(stentrans.InputError, match="min_spots"):
        pp.qc(a, min_spots=60)


def test_cli_st_melanoma_info(shared_data, capsys):
    assert cli.main(["info", str(shared_data / "melanoma_mel1_rep1.tsv.gz")]) == 0
    out = capsys.readouterr().out
    assert "spots: 279" in out and "genes: 15666" in out and "lattice: square" in out and "grid: 25 x 21" in out


@pytest.mark.slow
def test_qc_writes_melanoma_h5ad(shared_data, tmp_path):
    """Regression: the ST table's header cell must not become an (int) index name in h5ad."""
    import anndata

    from stentrans.cli import main

    out = tmp_path / "mel.h5ad"
    assert main(["qc", str(shared_data / "melanoma_mel1_rep1.tsv.gz"), "-o", str(out)]) == 0
    a = anndata.read_h5ad(out)
    assert a.shape == (279, 13024)  # genes detected in at least 3 spots (the default)
    out10 = tmp_path / "mel10.h5ad"
    assert main(["qc", str(shared_data / "melanoma_mel1_rep1.tsv.gz"), "-o", str(out10), "--min-spot-fraction", "0.1"]) == 0
    assert anndata.read_h5ad(out10).shape == (279, 6472)  # genes detected in > 10 % of spots, as the authors' code


# ---------------------------------------------------------------------------
# issue 19: R's make.names ids, bounded grids, counts that are no counts,
# empty gene names, Visium HD parquet positions, damaged 10x HDF5 structure
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("transpose", [False, True])
def test_st_make_names_prefix(tmp_path, transpose):
    ids = ["X12x5", "X13x5", "X16.92x9.015", "X14x6"]
    X = counts_matrix(len(ids), 3)
    f = tmp_path / ("r.csv" if transpose else "r.tsv")
    write_st_table(f, X, ids, ["g1", "g2", "g3"], transpose=transpose, sep="," if transpose else "\t")
    a = stentrans.read(f)
    check_common(a, "square")
    assert list(a.obs_names) == ids  # the ids of the file
    assert a.uns["stentrans"]["spot_id_prefix"] == "X"
    np.testing.assert_array_equal(a.obs["array_col"], [12, 13, 17, 14])
    np.testing.assert_array_equal(a.obs["array_row"], [5, 5, 9, 6])
    np.testing.assert_array_equal(a.obs["spot_x"], [12, 13, 16.92, 14])
    # the prefix is removed only when every id has it
    g = tmp_path / "mixed.tsv"
    write_st_table(g, X, ["X12x5", "13x5", "X16x9", "X14x6"], ["g1", "g2", "g3"])
    with pytest.raises(InputError, match="no spot coordinates"):
        stentrans.read(g)


def test_grid_is_bounded_at_read_time(tmp_path):
    X = counts_matrix(3, 2)
    f = tmp_path / "huge.tsv"
    write_st_table(f, X, ["1x1", "2x1", "1000000000000x1"], ["g1", "g2"])
    with pytest.raises(InputError, match=r"huge\.tsv: spot ids \(X: array_col\): .*limit of 32768"):
        stentrans.read(f)
    write_st_table(f, X, ["1x1", "2x1", "1e300x1"], ["g1", "g2"])
    with pytest.raises(InputError, match="array_col.*out of range"):
        stentrans.read(f)
    # 20000 x 20000 spots: each side fits, the grid does not
    write_st_table(f, X, ["0x0", "19999x1", "1x19999"], ["g1", "g2"])
    with pytest.raises(InputError, match="limit of 67108864 pixels"):
        stentrans.read(f)
    # h5ad obs coordinates and pixel positions
    a = ad.AnnData(X=sp.csr_matrix(X.astype(np.float32)), obs=pd.DataFrame({"array_row": [0, 1, 10**9], "array_col": [0, 1, 1]}, index=["a", "b", "c"]))
    a.write_h5ad(tmp_path / "huge.h5ad")
    with pytest.raises(InputError, match=r'obs\["array_row"\].*limit of 32768'):
        stentrans.read(tmp_path / "huge.h5ad")
    # cells binned into too many squares
    from stentrans.io import bin_cells

    cells = pd.DataFrame({"x": [0.0, 1e9], "y": [0.0, 1.0]})
    with pytest.raises(InputError, match="column 'x': value 1000000000 at row 2 .*squares of side 1, more than the limit of 32768"):
        bin_cells(cells, np.ones((2, 1)), 1.0, source="cells.csv")


@pytest.mark.parametrize("value", ["1e308", "inf", "-inf", "nan", "-3", "2e9"])
def test_st_table_counts_that_are_no_counts(tmp_path, value):
    f = tmp_path / "bad.tsv"
    f.write_text("\tg1\tg2\n1x1\t1\t2\n2x1\t" + value + "\t0\n")
    with pytest.raises(InputError) as e:
        stentrans.read(f)
    msg = str(e.value)
    assert "bad.tsv: counts: " in msg and "'2x1'" in msg and "'g1'" in msg
    assert {"1e308": "1e+308", "2e9": "2e+09", "-3": "-3"}.get(value, value.lstrip("-").replace("nan", "NaN")) in msg


@pytest.mark.parametrize("value", [1e308, np.inf, np.nan, -1.0, 3e9])
def test_10x_h5_and_h5ad_counts_that_are_no_counts(tmp_path, value):
    outs, truth = make_spaceranger(tmp_path, matrix="h5")
    h5 = outs / "filtered_feature_bc_matrix.h5"
    with h5py.File(h5, "r+") as f:
        data = f["matrix/data"][()].astype(np.float64)
        data[3] = value
        del f["matrix/data"]
        f["matrix"].create_dataset("data", data=data)
    with pytest.raises(InputError, match=r"filtered_feature_bc_matrix\.h5: counts: .*at spot 'SPOT"):
        stentrans.read(outs)
    X = counts_matrix(4, 2).astype(np.float64)
    X[2, 1] = value
    a = ad.AnnData(X=X, obs=pd.DataFrame({"array_row": [0, 0, 1, 1], "array_col": [0, 1, 0, 1]}, index=list("abcd")), var=pd.DataFrame(index=["g1", "g2"]))
    a.write_h5ad(tmp_path / "bad.h5ad")
    with pytest.raises(InputError, match=r"bad\.h5ad: X: .*at spot 'c', gene 'g2'"):
        stentrans.read(tmp_path / "bad.h5ad")


def test_empty_gene_names_rejected(tmp_path):
    f = tmp_path / "hdr.tsv"
    f.write_text("\tg1\t\tg3\n1x1\t1\t2\t3\n2x1\t3\t0\t1\n")
    with pytest.raises(InputError, match=r"hdr\.tsv: header: empty label '' in column 3"):
        stentrans.read(f)
    f.write_text("g1\t \tg3\n1x1\t1\t2\t3\n2x1\t3\t0\t1\n")  # no corner cell: column 2 of the line
    with pytest.raises(InputError, match="column 2 of the header"):
        stentrans.read(f)
    # genes on the rows: an empty row label
    f.write_text("\t1x1\t2x1\ng1\t1\t2\n\t3\t0\n")
    with pytest.raises(InputError, match="row labels: empty or NA label in data row 2"):
        stentrans.read(f)
    # 10x features (HDF5 and mtx) and h5ad var names
    for matrix in ("h5", "mtx"):
        outs, _ = make_spaceranger(tmp_path / matrix, matrix=matrix)
        if matrix == "h5":
            with h5py.File(outs / "filtered_feature_bc_matrix.h5", "r+") as h:
                names = h["matrix/features/name"][()]
                names[4] = b""
                h["matrix/features/name"][...] = names
            match = r"filtered_feature_bc_matrix\.h5: genes: empty gene name '' at gene 5 of 7"
        else:
            feats = outs / "filtered_feature_bc_matrix" / "features.tsv.gz"
            lines = gzip.decompress(feats.read_bytes()).decode().splitlines()
            lines[4] = "ENSG00004\t\tGene Expression"
            feats.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
            match = r"features\.tsv\.gz: line 5: empty gene name"
        with pytest.raises(InputError, match=match):
            stentrans.read(outs)
    a = ad.AnnData(X=np.ones((3, 2)), obs=pd.DataFrame({"array_row": [0, 0, 1], "array_col": [0, 1, 0]}, index=list("abc")), var=pd.DataFrame(index=["g1", ""]))
    a.write_h5ad(tmp_path / "e.h5ad")
    with pytest.raises(InputError, match=r"e\.h5ad: genes: empty gene name '' at gene 2 of 2"):
        stentrans.read(tmp_path / "e.h5ad")
    # cell tables for `bin`
    from stentrans.io import read_cells

    (tmp_path / "cells.csv").write_text("cell,x,y,g1,,g3\nc1,0,0,1,2,3\n")
    with pytest.raises(InputError, match=r"cells\.csv: header: empty label '' in column 5"):
        read_cells(tmp_path / "cells.csv")
    (tmp_path / "cells.csv").write_text("cell,x,y,g1,g2\nc1,0,0,1,2\nc2,1,1,abc,3\nc3,2,2,4,5\n")
    with pytest.raises(InputError, match=r"cells\.csv: g1: non-numeric value 'abc' in row 2"):
        read_cells(tmp_path / "cells.csv")


def test_damaged_10x_h5_structure_is_an_input_error(tmp_path):
    """Out-of-range gene indices would crash scipy (a segfault, not a traceback): refused first."""
    for what in ("indices", "indptr", "shape", "drop"):
        outs, _ = make_spaceranger(tmp_path / what, matrix="h5")
        with h5py.File(outs / "filtered_feature_bc_matrix.h5", "r+") as f:
            m = f["matrix"]
            if what == "indices":
                ix = m["indices"][()]
                ix[2] = 10**6
                m["indices"][...] = ix
            elif what == "indptr":
                ip = m["indptr"][()]
                ip[-1] += 3
                m["indptr"][...] = ip
            elif what == "shape":
                m["shape"][...] = np.array([3, 5], dtype=np.int32)
            else:
                del m["features/name"]
        with pytest.raises(InputError, match=r"filtered_feature_bc_matrix\.h5: /matrix"):
            stentrans.read(outs)


def test_positions_parquet_and_scalefactors_checked(tmp_path):
    outs, truth = make_spaceranger(tmp_path, matrix="h5")
    pos_csv = outs / "spatial" / "tissue_positions.csv"
    pos = pd.read_csv(pos_csv)
    pos.to_parquet(outs / "spatial" / "tissue_positions.parquet", index=False)
    pos_csv.unlink()
    a = stentrans.read(outs)  # a Visium (hex) folder with parquet positions
    check_common(a, "hex")
    assert a.uns["stentrans"]["format"] == "spaceranger"
    got = read_positions(outs / "spatial" / "tissue_positions.parquet")
    np.testing.assert_array_equal(got["array_row"].to_numpy(), pos["array_row"].to_numpy())
    (outs / "spatial" / "tissue_positions.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match=r"tissue_positions\.parquet: file: cannot be read as parquet"):
        stentrans.read(outs)
    pos["pxl_row_in_fullres"] = pos["pxl_row_in_fullres"].astype(float)
    pos.loc[1, "pxl_row_in_fullres"] = np.inf
    pos.to_parquet(outs / "spatial" / "tissue_positions.parquet", index=False)
    with pytest.raises(InputError, match=r"pxl_row_in_fullres: value inf for spot"):
        stentrans.read(outs)
    pos.loc[1, "pxl_row_in_fullres"] = 100.0
    pos.to_parquet(outs / "spatial" / "tissue_positions.parquet", index=False)
    sf = outs / "spatial" / "scalefactors_json.json"
    for bad in ({"spot_diameter_fullres": "abc"}, {"spot_diameter_fullres": 1e308}, {"tissue_hires_scalef": -1}):
        sf.write_text(json.dumps(bad))
        with pytest.raises(InputError, match=rf"scalefactors_json\.json: {next(iter(bad))}: .* is not a positive number"):
            stentrans.read(outs)


def test_one_table_of_formats_tells_every_input_apart(tmp_path):
    """stentrans.io.formats: every format's reader loads and takes its table's keywords; detect names the format; the CLI reads the table."""
    import argparse
    import inspect

    from stentrans.cli import build_parser
    from stentrans.datasets import simulate
    from stentrans.io import POINT_FORMATS, SPOT_FORMATS, detect

    uniform = {"lattice", "snap_tol", "layer", "library_id", "bin_size"}
    for f in SPOT_FORMATS.values():
        params = inspect.signature(f.load()).parameters
        assert uniform <= set(params) or any(p.kind == p.VAR_KEYWORD for p in params.values()), f.name
    for f in POINT_FORMATS.values():
        params = set(inspect.signature(f.load()).parameters)
        assert set(f.options) <= params, f.name
    a = simulate("square", n_genes=4, seed=0, size="st")
    a.write_h5ad(tmp_path / "x.h5ad")
    (tmp_path / "counts.tsv").write_text("\tg1\n1x1\t3\n")
    (tmp_path / "store.zarr").mkdir()
    (tmp_path / "outs" / "spatial").mkdir(parents=True)
    assert [detect(tmp_path / n) for n in ("x.h5ad", "counts.tsv", "store.zarr", "outs")] == ["h5ad", "st", "spatialdata", "spaceranger"]
    for bad, what in (("tissue_positions.csv", "positions without counts"), ("slide.loom", "unknown input format")):
        (tmp_path / bad).write_text("x\n")
        with pytest.raises(InputError, match=what):
            detect(tmp_path / bad)
    sub = next(x for x in build_parser()._actions if isinstance(x, argparse._SubParsersAction))
    fmt = next(x for x in sub.choices["bin"]._actions if x.dest == "format")
    assert list(fmt.choices) == ["auto", *POINT_FORMATS]


def test_the_reader_records_in_tissue_positions_so_lost_spots_read_no_file(tmp_path):
    """Two in-tissue positions without counts: the reader records them, fill_lost='tissue' finds them with the positions file gone."""
    from stentrans import lost
    from stentrans.grid import to_grid

    outs, truth = make_spaceranger(tmp_path)
    a = stentrans.read(outs.parent)
    st = a.uns["stentrans"]
    pos = truth["pos"]
    assert st["n_positions_without_counts"] == 2 and len(st["in_tissue_positions"]) == int((pos["in_tissue"] == 1).sum())
    without = pos[(pos["in_tissue"] == 1) & ~pos.index.isin(a.obs_names)]
    expect = set(zip(without["array_row"].astype(int), without["array_col"].astype(int)))
    (outs / "spatial" / "tissue_positions.csv").unlink()  # enhancement reads no file
    assert set(lost.tissue_positions(a)) == expect and len(expect) == 2
    gd = to_grid(a[:, :0])
    mode, mask = lost.resolve("tissue", gd.grid, gd.mask, adata=a)
    assert mode == "tissue" and 0 < int(mask.sum()) <= 2
