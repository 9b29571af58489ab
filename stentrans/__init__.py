"""stEnTrans: Transformer-based resolution enhancement of spatial transcriptomics.

API in scanpy's style: :func:`read`, then ``pp`` (QC, lattice mapping), ``tl``
(train, enhance, baselines, evaluate, patterns) and ``pl`` (figures).
"""

from ._version import __version__
from ._errors import InputError
from . import pp, tl, pl


def read(path, lattice: str = "auto", **kw):
    """Read spatial data (h5ad, Space Ranger outs, ST table, counts + coords CSV).

    See :func:`stentrans.io.read`.
    """
    from .io import read as _read

    return _read(path, lattice=lattice, **kw)

__all__ = ["__version__", "InputError", "read", "pp", "tl", "pl"]
