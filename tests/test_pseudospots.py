"""Pseudo-spots from finer data (stentrans.io.binning, ``stentrans bin --spacing``): disk sums, tissue, truth at the enhanced positions, noise ceiling."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import stentrans
from stentrans import InputError, cli
from stentrans.lattice import Grid, physical
from stentrans.metrics import pcc
from stentrans.io.binning import DIAMETER_FRACTION, PseudoSpotConfig, binomial_split, disk_counts, noise_ceiling, pseudospots
from stentrans.io.formats import read_finer

GENES = ["Aa", "Bb", "Cc", "Dd", "Ee"]


def molecules(n=6000, seed=0) -> pd.DataFrame:
    """Molecules in an elliptical 'tissue' with a hole-free dense core and sparse noise around it."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 2 * np.pi, n)
    r = np.sqrt(rng.uniform(0, 1, n))
    x = 60 + 50 * r * np.cos(t)
    y = 40 + 30 * r * np.sin(t)
    g = rng.choice(GENES, n, p=[0.4, 0.3, 0.15, 0.1, 0.05])
    # a gradient: gene Aa more frequent on the right
    g = np.where((x > 60) & (rng.uniform(size=n) < 0.3), "Aa", g)
    return pd.DataFrame({"x": x, "y": y, "gene": g})


def brute_counts(df, centres, radius, genes):
    """Counts per centre and gene by checking every molecule's distance."""
    out = np.zeros((len(centres), len(genes)))
    gi = pd.Index(genes).get_indexer(df["gene"])
    xy = df[["x", "y"]].to_numpy()
    for k, (cx, cy) in enumerate(centres):
        inside = (xy[:, 0] - cx) ** 2 + (xy[:, 1] - cy) ** 2 <= radius**2
        np.add.at(out[k], gi[inside], 1)
    return out


@pytest.fixture(scope="module")
def mol_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("mol") / "molecules.csv.gz"
    molecules().to_csv(path, index=False)
    return path


@pytest.mark.parametrize("lattice", ["hex", "square"])
def test_every_spot_counts_the_molecules_within_half_the_diameter(mol_file, lattice):
    df = molecules()
    pts = read_finer(mol_file)
    A = 8.0
    spots, _ = pseudospots(pts, lattice, A)
    D = DIAMETER_FRACTION[lattice] * A
    assert spots.uns["binning"]["spot_diameter"] == pytest.approx(D)
    assert D == pytest.approx({"hex": 0.55, "square": 0.5}[lattice] * A)
    origin = np.array([df.x.min(), df.y.min()])
    r, c = spots.obs["array_row"].to_numpy(), spots.obs["array_col"].to_numpy()
    x, y = physical(r, c, lattice, spacing=A)
    assert np.array_equal(spots.obsm["spatial"], np.column_stack([x + origin[0], y + origin[1]]))
    if lattice == "hex":
        assert ((r + c) % 2 == 0).all()
    expect = brute_counts(df, spots.obsm["spatial"], D / 2, list(spots.var_names))
    assert np.array_equal(spots.X.toarray(), expect)
    assert (spots.X.sum(axis=1) >= 1).all()
    # no lattice point of the tissue that holds counts is missing
    rr, cc = np.meshgrid(np.arange(0, 40), np.arange(0, 40), indexing="ij")
    rr, cc = rr.ravel(), cc.ravel()
    if lattice == "hex":
        rr, cc = rr[(rr + cc) % 2 == 0], cc[(rr + cc) % 2 == 0]
    px, py = physical(rr, cc, lattice, spacing=A)
    px, py = px + origin[0], py + origin[1]
    inbox = (px <= df.x.max()) & (py <= df.y.max())
    held = brute_counts(df, np.column_stack([px, py])[inbox], D / 2, list(spots.var_names)).sum(1) > 0
    got = set(zip(r, c))
    core = [(a, b) for a, b, h, cx, cy in zip(rr[inbox], cc[inbox], held, px[inbox], py[inbox]) if h and ((cx - 60) / 45) ** 2 + ((cy - 40) / 25) ** 2 < 1]
    assert set(core) <= got  # the dense core is tissue
    assert got <= {(a, b) for a, b, h in zip(rr[inbox], cc[inbox], held) if h}


def test_disk_counts_is_a_closed_disk():
    xy = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [0.5, 0.5]])
    X = sp.csr_matrix(np.eye(4, dtype=np.float32))
    out, n = disk_counts(xy, X, np.array([[0.0, 0.0]]), 1.0)
    assert n.tolist() == [3] and out.toarray().tolist() == [[1, 1, 0, 1]]


@pytest.mark.parametrize("lattice", ["hex", "square"])
def test_truth_positions_are_the_new_spots_enhance_writes(tmp_path, mol_file, lattice):
    spots_f, truth_f = tmp_path / "spots.h5ad", tmp_path / "truth.h5ad"
    assert cli.main(["bin", str(mol_file), "-o", str(spots_f), "--lattice", lattice, "--spacing", "8", "--truth", str(truth_f), "--um-per-unit", "2"]) == 0
    spots = ad.read_h5ad(spots_f)
    truth = ad.read_h5ad(truth_f)
    # SPOTS is an input like any other: same lattice and coordinates after stentrans.read
    a = stentrans.read(spots_f)
    assert a.uns["stentrans"]["lattice"] == lattice
    assert np.array_equal(a.obsm["spatial"], spots.obsm["spatial"])
    assert np.array_equal(a.obs["array_row"], spots.obs["array_row"]) and np.array_equal(a.obs["array_col"], spots.obs["array_col"])
    assert a.uns["binning"]["um_per_unit"] == 2.0 and a.uns["binning"]["spacing_um"] == 16.0

    enh = stentrans.tl.enhance(a, method="nn", progress=False)
    key = lambda d, m: set(zip(d.obs["array_row"][m].to_numpy(), d.obs["array_col"][m].to_numpy()))  # noqa: E731
    e_new = key(enh, enh.obs["is_imputed"].to_numpy())
    t_new = key(truth, truth.obs["is_imputed"].to_numpy())
    # the truth keeps the positions of H(M) that lie in tissue: all of them but a few at concave edges
    assert t_new <= e_new
    assert len(t_new) >= 0.95 * len(e_new) and len(t_new) > 50
    assert key(truth, truth.obs["is_measured"].to_numpy()) == key(enh, ~enh.obs["is_imputed"].to_numpy())
    # same names as the enhanced output, spot for spot
    assert set(truth.obs_names) <= set(enh.obs_names)
    assert (truth.obs["is_imputed"] == ~truth.obs["is_measured"]).all()
    assert list(truth.var_names) == list(spots.var_names)
    # the truth is the same disk: counts at measured positions are the spots' counts,
    # counts at new positions the molecules within D / 2
    meas = truth[truth.obs["is_measured"].to_numpy()]
    assert np.array_equal(meas.X.toarray(), spots[meas.obs_names].X.toarray())
    new = truth[truth.obs["is_imputed"].to_numpy()]
    D = spots.uns["binning"]["spot_diameter"]
    assert np.array_equal(new.X.toarray(), brute_counts(molecules(), new.obsm["spatial"], D / 2, list(truth.var_names)))
    b0 = spots.uns["binning"]["origin"]
    x, y = physical(new.obs["array_row"], new.obs["array_col"], lattice, spacing=8.0)
    assert np.allclose(new.obsm["spatial"], np.column_stack([x + b0[0], y + b0[1]]))
    assert Grid.from_dict(truth.uns["stentrans"]["grid"]) == Grid.from_dict(enh.uns["stentrans"]["grid"])
    for k in ("lattice", "spacing", "spot_diameter", "units", "origin", "tissue_mask", "n_points", "input_sha256", "n_truth", "n_new_in_H"):
        assert k in truth.uns["binning"], k


def test_spots_record_and_defaults(mol_file):
    pts = read_finer(mol_file)
    s, t = pseudospots(pts, "square", 10.0, config=PseudoSpotConfig(spot_diameter=6.0))
    assert t is None
    b = s.uns["binning"]
    assert b["spot_diameter"] == 6.0 and b["lattice"] == "square" and b["n_points"] == 6000 and b["n_spots"] == s.n_obs
    assert "um_per_unit" not in b  # generic x/y columns: unit unknown
    assert s.obs["array_row"].dtype == np.int64 and (s.obs["in_tissue"] == 1).all()
    assert s.uns["stentrans"]["lattice"] == "square" and s.uns["stentrans"]["source"] == str(mol_file)
    assert sp.issparse(s.X) and s.X.dtype == np.float32
    assert list(s.obs_names[:1]) == [f"r{s.obs.array_row.iloc[0]}_c{s.obs.array_col.iloc[0]}"]


def test_spots_file_read_back_keeps_its_units_and_spots(tmp_path, mol_file):
    """SPOTS.h5ad is an input like any other: read back, its coordinates stay in the finer data's units, as it says."""
    s, t = pseudospots(read_finer(mol_file), "hex", 10.0)
    s.write_h5ad(tmp_path / "s.h5ad")
    a = stentrans.read(tmp_path / "s.h5ad")
    assert a.uns["stentrans"]["spatial_units"] == s.uns["stentrans"]["spatial_units"] and "pixels" not in a.uns["stentrans"]["spatial_units"]
    assert a.uns["stentrans"]["lattice"] == "hex" and a.n_obs == s.n_obs
    np.testing.assert_array_equal(a.obsm["spatial"], s.obsm["spatial"])
    assert (a.obs["array_row"].to_numpy() == s.obs["array_row"].to_numpy()).all()
    # and the enhanced data, whose obsm["spatial"] is in the same coordinates, says so too
    enh = stentrans.tl.enhance(a, method="linear", progress=False)
    assert enh.uns["stentrans"]["spatial_units"] == s.uns["stentrans"]["spatial_units"]
    meas = ~enh.obs["is_imputed"].to_numpy()
    np.testing.assert_allclose(np.sort(enh.obsm["spatial"][meas], axis=0), np.sort(s.obsm["spatial"], axis=0), atol=1e-6)


def test_bin_errors_leave_nothing_behind(tmp_path, mol_file, capsys):
    out = tmp_path / "out" / "spots.h5ad"
    assert cli.main(["bin", str(mol_file), "-o", str(out), "--spacing", "8"]) == 2
    assert "--lattice" in capsys.readouterr().err
    assert cli.main(["bin", str(mol_file), "-o", str(out), "--lattice", "hex", "--spacing", "-1"]) == 2
    err = capsys.readouterr().err
    assert str(mol_file) in err and "--spacing" in err and "-1" in err and len(err.strip().splitlines()) == 1
    assert cli.main(["bin", str(mol_file), "-o", str(out), "--lattice", "hex", "--spacing", "8", "--gene", "target"]) == 2
    err = capsys.readouterr().err
    assert "'target'" in err and "--gene" in err
    assert cli.main(["bin", str(mol_file), "-o", str(out), "--lattice", "hex", "--bin-size", "8"]) == 2
    assert cli.main(["bin", str(mol_file), "-o", str(out), "--bin-size", "8", "--truth", str(tmp_path / "t.h5ad")]) == 2
    assert not out.exists() and not any(tmp_path.rglob("*.h5ad*"))


def test_square_full_coverage_mode_is_kept(tmp_path, mol_file):
    out = tmp_path / "sq.h5ad"
    assert cli.main(["bin", str(mol_file), "-o", str(out), "--bin-size", "10", "--gene-column", "gene"]) == 0
    a = ad.read_h5ad(out)
    assert a.uns["stentrans"]["format"] == "binned" and a.X.sum() == 6000


# ---------------------------------------------------------------- noise ceiling


def test_binomial_split_sparse_and_dense():
    rng = np.random.default_rng(1)
    dense = rng.poisson(3.0, (200, 7)).astype(np.float32)
    a, b = binomial_split(dense, np.random.default_rng(2))
    assert np.array_equal(a + b, dense) and a.dtype == np.float32 and (a >= 0).all() and (b >= 0).all()
    assert abs(a.sum() / dense.sum() - 0.5) < 0.03
    S = sp.csr_matrix(dense)
    sa, sb = binomial_split(S, np.random.default_rng(2))
    assert sp.issparse(sa) and np.array_equal((sa + sb).toarray(), dense)
    assert np.array_equal(sa.toarray(), a)  # same draws as the dense split
    with pytest.raises(InputError, match="integer"):
        binomial_split(np.array([[0.5, 1.0]]), rng)


def test_noise_ceiling_matches_the_poisson_value():
    """Poisson counts of a known smooth rate: the ceiling is corr(counts, rate) = sqrt(V / (V + m))."""
    rng = np.random.default_rng(0)
    n = 40000
    u = np.linspace(0, 4 * np.pi, n)
    scales = np.array([0.5, 2.0, 8.0, 30.0])
    rate = scales[None, :] * (1.2 + np.sin(u)[:, None])
    counts = sp.csr_matrix(rng.poisson(rate).astype(np.float32))
    ceil = noise_ceiling(counts, np.random.default_rng(3))
    V, m = rate.var(0), rate.mean(0)
    expect = np.sqrt(V / (V + m))
    assert np.allclose(ceil, expect, atol=0.015), (ceil, expect)
    assert np.allclose(ceil, pcc(counts.toarray(), rate), atol=0.015)
    # a constant gene has no ceiling
    flat = noise_ceiling(np.column_stack([np.zeros(500), rng.poisson(1.0, 500)]), rng)
    assert np.isnan(flat[0]) and np.isfinite(flat[1])


def test_square_bins_and_disks_share_one_reader(tmp_path):
    """--bin-size and --spacing read the same Points: a GEM file's MIDCount counts in squares as in disks."""
    from stentrans import cli
    from stentrans.io import read_finer, square_bins

    gem = tmp_path / "tiny.gem"
    gem.write_text("geneID\tx\ty\tMIDCount\nA\t0\t0\t3\nA\t1\t1\t2\nB\t12\t0\t5\nB\t13\t1\t1\n")
    pts = read_finer(gem)
    assert pts.kind == "gem" and float(pts.counts.sum()) == 11
    sq = square_bins(pts, 10.0)
    assert sorted(sq.obs_names) == ["0x0", "1x0"] and float(sq.X.sum()) == 11
    assert sq[:, "A"].X.toarray().ravel().tolist() == [5.0, 0.0] and sq.obs["n_cells"].tolist() == [2, 2]
    out = tmp_path / "sq.h5ad"
    assert cli.main(["bin", str(gem), "-o", str(out), "--bin-size", "10", "--origin", "0", "0"]) == 0
    back = ad.read_h5ad(out)
    assert float(back.X.sum()) == 11 and back.uns["stentrans"]["binning"]["unit"] == "molecules"
