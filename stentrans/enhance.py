"""Compatibility shim: moved to stentrans.tl (enhance) and stentrans.tl._anndata (the enhanced AnnData); removed at the end of the refactor."""

from .tl._anndata import affine_fit, build_enhanced, write_h5ad
from .tl._enhance import enhance

__all__ = ["enhance", "build_enhanced", "write_h5ad", "affine_fit"]
