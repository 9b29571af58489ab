"""The continuous scene of a simulated section: smooth random fields, tissue, domains, patterns, counts, image.

Everything here works in spot-spacing units (positions ``z`` with ``x`` along
``array_col`` and ``y`` along ``array_row``, from
:func:`stentrans.lattice.physical` with ``spacing=1``);
:func:`~stentrans.datasets.simulate` places it on a lattice and assembles
the AnnData.
"""

from __future__ import annotations

import math

import numpy as np

_PATTERNS_FIXED = ("gradient_0", "gradient_1", "periodic_0", "periodic_1")
_STRENGTH = {"domain": (0.8, 2.5), "gradient": (1.2, 2.6), "periodic": (1.2, 2.2)}


# ---------------------------------------------------------------------------
# fields
# ---------------------------------------------------------------------------
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
