"""The one interface of the baselines: :func:`upsample` (every method, same inputs, same positions)."""

from __future__ import annotations

import numpy as np

from ..._errors import InputError
from .dist import _upsample_dist
from .interp import _check, _upsample_scatter
from .nedi import _nedi

__all__ = ["METHODS", "upsample"]

METHODS = ("linear", "cubic", "nn", "nedi", "dist")


def upsample(maps, mask, lattice: str, method: str, out_mask=None, **kw) -> np.ndarray:
    """Predict the doubled grid with a baseline.

    Parameters
    ----------
    maps
        ``(n_genes, u, v)`` gene maps on the measured grid.
    mask
        ``(u, v)`` bool, measured in-tissue spots (values elsewhere ignored).
    lattice
        ``"square"`` or ``"hex"``.
    method
        One of :data:`METHODS`.
    out_mask
        ``(2u, 2v)`` bool, the positions to predict; default H(M)
        (:func:`stentrans.lattice.enhanced_mask`). Other outputs are 0.
    **kw
        ``nedi``: the fields of :class:`~.config.NEDIConfig` (see :func:`~.nedi.nedi`).
        ``dist``: ``model`` (trained :class:`~.dist.DISTNet`; trained here on
        ``(D(maps), maps)`` when None), ``clip_negative`` (default: when the
        data are non-negative), and when training: the arguments of
        :func:`~.dist.train_dist` (``epochs``, ``seed``, ``device``, ``batch_size``,
        ``lr``, ...).

    Returns
    -------
    ``(n_genes, 2u, 2v)`` float32. On hex, pixels with ``P + Q`` odd are not
    lattice points: NEDI leaves them 0 even when ``out_mask`` asks for them.
    """
    if method not in METHODS:
        raise InputError(None, "method", f"must be one of {METHODS}, got {method!r}")
    maps, mask, out_mask = _check(maps, mask, lattice, out_mask)
    if method in ("linear", "cubic", "nn"):
        if kw:
            raise TypeError(f"upsample(method={method!r}) takes no extra arguments, got {sorted(kw)}")
        return _upsample_scatter(maps, mask, lattice, method, out_mask)
    if method == "nedi":
        return _nedi(maps, mask, lattice, out_mask, **kw)
    return _upsample_dist(maps, mask, lattice, out_mask, **kw)
