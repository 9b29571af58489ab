"""Baselines (Linear, Cubic, NN, NEDI, DIST): geometry, exactness, accuracy, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stentrans.models.baselines import nedi as nedi_mod
from stentrans.models.baselines.dispatch import METHODS, upsample
from stentrans.models.baselines.dist import DISTNet, train_dist
from stentrans._errors import InputError
from stentrans.lattice import enhanced_mask

LATTICES = ("square", "hex")
EXACT = ("linear", "cubic", "nn", "nedi")


def _scale(lattice):
    return math.sqrt(3.0) if lattice == "hex" else 1.0


def _tissue(lattice, u=14, v=16, drop=0.1, seed=0):
    """An elliptic tissue with a few dropped spots (holes)."""
    rng = np.random.default_rng(seed)
    p, q = np.indices((u, v))
    mask = ((p - (u - 1) / 2) / (u / 2)) ** 2 + ((q - (v - 1) / 2) / (v / 2)) ** 2 < 1.0
    if lattice == "hex":
        mask &= (p + q) % 2 == 0
    mask &= rng.random((u, v)) >= drop
    return mask


def _maps_from(fn, mask, lattice, n_genes=1):
    """Sample ``fn(gene, row_phys, col)`` at the measured spots (0 elsewhere)."""
    p, q = np.indices(mask.shape)
    s = _scale(lattice)
    maps = np.stack([np.where(mask, fn(k, p * s, q), 0.0) for k in range(n_genes)])
    return maps.astype(np.float32)


def _spacing(lattice):
    """Distance between neighbouring spots in physical (column) units."""
    return 2.0 if lattice == "hex" else 1.0


def _new_positions(mask, lattice):
    """Doubled-grid pixels of H(M) that are not measured spots."""
    om = enhanced_mask(mask, lattice)
    om[::2, ::2] &= ~mask
    return np.nonzero(om)


def _smooth(k, r, c):
    """A smooth field: a plane wave, two Gaussian bumps and a gentle saddle."""
    wave = np.sin(r / 2.1 + c / 3.3 + k)
    bump = 1.5 * np.exp(-((r - 7.0 - k) ** 2 + (c - 8.0) ** 2) / 10.0)
    dip = np.exp(-((r - 16.0) ** 2 + (c - 4.0 - k) ** 2) / 14.0)
    return wave + bump - dip + 0.2 * np.cos(r * c / 40.0)


# --------------------------------------------------------------------------
# interpolants
# --------------------------------------------------------------------------
@pytest.mark.parametrize("lattice", LATTICES)
@pytest.mark.parametrize("method", ["linear", "cubic", "nedi"])
def test_plane_is_reproduced(lattice, method):
    """Every H(M) position lies on a segment between two spots, so inside the hull."""
    mask = _tissue(lattice)
    plane = lambda k, r, c: 0.7 * r - 1.3 * c + 2.0 + k  # noqa: E731
    maps = _maps_from(plane, mask, lattice, n_genes=3)
    out = upsample(maps, mask, lattice, method)
    P, Q = np.nonzero(enhanced_mask(mask, lattice))
    truth = np.stack([plane(k, P / 2 * _scale(lattice), Q / 2) for k in range(3)])
    np.testing.assert_allclose(out[:, P, Q], truth, atol=1e-4)


@pytest.mark.parametrize("lattice", LATTICES)
def test_nn_copies_a_nearest_spot(lattice):
    mask = _tissue(lattice, drop=0.2, seed=3)
    rng = np.random.default_rng(1)
    maps = (rng.permutation(mask.size).reshape(mask.shape)[None] * mask).astype(np.float32)
    # every lattice position of the doubled grid, far from the tissue too (many ties)
    P, Q = np.indices((2 * mask.shape[0], 2 * mask.shape[1]))
    om = np.ones(P.shape, bool) if lattice == "square" else (P + Q) % 2 == 0
    out = upsample(maps, mask, lattice, "nn", out_mask=om)
    sp, sq = np.nonzero(mask)  # row-major order
    s2 = _scale(lattice) ** 2
    P, Q = np.nonzero(om)
    d2 = s2 * (P[:, None] / 2 - sp[None]) ** 2 + (Q[:, None] / 2 - sq[None]) ** 2
    nearest = np.isclose(d2, d2.min(1, keepdims=True), rtol=0, atol=1e-9)
    vals = maps[0, sp, sq]
    got = out[0, P, Q]
    # the value of one of the nearest spots ...
    assert all(got[i] in vals[nearest[i]] for i in range(P.size))
    # ... and ties go to the first spot in row-major order
    np.testing.assert_array_equal(got, vals[nearest.argmax(1)])
    assert nearest.sum(1).max() > 1  # ties were exercised
    np.testing.assert_array_equal(out, upsample(maps, mask, lattice, "nn", out_mask=om))


@pytest.mark.parametrize("lattice", LATTICES)
@pytest.mark.parametrize("method", EXACT)
def test_measured_spots_are_returned_exactly(lattice, method):
    mask = _tissue(lattice, drop=0.15, seed=2)
    rng = np.random.default_rng(4)
    maps = (rng.gamma(2.0, 2.0, (4,) + mask.shape) * mask).astype(np.float32)
    out = upsample(maps, mask, lattice, method)
    sp, sq = np.nonzero(mask)
    np.testing.assert_array_equal(out[:, 2 * sp, 2 * sq], maps[:, sp, sq])
    assert out.dtype == np.float32 and out.shape == (4, 2 * mask.shape[0], 2 * mask.shape[1])
    assert np.isfinite(out).all()


@pytest.mark.parametrize("lattice", LATTICES)
@pytest.mark.parametrize("method", EXACT)
def test_outputs_only_inside_out_mask_and_values_outside_mask_ignored(lattice, method):
    mask = _tissue(lattice, seed=5)
    rng = np.random.default_rng(6)
    maps = (rng.random((3,) + mask.shape) * mask).astype(np.float32)
    om = enhanced_mask(mask, lattice) & (rng.random((2 * mask.shape[0], 2 * mask.shape[1])) < 0.6)
    out = upsample(maps, mask, lattice, method, out_mask=om)
    assert (out[:, ~om] == 0).all()
    assert (out[:, om] != 0).any()
    # garbage outside the mask changes nothing
    dirty = maps + (~mask) * rng.normal(50, 10, maps.shape).astype(np.float32)
    np.testing.assert_array_equal(upsample(dirty, mask, lattice, method, out_mask=om), out)
    # default out_mask is H(M)
    full = upsample(maps, mask, lattice, method)
    assert (full[:, ~enhanced_mask(mask, lattice)] == 0).all()


@pytest.mark.parametrize("lattice", LATTICES)
def test_nedi_beats_nn_on_a_smooth_field(lattice):
    # the same field in units of the spot spacing on both lattices
    h = _spacing(lattice)
    field = lambda k, r, c: _smooth(k, r / h, c / h)  # noqa: E731
    mask = _tissue(lattice, u=20, v=22 if lattice == "square" else 40, drop=0.0)
    maps = _maps_from(field, mask, lattice, n_genes=3)
    P, Q = _new_positions(mask, lattice)
    truth = np.stack([field(k, P / 2 * _scale(lattice), Q / 2) for k in range(3)])

    def rmse(method):
        return float(np.sqrt(np.mean((upsample(maps, mask, lattice, method)[:, P, Q] - truth) ** 2)))

    e_nn, e_nedi = rmse("nn"), rmse("nedi")
    assert e_nedi < 0.8 * e_nn, (e_nedi, e_nn)


def _naive_nedi(img, valid, corners, neigh, window, ridge, o):
    """Per-pixel NEDI at pixel o, written with loops (reference for the vectorised pass)."""
    H, W = valid.shape
    rows, ys = [], []
    for w in window:
        x = (o[0] + w[0], o[1] + w[1])
        pts = [x] + [(x[0] + d[0], x[1] + d[1]) for d in neigh]
        if all(0 <= a < H and 0 <= b < W and valid[a, b] for a, b in pts):
            ys.append(img[x])
            rows.append([img[a, b] for a, b in pts[1:]])
    corner_vals = [img[o[0] + d[0], o[1] + d[1]] for d in corners]
    if len(ys) < len(window) / 2:  # too few usable training pixels: bilinear
        return np.mean(corner_vals)
    C, y = np.array(rows), np.array(ys)
    R, r = C.T @ C, C.T @ y
    lam = ridge * np.trace(R) / 4
    alpha = np.linalg.solve(R + lam * np.eye(4), r + lam / 4)
    return alpha @ corner_vals


def test_nedi_pass_matches_a_naive_loop():
    rng = np.random.default_rng(7)
    u, v = 12, 13
    img = rng.gamma(2.0, 1.0, (u, v)) + np.add.outer(np.arange(u), np.arange(v) ** 1.3) / 5
    valid = rng.random((u, v)) > 0.05
    square, diamond = nedi_mod._windows(4)
    # the windows: a 4 x 4 box, and the same box turned by 45 degrees
    full = lambda w: sorted((a[0] + b[0], a[1] + b[1]) for a in w[0] for b in w[1])  # noqa: E731
    assert full(square) == sorted((a, b) for a in range(-1, 3) for b in range(-1, 3))
    assert full(diamond) == sorted((a, b) for a in range(-3, 4) for b in range(-3, 4) if abs(a) + abs(b) <= 3 and (a + b) % 2)
    stencils = [(nedi_mod._DIAG, nedi_mod._DIAG_N, nedi_mod._DIAG_PAIRS, square), (nedi_mod._CROSS, nedi_mod._CROSS_N, nedi_mod._CROSS_PAIRS, diamond)]
    for parity, _, corners, neigh, pairs, window in nedi_mod._hex_stencils(4):
        assert len(window[0]) == 18 and all((a + b + parity) % 2 == 0 for a, b in window[0])
        stencils.append((corners, neigh, pairs, window))
    for corners, neigh, pairs, window in stencils:
        got, _ = nedi_mod._nedi_pass(img[None], valid, corners, neigh, pairs, window, 1e-3, 0.0, np.array([img.var()]))
        checked = 0
        for o in np.ndindex(4, 4):
            o = (o[0] + 4, o[1] + 4)
            if all(valid[o[0] + d[0], o[1] + d[1]] for d in corners):
                np.testing.assert_allclose(got[0][o], _naive_nedi(img, valid, corners, neigh, full(window), 1e-3, o), rtol=1e-9)
                checked += 1
        assert checked >= 8


def test_input_errors():
    mask = _tissue("square")
    maps = np.zeros((1,) + mask.shape, np.float32)
    with pytest.raises(InputError, match="method"):
        upsample(maps, mask, "square", "bicubic")
    with pytest.raises(InputError, match="out_mask"):
        upsample(maps, mask, "square", "linear", out_mask=np.ones(mask.shape, bool))
    with pytest.raises(InputError, match="odd"):
        upsample(maps, np.ones_like(mask), "hex", "linear")
    with pytest.raises(InputError, match="lattice"):
        upsample(maps, mask, "triangle", "linear")
    assert METHODS == ("linear", "cubic", "nn", "nedi", "dist")


# --------------------------------------------------------------------------
# DIST
# --------------------------------------------------------------------------
def _toy(lattice, n_genes=32, u=16, v=16, seed=0):
    """Structured toy: smooth sinusoid maps with gene-specific frequencies."""
    rng = np.random.default_rng(seed)
    mask = _tissue(lattice, u, v, drop=0.0)
    fr = rng.uniform(0.2, 0.6, (n_genes, 2))
    ph = rng.uniform(0, 6, (n_genes, 2))
    fn = lambda k, r, c: np.sin(fr[k, 0] * r + ph[k, 0]) + np.cos(fr[k, 1] * c + ph[k, 1]) + 2.0  # noqa: E731
    return _maps_from(fn, mask, lattice, n_genes), mask


DIST_KW = dict(batch_size=8, width=16, device="cpu")


@pytest.fixture
def one_thread(monkeypatch):
    """Tiny convolutions: one torch thread is fastest and immune to a busy machine."""
    monkeypatch.setenv("STENTRANS_THREADS", "1")


def test_dist_architecture_and_block_order():
    torch = pytest.importorskip("torch")
    net = DISTNet()
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 7 and convs[0].in_channels == 1 and convs[-1].out_channels == 4
    assert sum(p.numel() for p in net.parameters()) == 187588
    # reconstruction layer off: the output is the input plus the last layer's biases,
    # merged so that each 2x2 block takes channels 0, 1, 2, 3 as TL, TR, BL, BR
    with torch.no_grad():
        net.last.weight.zero_()
        net.last.bias.copy_(torch.tensor([0.0, 1.0, 2.0, 3.0]))
        x = torch.arange(12.0).reshape(1, 3, 4)
        y = net(x)
    assert y.shape == (1, 6, 8)
    torch.testing.assert_close(y[0, ::2, ::2], x[0])
    torch.testing.assert_close(y[0, ::2, 1::2], x[0] + 1)
    torch.testing.assert_close(y[0, 1::2, ::2], x[0] + 2)
    torch.testing.assert_close(y[0, 1::2, 1::2], x[0] + 3)


def test_dist_loss_falls_and_measured_spots_are_close(one_thread):
    pytest.importorskip("torch")
    maps, mask = _toy("square")
    model = train_dist(maps, mask, "square", epochs=20, seed=0, **DIST_KW)
    h = model.loss_history
    assert len(h) == 20 and h[-1] < 0.7 * h[0], h
    out = upsample(maps, mask, "square", "dist", model=model)
    assert (out[:, ~enhanced_mask(mask, "square")] == 0).all()
    # DIST re-predicts the measured spots: close to the input, not equal
    sp, sq = np.nonzero(mask)
    err = np.abs(out[:, 2 * sp, 2 * sq] - maps[:, sp, sq])
    assert err.mean() < 0.25 * maps[:, sp, sq].std()


def test_dist_same_seed_same_output_and_hex(one_thread):
    pytest.importorskip("torch")
    maps, mask = _toy("hex", n_genes=16, u=12, v=14)
    om = enhanced_mask(mask, "hex")
    a = upsample(maps, mask, "hex", "dist", epochs=2, seed=3, **DIST_KW)
    b = upsample(maps, mask, "hex", "dist", epochs=2, seed=3, **DIST_KW)
    c = upsample(maps, mask, "hex", "dist", epochs=2, seed=4, **DIST_KW)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (16, 24, 28) and a.dtype == np.float32
    assert (a[:, ~om] == 0).all() and (a >= 0).all()  # non-negative data: clipped as DIST does
