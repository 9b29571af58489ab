"""Training pairs of the default method, ``robust``: exact sub-samplings ``(D(T(G)), T(G))`` of the given maps.

``T`` is a lattice symmetry (square: the dihedral group; hex: row and column
flips) followed by a phase offset of the down-sampling ``D``.
"""

from __future__ import annotations

import numpy as np

from ...lattice import downsample

__all__ = ["transforms", "augment_pairs"]


def _parity_fix(a: np.ndarray, mask: np.ndarray, lattice: str):
    """Hex: keep lattice pixels at even p + q (prepend one zero column if needed)."""
    if lattice == "hex":
        p, q = np.nonzero(mask)
        if p.size and (p[0] + q[0]) % 2:
            a = np.pad(a, [(0, 0)] * (a.ndim - 2) + [(0, 0), (1, 0)])
    return a


def _symmetries(lattice: str, flips: bool):
    """Map symmetries as (name, function on arrays with the map in the last two axes)."""
    ident = [("id", lambda a: a)]
    if not flips:
        return ident
    fr = ("flip_rows", lambda a: a[..., ::-1, :])
    fc = ("flip_cols", lambda a: a[..., :, ::-1])
    frc = ("rot180", lambda a: a[..., ::-1, ::-1])
    if lattice == "hex":  # no transpose: it would break the honeycomb
        return ident + [fr, fc, frc]
    tr = ("transpose", lambda a: np.swapaxes(a, -1, -2))
    return ident + [
        fr,
        fc,
        frc,
        tr,
        ("rot90", lambda a: np.swapaxes(a, -1, -2)[..., ::-1, :]),
        ("rot270", lambda a: np.swapaxes(a, -1, -2)[..., :, ::-1]),
        ("antitranspose", lambda a: np.swapaxes(a, -1, -2)[..., ::-1, ::-1]),
    ]


def _phase_offsets(lattice: str, phases: bool):
    if not phases:
        return [(0, 0)]
    return [(0, 0), (0, 1), (1, 0), (1, 1)] if lattice == "square" else [(0, 0), (1, 1), (0, 2), (1, 3)]


def transforms(lattice: str, phases: bool = True, flips: bool = True):
    """All (symmetry, phase offset) combinations used for training pairs."""
    return [(s, o) for s in _symmetries(lattice, flips) for o in _phase_offsets(lattice, phases)]


def augment_pairs(maps: np.ndarray, mask: np.ndarray, lattice: str, phases: bool = True, flips: bool = True, target_genes=None):
    """Training pairs ``(D(T(G)), T(G))`` for every transform ``T`` (numpy).

    ``T`` is a lattice symmetry followed by a crop ``G[a:, b:]`` (phase
    offset); on hex lattices the crop offsets keep ``a + b`` even and a
    symmetry that moves lattice pixels to odd ``p + q`` is followed by a
    one-column shift, so every pair is again a checkerboard. Every array is
    an exact re-arrangement of a subset of the given values.

    Yields dicts with ``name``, ``target`` ``(n, u', v')``, ``target_mask``,
    ``input`` ``(n, u'', v'')``, ``input_mask``, ``ids`` (``(u', v')`` index
    of the original pixel, -1 where none) and ``input_ids``. With
    ``target_genes`` (indices), ``target`` holds only those genes (the
    input still holds all): the same values, without a copy of every gene's
    target.
    """
    maps = np.asarray(maps)
    mask = np.asarray(mask, dtype=bool)
    ids0 = np.arange(mask.size).reshape(mask.shape)
    for (sname, sym), (a, b) in transforms(lattice, phases, flips):
        m = sym(mask)
        g = _parity_fix(sym(maps), m, lattice)
        ids = _parity_fix(sym(ids0) + 1, m, lattice) - 1
        m = _parity_fix(m, m, lattice)
        g, m, ids = g[:, a:, b:], m[a:, b:], ids[a:, b:]
        if target_genes is None:
            g = np.ascontiguousarray(g) * m
            lr, mlr = downsample(g, m, lattice)
        else:  # D keeps in-tissue pixels only, so downsampling the unmasked view gives the same input
            lr, mlr = downsample(g, m, lattice)
            g = g[np.asarray(target_genes)] * m
        ilr = np.where(mlr, ids[::2, ::2], -1)
        yield {"name": f"{sname}+{a}{b}", "target": g, "target_mask": m.copy(), "input": np.ascontiguousarray(lr), "input_mask": mlr, "ids": np.where(m, ids, -1), "input_ids": ilr}
