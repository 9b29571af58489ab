"""Synthetic spatial transcriptomics with a known truth at twice the resolution.

:func:`simulate` draws a tissue section on a square (ST) or hexagonal (Visium)
spot lattice and simulates expression on the *fine* lattice, the lattice of
half the spacing that stEnTrans predicts (design.md section 2). The measured
spots are exactly the fine positions that lie on the measured lattice; every
other fine position is hidden truth an enhancement method can be scored on.

Geometry
--------
* Lattice coordinates: ``array_row`` ``r`` and ``array_col`` ``c``. Square:
  every integer ``(r, c)``. Hex: integer ``(r, c)`` with ``r + c`` even.
* Physical position (micrometres, = full-resolution pixels at 1 px/um, plus a
  margin): square ``x = c * a``, ``y = r * a`` with spacing ``a = 200``; hex
  ``x = c * a / 2``, ``y = r * a * sqrt(3) / 2`` with ``a = 100``.
* Fine lattice: ``(r, c)`` in steps of 0.5; in doubled coordinates
  ``(P, Q) = (2 r, 2 c)`` all pairs on square, ``P + Q`` even on hex.
* The truth holds the fine positions of ``H(M)`` (:func:`stentrans.lattice.
  enhanced_mask`) for ``M`` = all in-tissue measured spots, lost ones
  included: the measured spots plus every midpoint between two neighbouring
  in-tissue spots (on square also the centres of 2x2 blocks), i.e. exactly
  the positions an enhancement of the complete measurement produces.

Biology (all fields are smooth functions of the position, evaluated on the
fine lattice)
----------------------------------------------------------------------------
* Tissue outline: a perturbed, rotated ellipse with smooth noise, thresholded
  so a chosen fraction of the array is in tissue.
* ``n_domains`` spatial domains: a warped Voronoi partition of the tissue with
  soft boundaries (10-90 % transition over ``boundary_width`` spot spacings).
* Pattern fields in [0, 1]: domain memberships, a linear gradient
  (``gradient_0``) and a smooth hotspot (``gradient_1``), warped stripes
  (``periodic_0``, period 2.5-4.5 spacings) and a warped spot pattern
  (``periodic_1``, period 3-5 spacings).
* Genes: each gene follows one program, ``log mu = log baseline + log L(x) +
  strength * pattern(x) + small gene-specific smooth variation``; about
  ``noise_fraction`` of the genes have no pattern at all (``"noise"``).
  ``L(x)`` is a smooth capture-efficiency field.
* Counts: per-spot library-size jitter (log-normal), negative binomial
  (``var = m + dispersion * m**2``) and extra dropout (entries set to 0 with
  probability ``dropout``).
* ``lost_fraction`` of the in-tissue measured spots are lost: absent from the
  measured AnnData, present in the truth.

The same seed gives identical output; the random streams are split by purpose
(outline, domains, fields, genes, counts, lost spots, image), so e.g. changing
``n_genes`` keeps the tissue and its domains.
"""

from __future__ import annotations

import argparse
import logging
import math

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._errors import InputError
from .lattice import LATTICES, enhanced_mask, fit_grid

__all__ = ["simulate", "lattice_to_um", "SIZES", "register_cli"]

log = logging.getLogger("stentrans")

#: ``(rows, cols)`` of the spot array for ``(size, lattice)``. ``st`` holds
#: about 1,150 lattice positions (the ST 33 x 35 array), ``visium`` about 5,000
#: (the Visium 78 x 128 checkerboard).
SIZES = {
    ("st", "square"): (35, 33),
    ("st", "hex"): (36, 64),
    ("visium", "hex"): (78, 128),
    ("visium", "square"): (70, 72),
}
# range of the in-tissue fraction of the lattice positions, drawn per seed
_TISSUE_FRACTION = {"st": (0.35, 0.48), "visium": (0.5, 0.72), "custom": (0.4, 0.6)}
#: centre-to-centre spacing of neighbouring spots (micrometres)
SPACING_UM = {"square": 200.0, "hex": 100.0}
#: spot diameter (micrometres)
SPOT_DIAMETER_UM = {"square": 100.0, "hex": 55.0}
LIBRARY_ID = "simulated"

_PATTERNS_FIXED = ("gradient_0", "gradient_1", "periodic_0", "periodic_1")
_STRENGTH = {"domain": (0.8, 2.5), "gradient": (1.2, 2.6), "periodic": (1.2, 2.2)}


# ---------------------------------------------------------------------------
# geometry
# ---------------------------------------------------------------------------
def _step_xy(lattice: str) -> tuple[float, float]:
    """Pitch units per lattice unit along (col, row)."""
    return (1.0, 1.0) if lattice == "square" else (0.5, math.sqrt(3.0) / 2.0)


def lattice_to_um(array_row, array_col, lattice: str, spacing: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Physical ``(x, y)`` in micrometres of lattice coordinates (origin at ``(0, 0)``)."""
    a = SPACING_UM[lattice] if spacing is None else float(spacing)
    sx, sy = _step_xy(lattice)
    return np.asarray(array_col, dtype=float) * sx * a, np.asarray(array_row, dtype=float) * sy * a


class _GP:
    """Smooth random field (random Fourier features of a squared-exponential GP).

    Unit variance, correlation length ``length`` (pitch units).
    """

    def __init__(self, rng: np.random.Generator, length: float, n_features: int = 48):
        self.omega = rng.normal(size=(n_features, 2)) / float(length)
        self.phase = rng.uniform(0.0, 2.0 * np.pi, size=n_features)
        self.scale = math.sqrt(2.0 / n_features)

    def __call__(self, z: np.ndarray) -> np.ndarray:
        out = np.empty(len(z))
        for i in range(0, len(z), 1 << 15):
            zz = z[i : i + (1 << 15)]
            out[i : i + len(zz)] = np.cos(zz @ self.omega.T + self.phase).sum(1) * self.scale
        return out


class _Scene:
    """All continuous fields of one simulated section (positions ``z`` in pitch units)."""

    def __init__(self, rngs: dict, lattice_z: np.ndarray, extent: np.ndarray, tissue_fraction: float, n_domains: int, boundary_width: float):
        # -- outline -----------------------------------------------------
        rng = rngs["tissue"]
        L = float(extent.mean()) / 2.0
        self.L = L
        self.center = extent / 2.0 + rng.uniform(-0.05, 0.05, size=2) * extent
        self.angle = rng.uniform(0.0, np.pi)
        self.radii = L * rng.uniform(0.8, 1.15, size=2)
        ks = np.arange(2, 6)
        self.harm_k = ks
        self.harm_a = rng.uniform(0.0, 0.12, size=len(ks)) / np.sqrt(ks - 1.0)
        self.harm_phi = rng.uniform(0.0, 2.0 * np.pi, size=len(ks))
        self.outline_noise = _GP(rng, L / 4.0)
        s = self.tissue_score(lattice_z)
        self.threshold = float(np.quantile(s, tissue_fraction))

        # -- domains: warped, balanced Voronoi with soft boundaries --------
        rng = rngs["domains"]
        self.n_domains = n_domains
        self.warp = (_GP(rng, L / 3.0), _GP(rng, L / 3.0))
        self.warp_amp = 0.25 * L
        self.softness = boundary_width / (2.0 * math.log(9.0))
        zt = self._warped(lattice_z[s <= self.threshold])
        seeds = [zt[rng.integers(len(zt))]]
        for _ in range(1, n_domains):
            d2 = np.min([((zt - q) ** 2).sum(1) for q in seeds], axis=0)
            seeds.append(zt[rng.choice(len(zt), p=d2 / d2.sum())] if d2.sum() > 0 else zt[rng.integers(len(zt))])
        seeds = np.array(seeds, dtype=float)
        for _ in range(4):  # Lloyd steps: domains of comparable size
            lab = np.argmin(((zt[:, None, :] - seeds[None]) ** 2).sum(-1), axis=1)
            for k in range(n_domains):
                if (lab == k).any():
                    seeds[k] = zt[lab == k].mean(0)
        self.seeds = seeds

        # -- gradients, periodic structures, capture efficiency -------------
        rng = rngs["fields"]
        inside = lattice_z[s <= self.threshold]
        a = rng.uniform(0.0, 2.0 * np.pi)
        self.grad_dir = np.array([np.cos(a), np.sin(a)])
        proj = inside @ self.grad_dir
        self.grad_range = (float(proj.min()), float(proj.max()))
        self.grad_gamma = float(rng.uniform(0.6, 1.6))
        self.hot_center = inside[rng.integers(len(inside))]
        self.hot_sigma = float(rng.uniform(0.3, 0.6) * L)
        a = rng.uniform(0.0, np.pi)
        self.stripe_dir = np.array([np.cos(a), np.sin(a)])
        self.stripe_period = float(rng.uniform(2.5, 4.0))
        self.stripe_phase = float(rng.uniform(0.0, 2.0 * np.pi))
        self.stripe_warp = _GP(rng, L / 2.0)
        a = rng.uniform(0.0, np.pi)
        b = a + rng.choice([np.pi / 3.0, np.pi / 2.0])
        self.dot_dirs = np.array([[np.cos(a), np.sin(a)], [np.cos(b), np.sin(b)]])
        self.dot_period = float(rng.uniform(3.0, 4.5))
        self.dot_phase = rng.uniform(0.0, 2.0 * np.pi, size=2)
        self.dot_warp = _GP(rng, L / 2.0)
        self.capture = _GP(rng, L / 3.0)
        self.gene_bank = [_GP(rng, 2.0) for _ in range(6)]

    # -- fields -------------------------------------------------------------
    def tissue_score(self, z: np.ndarray) -> np.ndarray:
        """Low inside the tissue; the outline is ``score <= threshold``."""
        d = z - self.center
        ca, sa = np.cos(self.angle), np.sin(self.angle)
        u = (d[:, 0] * ca + d[:, 1] * sa) / self.radii[0]
        v = (-d[:, 0] * sa + d[:, 1] * ca) / self.radii[1]
        rho = np.hypot(u, v)
        theta = np.arctan2(v, u)
        wobble = 1.0 + (self.harm_a[None] * np.cos(self.harm_k[None] * theta[:, None] + self.harm_phi[None])).sum(1)
        return rho / wobble + 0.08 * self.outline_noise(z)

    def _warped(self, z: np.ndarray) -> np.ndarray:
        return z + self.warp_amp * np.stack([self.warp[0](z), self.warp[1](z)], axis=1)

    def memberships(self, z: np.ndarray) -> np.ndarray:
        """Soft domain memberships ``(n, n_domains)``, rows sum to 1."""
        zw = self._warped(z)
        d = np.sqrt(((zw[:, None, :] - self.seeds[None]) ** 2).sum(-1))
        e = -(d - d.min(1, keepdims=True)) / self.softness
        w = np.exp(e)
        return w / w.sum(1, keepdims=True)

    def patterns(self, z: np.ndarray) -> tuple[list[str], np.ndarray]:
        """All pattern fields in [0, 1]: ``(names, (n, n_patterns))``."""
        m = self.memberships(z)
        lo, hi = self.grad_range
        g0 = np.clip((z @ self.grad_dir - lo) / max(hi - lo, 1e-9), 0.0, 1.0) ** self.grad_gamma
        g1 = np.exp(-((z - self.hot_center) ** 2).sum(1) / (2.0 * self.hot_sigma**2))
        ph = 2.0 * np.pi * (z @ self.stripe_dir) / self.stripe_period + self.stripe_phase + 1.2 * self.stripe_warp(z)
        p0 = 0.5 * (1.0 + np.cos(ph))
        dw = 1.2 * self.dot_warp(z)
        p1 = np.ones(len(z))
        for j in range(2):
            p1 *= 0.5 * (1.0 + np.cos(2.0 * np.pi * (z @ self.dot_dirs[j]) / self.dot_period + self.dot_phase[j] + dw))
        names = [f"domain_{k}" for k in range(self.n_domains)] + list(_PATTERNS_FIXED)
        return names, np.column_stack([m, g0, g1, p0, p1**1.5])

    def log_capture(self, z: np.ndarray) -> np.ndarray:
        return 0.15 * self.capture(z)

    def describe(self) -> dict:
        return {
            "domain_seeds": self.seeds.astype(float),
            "gradient_direction": self.grad_dir.astype(float),
            "gradient_gamma": self.grad_gamma,
            "hotspot_center": np.asarray(self.hot_center, dtype=float),
            "hotspot_sigma": self.hot_sigma,
            "stripe_period": self.stripe_period,
            "stripe_direction": self.stripe_dir.astype(float),
            "dot_period": self.dot_period,
            "units": "spot spacings; x along array_col, y along array_row, origin at array (0, 0)",
        }


# ---------------------------------------------------------------------------
# gene programs and counts
# ---------------------------------------------------------------------------
def _gene_programs(rng, n_genes: int, n_domains: int, noise_fraction: float):
    """Per gene: program, pattern name, strength, log baseline (shuffled order)."""
    n_noise = int(round(noise_fraction * n_genes))
    n_pat = n_genes - n_noise
    n_dom = int(round(0.5 * n_pat)) if n_domains >= 2 else 0
    n_grad = int(round(0.5 * (n_pat - n_dom)))
    n_per = n_pat - n_dom - n_grad
    program, pattern = [], []
    for i in range(n_dom):
        program.append(f"domain_{i % n_domains}")
        pattern.append(f"domain_{i % n_domains}")
    for i in range(n_grad):
        program.append("gradient")
        pattern.append(f"gradient_{i % 2}")
    for i in range(n_per):
        program.append("periodic")
        pattern.append(f"periodic_{i % 2}")
    program += ["noise"] * n_noise
    pattern += ["none"] * n_noise
    order = rng.permutation(n_genes)
    program = np.array(program, dtype=object)[order]
    pattern = np.array(pattern, dtype=object)[order]
    strength = np.zeros(n_genes)
    for i, p in enumerate(program):
        key = "domain" if p.startswith("domain") else p
        if key in _STRENGTH:
            strength[i] = rng.uniform(*_STRENGTH[key])
    log_base = rng.normal(0.0, 1.0, size=n_genes)
    gene_mix = rng.normal(size=(6, n_genes)) / math.sqrt(6.0)
    return program, pattern, strength, log_base, gene_mix


def _nb_counts(rng, mean: np.ndarray, dispersion: float) -> np.ndarray:
    """Negative binomial with ``var = m + dispersion * m**2`` (gamma-Poisson)."""
    if dispersion > 0:
        shape = 1.0 / dispersion
        lam = mean * rng.gamma(shape, 1.0 / shape, size=mean.shape)
    else:
        lam = mean
    return rng.poisson(lam).astype(np.float32)


# ---------------------------------------------------------------------------
# image
# ---------------------------------------------------------------------------
_BACKGROUND = np.array([0.95, 0.94, 0.96])
_DOMAIN_TINTS = np.array(
    [
        [0.86, 0.55, 0.72],
        [0.72, 0.50, 0.78],
        [0.93, 0.68, 0.74],
        [0.78, 0.42, 0.62],
        [0.88, 0.74, 0.82],
        [0.66, 0.44, 0.70],
    ]
)


def _render(scene: _Scene, rng, shape: tuple[int, int], scale: float, margin_um: float, spacing: float) -> np.ndarray:
    """H&E-like RGB float32 image of the section at ``scale`` image px per full-res px.

    The fields are evaluated on a grid of a quarter spot spacing and
    interpolated bilinearly to the image pixels.
    """
    from scipy.ndimage import map_coordinates

    h, w = shape
    step = max(1.0, 0.25 * spacing * scale)  # image px between evaluations
    gh, gw = int(math.ceil((h - 1) / step)) + 2, int(math.ceil((w - 1) / step)) + 2
    gy, gx = np.mgrid[0:gh, 0:gw] * step
    z = np.column_stack([(gx.ravel() + 0.5) / scale - margin_um, (gy.ravel() + 0.5) / scale - margin_um]) / spacing
    inside = (scene.tissue_score(z) <= scene.threshold).reshape(gh, gw).astype(float)
    tint = scene.memberships(z) @ _DOMAIN_TINTS[np.arange(scene.n_domains) % len(_DOMAIN_TINTS)]
    grid_img = inside[..., None] * tint.reshape(gh, gw, 3) + (1.0 - inside[..., None]) * _BACKGROUND
    yy, xx = np.mgrid[0:h, 0:w] / step
    img = np.stack([map_coordinates(grid_img[..., j], [yy, xx], order=1, mode="nearest") for j in range(3)], axis=-1)
    fill = map_coordinates(inside, [yy, xx], order=1, mode="nearest")
    img += rng.normal(0.0, 0.025, size=img.shape) * (0.3 + 0.7 * fill)[..., None]
    return np.clip(img, 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------
def simulate(
    lattice: str = "square",
    n_genes: int = 200,
    seed: int = 0,
    size: str = "st",
    n_domains: int = 4,
    lost_fraction: float = 0.03,
    depth: float = 2000.0,
    dispersion: float = 0.2,
    dropout: float = 0.1,
    library_sd: float = 0.25,
    noise_fraction: float = 0.25,
    boundary_width: float = 0.6,
    tissue_fraction: float | None = None,
    shape: tuple[int, int] | None = None,
):
    """Simulate a spatial transcriptomics section with a 2x-resolution truth.

    Parameters
    ----------
    lattice
        ``"square"`` (ST, 200 um spacing, 100 um spots) or ``"hex"`` (Visium,
        100 um spacing, 55 um spots).
    n_genes
        Number of genes.
    seed
        Seed of every random draw (:class:`numpy.random.Generator` streams).
    size
        ``"st"`` (about 1,150 array positions, 300-600 spots in tissue) or
        ``"visium"`` (about 5,000 positions, 2,000-4,000 in tissue); see
        :data:`SIZES`. Ignored when ``shape`` is given.
    n_domains
        Number of spatial domains (>= 1).
    lost_fraction
        Fraction of in-tissue measured spots removed from the measured data
        (their truth is kept).
    depth
        Mean total of ``truth["mean"]`` per fine position (expected counts
        per spot before dropout) over the simulated genes.
    dispersion
        Negative-binomial dispersion ``phi`` (``var = m + phi m^2``; 0 is Poisson).
    dropout
        Probability that a count is additionally set to 0.
    library_sd
        Standard deviation of the per-spot log library-size factor.
    noise_fraction
        Fraction of genes without any spatial pattern.
    boundary_width
        Width (10-90 %) of domain boundaries in spot spacings.
    tissue_fraction
        Fraction of array positions in tissue (default: drawn per seed from a
        range that depends on ``size``).
    shape
        Explicit ``(rows, cols)`` of the array.

    Returns
    -------
    AnnData of the measured in-tissue spots (lost spots left out):

    * ``X``: counts, float32 CSR; ``obs_names`` ``"r{row}_c{col}"``;
    * ``obs``: ``array_row``, ``array_col`` (int), ``in_tissue`` (1),
      ``domain`` (categorical, dominant domain);
    * ``obsm["spatial"]``: full-resolution pixel ``(x, y)`` at 1 px/um;
    * ``var``: ``program`` (``"domain_k"``, ``"gradient"``, ``"periodic"``,
      ``"noise"``), ``pattern`` (the exact field, e.g. ``"gradient_1"``;
      ``"none"`` for noise genes), ``strength`` (log fold change over the
      pattern's range), ``baseline`` (mean expected count per spot);
    * ``uns["spatial"]["simulated"]``: ``images`` (``hires``, ``lowres``),
      ``scalefactors``, ``metadata``, laid out as by ``scanpy.read_visium``;
    * ``uns["stentrans"]``: ``lattice``, ``source``, ``format``, ``grid``,
      ``simulation`` (all parameters, resolved values and scene geometry);
    * ``uns["truth"]``: the fine lattice, arrays in the same row order:
      ``array_row``, ``array_col`` (float, half steps), ``spatial``
      ``(n_fine, 2)`` pixels, ``counts`` and ``mean`` float32 ``(n_fine,
      n_genes)``, ``is_measured`` (in ``X``), ``is_lost``, ``domain`` (int).
      ``counts`` at measured positions equal ``X`` exactly. ``mean`` is the
      noise-free expression (smooth capture field included; per-spot library
      jitter, sampling noise and dropout not), so ``E[counts] = (1 -
      dropout) * mean``.
    """
    import anndata as ad

    src = "simulate"
    if lattice not in LATTICES:
        raise InputError(src, "lattice", f"{lattice!r}: must be one of {', '.join(LATTICES)}")
    if int(n_genes) < 1:
        raise InputError(src, "n_genes", f"{n_genes!r}: must be >= 1")
    if int(n_domains) < 1:
        raise InputError(src, "n_domains", f"{n_domains!r}: must be >= 1")
    for name, val in (("lost_fraction", lost_fraction), ("dropout", dropout), ("noise_fraction", noise_fraction)):
        if not 0.0 <= float(val) < 1.0:
            raise InputError(src, name, f"{val!r}: must be in [0, 1)")
    for name, val in (("depth", depth), ("boundary_width", boundary_width)):
        if not float(val) > 0:
            raise InputError(src, name, f"{val!r}: must be > 0")
    for name, val in (("dispersion", dispersion), ("library_sd", library_sd)):
        if not float(val) >= 0:
            raise InputError(src, name, f"{val!r}: must be >= 0")
    if shape is None:
        if (size, lattice) not in SIZES:
            raise InputError(src, "size", f"{size!r}: must be one of st, visium (or give shape)")
        rows, cols = SIZES[(size, lattice)]
        frac_key = size
    else:
        rows, cols = (int(x) for x in shape)
        if rows < 4 or cols < 4:
            raise InputError(src, "shape", f"{tuple(shape)!r}: need at least 4 x 4 array positions")
        size, frac_key = "custom", "custom"
    n_genes, n_domains, seed = int(n_genes), int(n_domains), int(seed)

    streams = ("tissue", "domains", "fields", "genes", "counts", "lost", "image", "fraction")
    rngs = {k: np.random.default_rng(s) for k, s in zip(streams, np.random.SeedSequence(seed).spawn(len(streams)))}
    if tissue_fraction is None:
        tissue_fraction = float(rngs["fraction"].uniform(*_TISSUE_FRACTION[frac_key]))
    elif not 0.0 < float(tissue_fraction) <= 1.0:
        raise InputError(src, "tissue_fraction", f"{tissue_fraction!r}: must be in (0, 1]")
    tissue_fraction = float(tissue_fraction)

    spacing = SPACING_UM[lattice]
    sx, sy = _step_xy(lattice)
    # measured lattice positions of the whole array
    rr, cc = np.mgrid[0:rows, 0:cols]
    on_lat = np.ones((rows, cols), dtype=bool) if lattice == "square" else (rr + cc) % 2 == 0
    lat_r, lat_c = rr[on_lat], cc[on_lat]
    lat_z = np.column_stack([lat_c * sx, lat_r * sy]).astype(float)
    extent = np.array([(cols - 1) * sx, (rows - 1) * sy])
    scene = _Scene(rngs, lat_z, extent, tissue_fraction, n_domains, float(boundary_width))

    # in-tissue measured spots (M, lost ones included) and the fine truth H(M)
    tissue = np.zeros((rows, cols), dtype=bool)
    tissue[lat_r, lat_c] = scene.tissue_score(lat_z) <= scene.threshold
    if tissue.sum() < 2:
        raise InputError(src, "tissue_fraction", f"{tissue_fraction!r}: fewer than 2 spots in tissue")
    H = enhanced_mask(tissue, lattice)
    P, Q = np.nonzero(H)  # row-major order
    f_row, f_col = P / 2.0, Q / 2.0
    fz = np.column_stack([f_col * sx, f_row * sy])
    is_meas_pos = (P % 2 == 0) & (Q % 2 == 0)
    is_meas_pos &= tissue[P // 2, Q // 2]

    # expected expression
    names, pat = scene.patterns(fz)
    program, pattern, strength, log_base, gene_mix = _gene_programs(rngs["genes"], n_genes, n_domains, float(noise_fraction))
    col = {n: i for i, n in enumerate(names)}
    is_pat = pattern != "none"
    logit = np.zeros((len(fz), n_genes))
    idx = np.array([col[p] for p in pattern[is_pat]], dtype=int)
    logit[:, is_pat] = pat[:, idx] * strength[is_pat]
    bank = np.column_stack([g(fz) for g in scene.gene_bank])
    logit[:, is_pat] += 0.15 * (bank @ gene_mix[:, is_pat])
    logit += log_base[None] + scene.log_capture(fz)[:, None]
    mean = np.exp(logit)
    mean *= float(depth) / mean.sum(1).mean()

    # counts at every fine position
    rng = rngs["counts"]
    lib = np.exp(rng.normal(-0.5 * library_sd**2, library_sd, size=len(fz))) if library_sd > 0 else np.ones(len(fz))
    counts = _nb_counts(rng, mean * lib[:, None], float(dispersion))
    if dropout > 0:
        counts[rng.random(counts.shape) < dropout] = 0.0
    mean = mean.astype(np.float32)

    # lost spots
    meas_idx = np.flatnonzero(is_meas_pos)
    n_lost = int(round(float(lost_fraction) * len(meas_idx)))
    n_lost = min(n_lost, len(meas_idx) - 1)
    lost_idx = np.sort(rngs["lost"].choice(meas_idx, size=n_lost, replace=False)) if n_lost > 0 else np.zeros(0, dtype=int)
    is_lost = np.zeros(len(fz), dtype=bool)
    is_lost[lost_idx] = True
    is_measured = is_meas_pos & ~is_lost
    keep = np.flatnonzero(is_measured)

    # pixel coordinates and images
    margin = 2.0 * spacing
    px = np.column_stack([margin + f_col * sx * spacing, margin + f_row * sy * spacing])
    full_w = 2.0 * margin + extent[0] * spacing
    full_h = 2.0 * margin + extent[1] * spacing
    hires_scale = min(0.1, 800.0 / max(full_w, full_h))
    lowres_scale = hires_scale / 4.0
    images = {}
    for key, s in (("hires", hires_scale), ("lowres", lowres_scale)):
        shp = (int(math.ceil(full_h * s)), int(math.ceil(full_w * s)))
        images[key] = _render(scene, rngs["image"], shp, s, margin, spacing)
    spot_d = SPOT_DIAMETER_UM[lattice]

    # the AnnData of the measured spots
    m_row = np.rint(f_row[keep]).astype(np.int64)
    m_col = np.rint(f_col[keep]).astype(np.int64)
    domain = np.argmax(pat[:, :n_domains], axis=1)
    dom_names = [f"domain_{k}" for k in range(n_domains)]
    obs = pd.DataFrame(
        {
            "array_row": m_row,
            "array_col": m_col,
            "in_tissue": np.ones(len(keep), dtype=np.int64),
            "domain": pd.Categorical([dom_names[d] for d in domain[keep]], categories=dom_names),
        },
        index=pd.Index([f"r{r}_c{c}" for r, c in zip(m_row, m_col)]),
    )
    var = pd.DataFrame(
        {
            "program": pd.Categorical(program.astype(str)),
            "pattern": pd.Categorical(pattern.astype(str)),
            "strength": strength.astype(float),
            "baseline": mean.mean(0).astype(float),
        },
        index=pd.Index([f"gene_{i:04d}" for i in range(n_genes)]),
    )
    params = {
        "lattice": lattice,
        "n_genes": n_genes,
        "seed": seed,
        "size": size,
        "n_domains": n_domains,
        "lost_fraction": float(lost_fraction),
        "depth": float(depth),
        "dispersion": float(dispersion),
        "dropout": float(dropout),
        "library_sd": float(library_sd),
        "noise_fraction": float(noise_fraction),
        "boundary_width": float(boundary_width),
        "tissue_fraction": tissue_fraction,
        "shape": np.array([rows, cols], dtype=np.int64),
    }
    source = "simulate(" + ", ".join(f"{k}={v!r}" if k != "shape" else f"shape=({rows}, {cols})" for k, v in params.items()) + ")"
    simulation = dict(params)
    simulation.update(
        {
            "spacing_um": spacing,
            "spot_diameter_um": spot_d,
            "n_in_tissue": int(tissue.sum()),
            "n_measured": int(len(keep)),
            "n_lost": int(n_lost),
            "n_fine": int(len(fz)),
            "scene": scene.describe(),
        }
    )
    adata = ad.AnnData(X=sp.csr_matrix(counts[keep]), obs=obs, var=var)
    adata.obsm["spatial"] = px[keep]
    adata.uns["spatial"] = {
        LIBRARY_ID: {
            "images": images,
            "scalefactors": {
                "spot_diameter_fullres": spot_d,
                "fiducial_diameter_fullres": round(spot_d * 1.615, 3),
                "tissue_hires_scalef": hires_scale,
                "tissue_lowres_scalef": lowres_scale,
            },
            "metadata": {"source": "stentrans.simulate", "pixels_per_um": 1.0},
        }
    }
    adata.uns["stentrans"] = {
        "lattice": lattice,
        "source": source,
        "format": "simulated",
        "grid": _h5_safe(fit_grid(m_row, m_col, lattice, source=source).to_dict()),
        "simulation": simulation,
    }
    adata.uns["truth"] = {
        "array_row": f_row.astype(float),
        "array_col": f_col.astype(float),
        "spatial": px,
        "counts": counts,
        "mean": mean,
        "is_measured": is_measured,
        "is_lost": is_lost,
        "domain": domain.astype(np.int64),
    }
    log.info("simulated %s %s: %d measured spots (%d lost), %d fine positions, %d genes", lattice, size, len(keep), n_lost, len(fz), n_genes)
    return adata


def _h5_safe(d: dict) -> dict:
    return {k: (np.asarray(v) if isinstance(v, (list, tuple)) else v) for k, v in d.items()}


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------
def _run_cli(args) -> int:
    from ._utils import atomic_path

    adata = simulate(
        lattice=args.lattice,
        n_genes=args.n_genes,
        seed=args.seed,
        size=args.size,
        n_domains=args.n_domains,
        lost_fraction=args.lost_fraction,
        depth=args.depth,
        dispersion=args.dispersion,
        dropout=args.dropout,
        shape=tuple(args.shape) if args.shape else None,
    )
    with atomic_path(args.output) as tmp:
        adata.write_h5ad(tmp)
    log.info("wrote %s (%d spots x %d genes)", args.output, adata.n_obs, adata.n_vars)
    if args.gmt:
        write_program_gmt(adata, args.gmt)
        log.info("wrote the planted programs as gene sets: %s", args.gmt)
    return 0


def program_gene_sets(adata) -> dict[str, list[str]]:
    """The planted programs as gene sets (``var["program"]``; noise genes left out)."""
    prog = adata.var["program"].astype(str)
    return {p: sorted(prog.index[prog == p]) for p in sorted(prog.unique()) if p != "noise"}


def write_program_gmt(adata, path) -> None:
    """Write :func:`program_gene_sets` as a GMT file (atomically), for offline enrichment demos."""
    from ._utils import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "w") as fh:
            for name, genes in program_gene_sets(adata).items():
                fh.write("\t".join([f"planted {name}", f"SIM:{name}", *genes]) + "\n")


def register_cli(subparsers) -> None:
    """Add ``stentrans simulate``."""
    p = subparsers.add_parser(
        "simulate",
        help="write simulated spatial transcriptomics with a 2x-resolution truth",
        description="Simulate a tissue section on an ST (square) or Visium (hex) lattice; the truth at twice the resolution is stored in uns['truth'].",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--lattice", choices=LATTICES, default="square")
    p.add_argument("--n-genes", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", choices=("st", "visium"), default="st")
    p.add_argument("--shape", type=int, nargs=2, metavar=("ROWS", "COLS"), help="explicit array shape (overrides --size)")
    p.add_argument("--n-domains", type=int, default=4)
    p.add_argument("--lost-fraction", type=float, default=0.03)
    p.add_argument("--depth", type=float, default=2000.0, help="mean expected total count per spot")
    p.add_argument("--dispersion", type=float, default=0.2, help="negative-binomial dispersion")
    p.add_argument("--dropout", type=float, default=0.1, help="extra dropout probability")
    p.add_argument("-o", "--output", required=True, help="output .h5ad")
    p.add_argument("--gmt", help="also write the planted programs as a GMT gene-set file")
    p.set_defaults(func=_run_cli)
