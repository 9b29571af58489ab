"""stEnTrans: Transformer-based resolution enhancement of spatial transcriptomics.

API in scanpy's style: :func:`read`, then ``pp`` (QC, lattice mapping), ``tl``
(train, enhance, evaluate, patterns), ``pl`` (figures) and ``datasets``
(simulated sections with a 2x truth, checked downloads). Methods live in
``models`` (one interface, one registry); the command line in ``cli``.
"""

from ._version import __version__
from ._errors import InputError
from .read import read
from . import datasets, pp, tl, pl

__all__ = ["__version__", "InputError", "read", "pp", "tl", "pl", "datasets"]
