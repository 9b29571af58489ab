"""The ``lost`` evaluation protocol: holes punched in the tissue, predicted back (docs/method.md section 5).

Per seed a random set of interior measured spots is removed (:func:`draw_holes`):
every removed spot has all its lattice neighbours measured, and none of them
removed, so each hole is a single lost spot inside the tissue, the kind
:func:`stentrans.lost.detect` finds (never an edge spot). About
:attr:`LostProtocolConfig.fraction` of the measured spots are removed (fewer
where the tissue has fewer such spots). Every method is fitted on the
remaining spots (the trained ones self-supervised, the baselines on the same
maps) and predicts the removed positions of the doubled grid, exactly as
``enhance(fill_lost=...)`` predicts lost spots; per-gene PCC over the removed
spots against their measured values (``lost``).

On simulated data (``uns["truth"]``) the simulator's own lost spots that
:func:`stentrans.lost.detect` finds in the measured mask (those
``enhance(fill_lost="auto")`` fills) are predicted by the same fits and
scored against the simulator's expected expression (``lost-truth``) and
counts (``lost-truth-counts``). On pseudo-spots of finer data
(``stentrans bin``) the measured values are themselves that truth, so
``lost`` scores against it.

:func:`resolve` builds the protocol's :class:`~._protocols.Spec` for the
evaluation driver (the ``resolver`` of its :class:`~._protocols.Protocol` entry).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from .._errors import InputError
from ..lattice import NEIGHBOUR_OFFSETS

log = logging.getLogger("stentrans.evaluate")


@dataclass
class LostProtocolConfig:
    """Settings of the ``lost`` protocol (their defaults, written once)."""

    fraction: float = field(default=0.075, metadata={"help": "fraction of the measured spots removed as holes per seed (interior spots only)"})


_LP = LostProtocolConfig()


def _neighbours(p: int, q: int, shape, lattice: str):
    for dr, dc in NEIGHBOUR_OFFSETS[lattice]:
        r, c = p + dr, q + dc
        yield r, c, (0 <= r < shape[0] and 0 <= c < shape[1])


def interior(mask: np.ndarray, lattice: str) -> np.ndarray:
    """Measured spots all of whose lattice neighbours are measured (inside the grid)."""
    from ..lost import neighbour_counts

    return np.asarray(mask, dtype=bool) & (neighbour_counts(mask, lattice) == len(NEIGHBOUR_OFFSETS[lattice]))


def draw_holes(mask: np.ndarray, lattice: str, seed: int, fraction: float = _LP.fraction, source=None) -> np.ndarray:
    """``(u, v)`` bool: interior spots removed at ``seed`` (none a neighbour of another).

    Candidates are visited in a random order (``numpy.random.default_rng(seed)``)
    and taken while none of their neighbours is taken, up to
    ``round(fraction * mask.sum())`` holes.
    """
    if not 0.0 < float(fraction) < 1.0:
        raise InputError(source, "fraction", f"{fraction!r}: must be in (0, 1)")
    mask = np.asarray(mask, dtype=bool)
    cand = interior(mask, lattice)
    P, Q = np.nonzero(cand)
    if P.size == 0:
        raise InputError(source, "spots", "no measured spot has all its lattice neighbours measured: no hole can be punched for the lost protocol")
    target = max(1, int(round(float(fraction) * mask.sum())))
    holes = np.zeros(mask.shape, dtype=bool)
    n = 0
    for i in np.random.default_rng(int(seed)).permutation(P.size):
        p, q = int(P[i]), int(Q[i])
        if any(ok and holes[r, c] for r, c, ok in _neighbours(p, q, mask.shape, lattice)):
            continue
        holes[p, q] = True
        n += 1
        if n >= target:
            break
    if n < target:
        log.info("lost: %d holes (of %d wanted): the tissue has no more interior spots apart", n, target)
    return holes


def simulated_lost(data):
    """``(p, q, mean, counts)`` of the simulator's lost spots that :func:`stentrans.lost.detect` finds; None without a truth."""
    from ..lost import detect
    from ._simtruth import truth_columns

    truth = data.adata.uns.get("truth")
    if not isinstance(truth, dict) or "is_lost" not in truth or "mean" not in truth:
        return None
    is_lost = np.asarray(truth["is_lost"], dtype=bool)
    g = data.grid
    r = (np.asarray(truth["array_row"], dtype=float)[is_lost] - g.row0) / g.step
    c = (np.asarray(truth["array_col"], dtype=float)[is_lost] - g.col0) / g.step
    p, q = np.rint(r).astype(np.int64), np.rint(c).astype(np.int64)
    on = (np.abs(r - p) < 1e-6) & (np.abs(c - q) < 1e-6) & (p >= 0) & (q >= 0) & (p < g.shape[0]) & (q < g.shape[1])
    found = detect(data.M, data.lattice)
    on[on] = found[p[on], q[on]]
    rows = np.flatnonzero(is_lost)[on]
    log.info("lost: %d of the simulator's %d lost spots are interior (detected) and scored against its truth", rows.size, int(is_lost.sum()))
    if rows.size == 0:
        return None
    cols = truth_columns(data.adata, truth, data.genes)
    mean = np.asarray(truth["mean"])[rows][:, cols].astype(np.float64)
    counts = np.asarray(truth["counts"])[rows][:, cols].astype(np.float64) if "counts" in truth else None
    return p[on], q[on], mean, counts


def resolve(proto, seed: int, data, heldout_fraction=None, fraction: float = _LP.fraction) -> list:
    """The :class:`~._protocols.Spec` list of protocol ``proto`` at ``seed`` (the ``resolver`` of its entry).

    ``data`` is the :class:`~._protocols.ProtocolData`; ``heldout_fraction`` is unused.
    """
    from ._protocols import ScoreSet, Spec

    src = data.adata.uns.get("stentrans", {}).get("source")
    holes = draw_holes(data.M, data.lattice, seed, fraction, source=src)
    kept = data.M & ~holes
    maps = data.G * kept
    hp, hq = np.nonzero(holes)
    truth_h = np.ascontiguousarray(data.G[:, hp, hq].T, dtype=np.float64)
    P, Q = [2 * hp], [2 * hq]
    sim = simulated_lost(data) if any(s.truth in ("mean", "counts") for s in proto.scores) else None
    if sim is not None:
        P.append(2 * sim[0])
        Q.append(2 * sim[1])
    P, Q = np.concatenate(P), np.concatenate(Q)
    is_hole = np.arange(P.size) < hp.size
    sets = []
    for s in proto.scores:
        if s.truth == "G":
            sets.append(ScoreSet(s.name, is_hole, truth_h))
            continue
        vals = None if sim is None else (sim[2] if s.truth == "mean" else sim[3])
        if vals is None:
            if s.optional:
                continue
            raise InputError(src, 'uns["truth"]', f"score {s.name!r} needs a simulator's lost spots inside the tissue")
        sets.append(ScoreSet(s.name, ~is_hole, vals))
    key = f"{proto.name}-{int(seed)}"
    shape = (2 * data.M.shape[0], 2 * data.M.shape[1])
    log.info("lost seed %d: %d holes of %d spots", seed, hp.size, int(data.M.sum()))
    gene_idx = data.scored(np.arange(len(data.genes)))
    if data.score_idx is not None:  # truths of the scored genes only
        sets = [ScoreSet(x.name, x.sel, x.truth[:, gene_idx], x.transform) for x in sets]
    return [Spec(proto, (key, maps, kept), (key, maps, kept), (key, P, Q, shape), gene_idx, sets)]
