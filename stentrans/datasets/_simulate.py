"""Synthetic spatial transcriptomics with a known truth at twice the resolution.

:func:`simulate` draws a tissue section on a square (ST) or hexagonal (Visium)
spot lattice and simulates expression on the *fine* lattice, the lattice of
half the spacing that stEnTrans predicts (docs/method.md section 2). The measured
spots are exactly the fine positions that lie on the measured lattice; every
other fine position is hidden truth an enhancement method can be scored on.

Geometry
--------
* Lattice coordinates: ``array_row`` ``r`` and ``array_col`` ``c``. Square:
  every integer ``(r, c)``. Hex: integer ``(r, c)`` with ``r + c`` even.
* Physical position (micrometres, = full-resolution pixels at 1 px/um, plus a
  margin): :func:`stentrans.lattice.physical` with the spacing ``a`` of
  :data:`stentrans.lattice.SPACING_UM`, square ``x = c * a``, ``y = r * a``
  (``a = 200``); hex ``x = c * a / 2``, ``y = r * a * sqrt(3) / 2``
  (``a = 100``). The scene itself (:mod:`._scene`) works in units of ``a``.
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

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._errors import InputError
from .._utils import atomic_path
from ..lattice import LATTICES, SPACING_UM, SPOT_DIAMETER_UM, enhanced_mask, fit_grid, physical
from ._scene import _gene_programs, _nb_counts, _render, _Scene

__all__ = ["simulate", "SimConfig", "SIZES", "program_gene_sets", "write_program_gmt"]

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
LIBRARY_ID = "simulated"


@dataclass
class SimConfig:
    """Settings of :func:`simulate` (their defaults, written once here)."""

    lattice: str = field(default="square", metadata={"help": "spot lattice: square (ST) or hex (Visium)", "choices": LATTICES})
    n_genes: int = field(default=200, metadata={"help": "number of genes"})
    seed: int = field(default=0, metadata={"help": "seed of every random draw"})
    size: str = field(default="st", metadata={"help": "array size: st (about 1,150 positions) or visium (about 5,000)", "choices": ("st", "visium")})
    n_domains: int = field(default=4, metadata={"help": "number of spatial domains"})
    lost_fraction: float = field(default=0.03, metadata={"help": "fraction of in-tissue spots lost from the measured data (kept in the truth)"})
    depth: float = field(default=2000.0, metadata={"help": "mean expected total count per spot"})
    dispersion: float = field(default=0.2, metadata={"help": "negative-binomial dispersion"})
    dropout: float = field(default=0.1, metadata={"help": "extra dropout probability"})
    library_sd: float = field(default=0.25, metadata={"help": "standard deviation of the per-spot log library size"})
    noise_fraction: float = field(default=0.25, metadata={"help": "fraction of genes without a spatial pattern"})
    boundary_width: float = field(default=0.6, metadata={"help": "width of the domain boundaries (10 to 90 percent transition), in spot spacings"})
    tissue_fraction: float | None = field(default=None, metadata={"help": "fraction of array positions in tissue (default: drawn per seed)"})
    shape: tuple[int, int] | None = field(default=None, metadata={"help": "explicit (rows, cols) of the array (overrides size)", "cli": False})


_SIM = SimConfig()


def simulate(
    lattice: str = _SIM.lattice,
    n_genes: int = _SIM.n_genes,
    seed: int = _SIM.seed,
    size: str = _SIM.size,
    n_domains: int = _SIM.n_domains,
    lost_fraction: float = _SIM.lost_fraction,
    depth: float = _SIM.depth,
    dispersion: float = _SIM.dispersion,
    dropout: float = _SIM.dropout,
    library_sd: float = _SIM.library_sd,
    noise_fraction: float = _SIM.noise_fraction,
    boundary_width: float = _SIM.boundary_width,
    tissue_fraction: float | None = _SIM.tissue_fraction,
    shape: tuple[int, int] | None = _SIM.shape,
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
    # measured lattice positions of the whole array
    rr, cc = np.mgrid[0:rows, 0:cols]
    on_lat = np.ones((rows, cols), dtype=bool) if lattice == "square" else (rr + cc) % 2 == 0
    lat_r, lat_c = rr[on_lat], cc[on_lat]
    lat_z = np.column_stack(physical(lat_r, lat_c, lattice))  # spot spacings
    extent = np.array(physical(rows - 1, cols - 1, lattice))
    scene = _Scene(rngs, lat_z, extent, tissue_fraction, n_domains, float(boundary_width))

    # in-tissue measured spots (M, lost ones included) and the fine truth H(M)
    tissue = np.zeros((rows, cols), dtype=bool)
    tissue[lat_r, lat_c] = scene.tissue_score(lat_z) <= scene.threshold
    if tissue.sum() < 2:
        raise InputError(src, "tissue_fraction", f"{tissue_fraction!r}: fewer than 2 spots in tissue")
    H = enhanced_mask(tissue, lattice)
    P, Q = np.nonzero(H)  # row-major order
    f_row, f_col = P / 2.0, Q / 2.0
    fz = np.column_stack(physical(f_row, f_col, lattice))
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
    px_x, px_y = physical(f_row, f_col, lattice, spacing=spacing)
    px = np.column_stack([margin + px_x, margin + px_y])
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


def program_gene_sets(adata) -> dict[str, list[str]]:
    """The planted programs as gene sets (``var["program"]``; noise genes left out)."""
    prog = adata.var["program"].astype(str)
    return {p: sorted(prog.index[prog == p]) for p in sorted(prog.unique()) if p != "noise"}


def write_program_gmt(adata, path) -> None:
    """Write :func:`program_gene_sets` as a GMT file (atomically), for offline enrichment demos."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as fh:
            for name, genes in program_gene_sets(adata).items():
                fh.write("\t".join([f"planted {name}", f"SIM:{name}", *genes]) + "\n")
