"""Compatibility shim: moved to stentrans.tl._sepal (and stentrans.tl._diffusion); removed at the end of the refactor.

``sepal`` here is the old DataFrame-returning function, now
:func:`stentrans.tl.sepal_scores` (``stentrans.tl.sepal`` writes into the
AnnData instead, scanpy style).
"""

from .tl._diffusion import DT, PSEUDOCOUNT, THRESH, diffusion_operator, diffusion_times, normalize_profiles
from .tl._sepal import lattice_coords, sepal_scores, spot_graph

sepal = sepal_scores

__all__ = ["sepal", "spot_graph", "lattice_coords", "normalize_profiles", "diffusion_operator", "diffusion_times", "DT", "THRESH", "PSEUDOCOUNT"]
