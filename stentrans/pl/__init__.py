"""Plotting (matplotlib; colour-blind-safe palettes). Names load on first use."""

from __future__ import annotations

import importlib

_WHERE = {
    "pcc_boxplots": ("stentrans.plotting", "plot_pcc_boxplots"),
    "gene_panels": ("stentrans.plotting", "plot_gene_panels"),
    "ranked_genes": ("stentrans.patterns", "plot_ranked_genes"),
    "family_summary": ("stentrans.patterns", "plot_family_summary"),
    "new_terms": ("stentrans.patterns", "plot_new_terms"),
}

__all__ = sorted(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        mod, attr = _WHERE[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'stentrans.pl' has no attribute {name!r}")


def __dir__():
    return __all__
