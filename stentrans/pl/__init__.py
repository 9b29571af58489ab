"""Plotting (matplotlib; colour-blind-safe palettes). Names load on first use."""

from __future__ import annotations

import importlib

_WHERE = {
    "pcc_boxplots": ("stentrans.pl._boxplots", "pcc_boxplots"),
    "median_pcc_bars": ("stentrans.pl._boxplots", "median_pcc_bars"),
    "gene_panels": ("stentrans.pl._panels", "gene_panels"),
    "enhanced_genes": ("stentrans.pl._panels", "enhanced_genes"),
    "spot_tiles": ("stentrans.pl._panels", "spot_tiles"),
    "top_variance_genes": ("stentrans.pl._panels", "top_variance_genes"),
    "lattice_mapping": ("stentrans.pl._grid", "lattice_mapping"),
    "lost_slide": ("stentrans.pl._lost", "lost_slide"),
    "lost_genes": ("stentrans.pl._lost", "lost_genes"),
    "save_figure": ("stentrans.pl._style", "save_figure"),
    "RC": ("stentrans.pl._style", "RC"),
    "ranked_genes": ("stentrans.pl._patterns", "ranked_genes"),
    "family_summary": ("stentrans.pl._patterns", "family_summary"),
    "new_terms": ("stentrans.pl._patterns", "new_terms"),
}

__all__ = sorted(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        mod, attr = _WHERE[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'stentrans.pl' has no attribute {name!r}")


def __dir__():
    return __all__
