"""stEnTrans: Transformer-based resolution enhancement of spatial transcriptomics.

API in scanpy's style: :func:`read`, then ``pp`` (QC, lattice mapping), ``tl``
(train, enhance, baselines, evaluate, patterns) and ``pl`` (figures).
"""

from ._version import __version__
from ._errors import InputError
from .io import read
from . import pp, tl, pl

__all__ = ["__version__", "InputError", "read", "pp", "tl", "pl"]
