"""The one enhancer interface every method implements.

An :class:`Enhancer` holds a method's settings. ``fit`` learns from the maps it
is given (self-supervised: a method never sees more than the maps passed here)
and returns a :class:`Fitted` model, whose ``predict`` maps gene maps on a
lattice to maps on the doubled grid, and whose ``provenance`` says what was
fitted (it goes to ``uns["stentrans"]`` of an enhanced AnnData).

Conventions: ``maps`` is ``(n_genes, u, v)`` float32, 0 off the lattice;
``mask`` is ``(u, v)`` bool, the measured spots; predictions are
``(n_genes, 2u, 2v)`` float32; ``out_mask`` (``(2u, 2v)`` bool, optional) are
the positions that will be read, a method may leave the others 0.
"""

from __future__ import annotations

import abc

import numpy as np


class Fitted(abc.ABC):
    """A fitted model: ``predict`` and ``provenance``."""

    #: registry name of the method
    method: str = ""
    #: lattice it was fitted on
    lattice: str = ""
    #: seconds ``fit`` took
    seconds: float = 0.0

    @abc.abstractmethod
    def predict(self, maps: np.ndarray, mask: np.ndarray, out_mask: np.ndarray | None = None, *, genes=None, chunk: int = 512, progress: bool = False) -> np.ndarray:
        """``(len(genes), 2u, 2v)`` predictions for genes ``genes`` (default: all) of ``maps``.

        Whatever the method derives from all genes together (library sizes,
        shared factors) comes from all of ``maps``; only the rows ``genes``
        are predicted, ``chunk`` genes at a time.
        """

    def estimate(self, maps: np.ndarray, mask: np.ndarray, out_mask: np.ndarray | None = None, *, genes=None, chunk: int = 512, progress: bool = False) -> np.ndarray:
        """As :meth:`predict`, but at the measured spots the method's own estimate rather than their counts.

        What ``stentrans.tl.enhance`` writes by default (one footing at every
        position, docs/method.md section 3). Methods that reproduce their
        inputs (the interpolators, DIST, the paper network's residual copy)
        have no other estimate there: the default is :meth:`predict`.
        """
        return self.predict(maps, mask, out_mask, genes=genes, chunk=chunk, progress=progress)

    def predict_held_out(self, maps: np.ndarray, mask: np.ndarray, *, genes=None, chunk: int = 512) -> np.ndarray:
        """``(len(genes), n_spots)``: every measured spot predicted without its own counts (spots in ``np.nonzero(mask)`` order).

        The residuals against the counts calibrate predictive intervals
        (:mod:`stentrans.tl._intervals`). Default: the four cosets of the
        down-sampling ``D`` (:func:`stentrans.lattice.coset_labels`) take
        turns, each predicted from the other three; a spot's lattice
        neighbours all lie in other cosets, so it is predicted from them, as
        a new position is from the spots around it.
        """
        from ..lattice import coset_labels

        mask = np.asarray(mask, dtype=bool)
        gi = genes_of(maps, genes)
        p, q = np.nonzero(mask)
        lab = coset_labels(mask.shape, self.lattice)[p, q]
        out = np.zeros((len(gi), len(p)), dtype=np.float32)
        u, v = mask.shape
        for c in range(4):
            held = lab == c
            if not held.any():
                continue
            keep = mask.copy()
            keep[p[held], q[held]] = False
            if not keep.any():
                continue
            om = np.zeros((2 * u, 2 * v), dtype=bool)
            om[2 * p[held], 2 * q[held]] = True
            pred = self.predict(maps * keep, keep, om, genes=gi, chunk=chunk)
            out[:, held] = pred[:, 2 * p[held], 2 * q[held]]
        return out

    def provenance(self) -> dict:
        """JSON-able description of the fitted model (method, settings, fit)."""
        return {"method": self.method, "lattice": self.lattice, "fit_seconds": round(float(self.seconds), 3)}

    @property
    def final_loss(self) -> float:
        return float("nan")

    @property
    def epochs_run(self) -> int:
        return 0


class Enhancer(abc.ABC):
    """A method with its settings; :meth:`fit` returns a :class:`Fitted`."""

    #: registry name
    name: str = ""

    @abc.abstractmethod
    def fit(self, maps: np.ndarray, mask: np.ndarray, lattice: str, *, seed: int = 0, device="auto", progress: bool = False) -> Fitted:
        """Fit on ``maps`` (what the method may learn from) and return the model."""


def genes_of(maps: np.ndarray, genes) -> np.ndarray:
    """Row indices ``genes`` of ``maps`` (all rows when None)."""
    return np.arange(maps.shape[0]) if genes is None else np.asarray(genes, dtype=np.int64)
