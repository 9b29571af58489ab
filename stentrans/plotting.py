"""Compatibility shim: moved to stentrans.pl; removed at the end of the refactor.

``plot_pcc_boxplots`` / ``plot_gene_panels`` keep their old contract (write
``out_prefix.png``/``.pdf``, return the paths); :func:`stentrans.pl.pcc_boxplots`
and :func:`stentrans.pl.gene_panels` return the Figure and write only with
``save=``. Method labels and colours come from the method registry.
"""

from __future__ import annotations

from pathlib import Path

from .models.registry import METHODS, OKABE_ITO
from .pl import PROTOCOL_LABELS, RC, gene_panels, pcc_boxplots, save_figure, spot_tiles

__all__ = ["plot_pcc_boxplots", "plot_gene_panels", "spot_polygons", "save_figure", "METHOD_COLORS", "METHOD_LABELS", "PROTOCOL_LABELS", "OKABE_ITO"]

METHOD_COLORS = {n: m.color for n, m in METHODS.items()}
METHOD_LABELS = {n: m.label for n, m in METHODS.items()}


def plot_pcc_boxplots(per_gene, out_prefix, methods=None, protocols=None, title: str | None = None, annotate: bool = True) -> list[Path]:
    """:func:`stentrans.pl.pcc_boxplots` written to ``out_prefix.png``/``.pdf``; returns the paths."""
    return _written(pcc_boxplots(per_gene, methods=methods, protocols=protocols, title=title, annotate=annotate), out_prefix)


def plot_gene_panels(adata, genes, preds: dict, out_prefix, title: str | None = None, layer: str | None = None, vmax_quantile: float = 0.99, panel_size: float = 1.6) -> list[Path]:
    """:func:`stentrans.pl.gene_panels` written to ``out_prefix.png``/``.pdf``; returns the paths."""
    return _written(gene_panels(adata, genes, preds, title=title, layer=layer, vmax_quantile=vmax_quantile, panel_size=panel_size), out_prefix)


def spot_polygons(rows, cols, lattice: str, step: float = 1.0):
    """Tiles at lattice coordinates: :func:`stentrans.pl.spot_tiles`."""
    return spot_tiles(rows, cols, lattice, step)


def _written(fig, out_prefix) -> list[Path]:
    return save_figure(fig, out_prefix, rc=RC)
