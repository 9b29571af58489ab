"""Lattice geometry: exact round trips, D and H(M) on square and hex lattices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import anndata as ad
import scipy.sparse as sp

from stentrans import InputError
from stentrans.grid import from_grid, to_grid
from stentrans.lattice import Grid, downsample, enhanced_mask, fit_grid, kept_mask, spots_to_pixels


def _adata(rows, cols, lattice, n_genes=7, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.negative_binomial(2, 0.3, size=(len(rows), n_genes)).astype(np.float32)
    obs = pd.DataFrame({"array_row": rows, "array_col": cols}, index=[f"s{i}" for i in range(len(rows))])
    a = ad.AnnData(sp.csr_matrix(X), obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(n_genes)]))
    a.uns["stentrans"] = {"lattice": lattice}
    return a


def _hex_spots(nr=9, nc=14, seed=0, drop=0.2):
    rng = np.random.default_rng(seed)
    r, c = np.mgrid[0:nr, 0:nc]
    ok = ((r + c) % 2 == 0) & (rng.random(r.shape) > drop)
    return r[ok] + 3, c[ok] + 5  # odd min row: origin column shifted to keep parity


@pytest.mark.parametrize("lattice", ["square", "hex"])
def test_roundtrip_is_exact(lattice):
    if lattice == "square":
        rng = np.random.default_rng(1)
        r, c = np.mgrid[0:8, 0:11]
        keep = rng.random(r.shape) > 0.25
        rows, cols = r[keep] + 2, c[keep] + 5
    else:
        rows, cols = _hex_spots()
    a = _adata(rows, cols, lattice)
    gd = to_grid(a)
    assert gd.maps.dtype == np.float32
    assert gd.maps.shape[0] == a.n_vars
    assert gd.mask.sum() == a.n_obs  # no two spots share a pixel
    back = from_grid(gd.maps, gd)
    np.testing.assert_array_equal(back, a.X.toarray())  # bit for bit
    back2 = from_grid(gd.maps, a)
    np.testing.assert_array_equal(back2, a.X.toarray())
    # coordinates round trip
    rr, cc = gd.grid.coords(gd.p, gd.q)
    np.testing.assert_array_equal(rr, rows)
    np.testing.assert_array_equal(cc, cols)
    if lattice == "hex":
        assert ((gd.p + gd.q) % 2 == 0).all()  # checkerboard parity of lattice pixels
        assert (gd.mask & ~gd.grid.lattice_mask()).sum() == 0


def test_hex_rejects_odd_parity_and_collisions():
    with pytest.raises(InputError, match="odd array_row"):
        fit_grid([0, 1], [0, 0], "hex", source="x.csv")
    g = fit_grid([0, 0, 2], [0, 2, 2], "square")
    with pytest.raises(InputError, match="s0/s1"):
        spots_to_pixels(np.array([0, 0]), np.array([2, 2]), g, ids=["s0", "s1"])
    with pytest.raises(InputError, match="not on the square grid"):
        g.pixels([0.5], [0])


def test_square_downsample_and_H():
    mask = np.ones((4, 5), bool)
    maps = np.arange(20, dtype=np.float32).reshape(1, 4, 5)
    lr, mlr = downsample(maps, mask, "square")
    np.testing.assert_array_equal(lr[0], maps[0, ::2, ::2])
    assert mlr.all() and mlr.shape == (2, 3)
    k = kept_mask(mask, "square")
    assert k.sum() == 6 and k[0, 0] and k[2, 4] and not k[1, 1]
    H = enhanced_mask(mask, "square")
    assert H.shape == (8, 10)
    # full 4x5 block: new rows/cols between spots, none beyond the last spot
    assert H[: 7, : 9].all() and not H[7].any() and not H[:, 9].any()
    # a lone spot gets no neighbours
    m = np.zeros((3, 3), bool)
    m[1, 1] = True
    H1 = enhanced_mask(m, "square")
    assert H1.sum() == 1 and H1[2, 2]
    # two horizontal neighbours: their midpoint
    m[1, 2] = True
    H2 = enhanced_mask(m, "square")
    assert set(zip(*np.nonzero(H2))) == {(2, 2), (2, 3), (2, 4)}
    # diagonal pair: the centre of the 2x2 block
    m2 = np.zeros((3, 3), bool)
    m2[0, 0] = m2[1, 1] = True
    assert set(zip(*np.nonzero(enhanced_mask(m2, "square")))) == {(0, 0), (1, 1), (2, 2)}


def test_hex_downsample_parity_and_H():
    rows, cols = np.nonzero(np.indices((8, 12)).sum(0) % 2 == 0)
    a = _adata(rows, cols, "hex", n_genes=1)
    gd = to_grid(a)
    lr, mlr = downsample(gd.maps, gd.mask, "hex")
    i, k = np.nonzero(mlr)
    assert ((i + k) % 2 == 0).all()  # the coarse lattice is again a checkerboard
    assert mlr.sum() == gd.mask.sum() // 4  # a quarter of the spots survive
    # every kept spot is a lattice point of the measured grid at (2i, 2k)
    km = kept_mask(gd.mask, "hex")
    assert km.sum() == mlr.sum() and (km <= gd.mask).all()
    # kept spots are 2 lattice spacings apart: (0, +-4) and (+-2, +-2)
    pts = set(zip(*np.nonzero(km)))
    for p, q in pts:
        for dp, dq in [(0, 4), (2, 2), (2, -2)]:
            if 0 <= p + dp < 8 and 0 <= q + dq < 12:
                assert (p + dp, q + dq) in pts
        assert (p, q + 2) not in pts and (p + 1, q + 1) not in pts
    H = enhanced_mask(gd.mask, "hex")
    P, Q = np.nonzero(H)
    assert ((P + Q) % 2 == 0).all()  # half-spacing lattice is the checkerboard of the doubled grid
    # interior of a full hex patch: every checkerboard point of the doubled grid is present
    inner = H[2:-3, 2:-3]
    cb = (np.indices(inner.shape).sum(0) % 2) == 0
    assert (inner == cb).all()
    # and D applied to the enhanced geometry gives back the measured geometry
    Hd = np.zeros_like(H)
    _, m2 = downsample(np.zeros((1,) + H.shape, np.float32), H, "hex")
    assert m2.shape == gd.mask.shape


def test_grid_dict_roundtrip():
    g = Grid("hex", 3.0, 5.0, (10, 20), 1.0)
    assert Grid.from_dict(g.to_dict()) == g
    assert g.up().up().down().down() == g
