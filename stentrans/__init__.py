"""stEnTrans: Transformer-based resolution enhancement of spatial transcriptomics.

API in scanpy's style: :func:`read`, then ``pp`` (QC, lattice mapping), ``tl``
(train, enhance, evaluate, patterns), ``pl`` (figures) and ``datasets``
(simulated sections with a 2x truth, checked downloads). Methods live in
``models`` (one interface, one registry); ``run`` writes whole steps to
files (what the command line, ``cli``, and the workflow's scripts call).
"""

from ._version import __version__
from ._errors import InputError
from .io import read
from . import datasets, pp, tl, pl, run

__all__ = ["__version__", "InputError", "read", "pp", "tl", "pl", "run", "datasets"]
