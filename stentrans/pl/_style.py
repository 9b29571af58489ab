"""Figure style shared by every plot: rc settings, method and protocol look, file output.

Methods take their label, colour, order and dark flag from the method
registry (:mod:`stentrans.models.registry`), protocols their label and order
from the protocol table (:data:`stentrans.tl.SCORES`); nothing here restates
them.
Figures use matplotlib's object API (:class:`matplotlib.figure.Figure`, no
pyplot), so nothing changes the caller's backend and it runs headless.
Files are PNG (300 dpi) and PDF (vector, embedded TrueType fonts), written
atomically.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .._utils import ordered
from ..models import registry

#: matplotlib settings of every figure (small print sizes, embedded fonts)
RC = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "svg.fonttype": "none",
}


def _protocol_labels() -> dict:
    """Panel titles of the evaluation scores, in display order (the protocol table's labels)."""
    from ..tl import SCORES

    return {name: score.label or name for name, score in SCORES.items()}


def method_label(method: str) -> str:
    """The registry's label of ``method`` (the name itself when unregistered)."""
    return registry.label(method)


def method_color(method: str, i: int = 0) -> str:
    """The registry's colour of ``method``; unregistered: a palette colour by position ``i``."""
    return registry.color(method, i)


def is_dark(method: str) -> bool:
    """Whether ``method`` has a dark fill (text on it is drawn white)."""
    m = registry.METHODS.get(method)
    return bool(m and m.dark)


def method_order(values) -> list:
    """Distinct ``values`` in registry order (unregistered ones last, as given)."""
    return registry.order(values)


def protocol_label(protocol: str) -> str:
    """Panel title of a score of the protocol table (the name itself when unknown)."""
    return _protocol_labels().get(protocol, protocol)


def protocol_order(values) -> list:
    """Distinct ``values`` in the protocol table's score order (unknown ones last, as given)."""
    return ordered(values, _protocol_labels())


def save_figure(fig, out_prefix, *, formats=("png", "pdf"), dpi: int = 300, rc: dict | None = None) -> list[Path]:
    """Write ``fig`` as ``out_prefix.png`` and ``.pdf`` (atomic: temp file + rename).

    A ``.png``/``.pdf`` suffix of ``out_prefix`` is dropped. ``rc``:
    matplotlib settings in force while writing (tick labels are made when a
    figure is drawn, PDF fonts chosen when it is written), e.g. :data:`RC`.
    Returns the written paths.
    """
    import contextlib

    import matplotlib as mpl

    from .._utils import atomic_path

    logging.getLogger("fontTools").setLevel(logging.WARNING)  # PDF font subsetting chatter
    prefix = Path(out_prefix)
    if prefix.suffix.lower() in (".png", ".pdf"):
        prefix = prefix.with_suffix("")
    paths = []
    with mpl.rc_context(rc) if rc else contextlib.nullcontext():
        for fmt in formats:
            path = prefix.parent / f"{prefix.name}.{fmt}"
            with atomic_path(path, suffix=f".{fmt}") as tmp:
                fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight", metadata={"Creator": "stentrans"} if fmt in ("png", "pdf") else None)
            paths.append(path)
    return paths


def new_figure(fig, figsize):
    """``fig`` when given, else a new constrained-layout :class:`~matplotlib.figure.Figure`."""
    if fig is not None:
        return fig
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def finish(fig, save, **kwargs):
    """Write ``fig`` (under :data:`RC`) when ``save``, a path prefix, is given; return ``fig``."""
    if save is not None:
        save_figure(fig, save, rc=RC, **kwargs)
    return fig
