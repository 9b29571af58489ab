"""The method registry: one entry per method, read by everything that names methods.

Evaluation, the figures, the results page, the command line's choices and
the workflow's config schema all take their list of methods, labels and
colours from :data:`METHODS`. Adding a method is one entry here plus its
:class:`~stentrans.models.base.Enhancer`.

Importing this module loads neither PyTorch nor any model code: factories are
``"module:attribute"`` strings resolved by :func:`make`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from .._errors import InputError

#: Okabe & Ito (2008) colour-blind-safe palette
OKABE_ITO = {
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "black": "#000000",
}

#: kinds of method
KINDS = ("network", "robust", "baseline")


@dataclass(frozen=True)
class Method:
    """One registered method.

    Attributes
    ----------
    name
        Registry key (config files, tables, the command line).
    label
        Name in figures and tables.
    color
        Colour in figures.
    kind
        ``"network"`` (the paper's stEnTrans and its ablations), ``"robust"``
        (our default method) or ``"baseline"`` (the paper's comparison methods).
    factory
        ``"module:attribute"`` of the :class:`~stentrans.models.base.Enhancer`
        class, called with ``defaults`` updated by the caller's settings.
    defaults
        Settings that make this entry what it is (e.g. ``use_pos=False``).
    seeded
        Results depend on the seed (repeated over seeds in evaluation).
    ablation
        One of the paper's Table 1 ablations.
    dark
        Dark fill in figures (text on it drawn white).
    """

    name: str
    label: str
    color: str
    kind: str
    factory: str
    defaults: dict = field(default_factory=dict)
    seeded: bool = False
    ablation: bool = False
    dark: bool = False


_PAPER = "stentrans.models.paper.enhancer:PaperEnhancer"
_ROBUST = "stentrans.models.robust.enhancer:RobustEnhancer"
_INTERP = "stentrans.models.baselines.enhancer:InterpolationEnhancer"
_DIST = "stentrans.models.baselines.enhancer:DISTEnhancer"

METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("stentrans", "stEnTrans", OKABE_ITO["vermillion"], "network", _PAPER, {}, seeded=True, ablation=True),
        Method("stentrans-nopos", "w/o Pos", OKABE_ITO["yellow"], "network", _PAPER, {"use_pos": False}, seeded=True, ablation=True),
        Method("stentrans-nores", "w/o Res", "#999999", "network", _PAPER, {"use_res": False}, seeded=True, ablation=True),
        Method("stentrans-noposres", "w/o Pos & Res", OKABE_ITO["black"], "network", _PAPER, {"use_pos": False, "use_res": False}, seeded=True, ablation=True, dark=True),
        Method("robust", "stEnTrans robust", "#6a3d9a", "robust", _ROBUST, {}, seeded=True),
        Method("robust+net", "robust + net", "#cab2d6", "robust", _ROBUST, {"net": True}, seeded=True),
        Method("dist", "DIST", OKABE_ITO["blue"], "baseline", _DIST, {}, seeded=True, dark=True),
        Method("linear", "Linear", OKABE_ITO["bluish_green"], "baseline", _INTERP, {"method": "linear"}),
        Method("cubic", "Cubic", OKABE_ITO["sky_blue"], "baseline", _INTERP, {"method": "cubic"}),
        Method("nn", "NN", OKABE_ITO["orange"], "baseline", _INTERP, {"method": "nn"}),
        Method("nedi", "NEDI", OKABE_ITO["reddish_purple"], "baseline", _INTERP, {"method": "nedi"}),
    )
}

#: the method users get from ``enhance`` (API, command line, workflow)
DEFAULT_METHOD = "robust"
#: the paper's network, unchanged (the faithful reproduction)
PAPER_METHOD = "stentrans"
#: the paper's comparison methods, in its order
BASELINES = tuple(n for n, m in METHODS.items() if m.kind == "baseline")
#: the paper's Table 1: stEnTrans and its ablations
ABLATIONS = tuple(n for n, m in METHODS.items() if m.ablation)
#: what ``evaluate`` runs when no methods are named (the paper's Fig. 3)
DEFAULT_EVAL_METHODS = (PAPER_METHOD,) + BASELINES
#: row order of the result tables: the paper's Fig. 3 methods, its ablations, then the rest as they come
TABLE_ORDER = tuple(dict.fromkeys(DEFAULT_EVAL_METHODS + ABLATIONS))


def names(kind: str | None = None) -> tuple[str, ...]:
    """Registered method names (of one kind), in registry order."""
    return tuple(n for n, m in METHODS.items() if kind is None or m.kind == kind)


def get(name: str) -> Method:
    """The registry entry of ``name``; an unknown name is an :class:`InputError`."""
    try:
        return METHODS[name]
    except KeyError:
        raise InputError(None, "method", f"unknown method {name!r}: choose from {', '.join(METHODS)}") from None


def label(name: str) -> str:
    """Display label (the name itself for anything unregistered)."""
    m = METHODS.get(name)
    return m.label if m else name


def color(name: str, i: int = 0) -> str:
    """Figure colour (a palette colour by position for anything unregistered)."""
    m = METHODS.get(name)
    return m.color if m else list(OKABE_ITO.values())[i % len(OKABE_ITO)]


def order(values) -> list:
    """``values`` sorted in registry order (unregistered names last, as given)."""
    pos = {n: i for i, n in enumerate(METHODS)}
    vals = list(dict.fromkeys(values))
    return sorted(vals, key=lambda v: (pos.get(v, len(pos)), vals.index(v)))


def enhancer_class(name: str):
    """The :class:`~stentrans.models.base.Enhancer` class of ``name`` (imports it)."""
    mod, attr = get(name).factory.split(":")
    return getattr(importlib.import_module(mod), attr)


def make(name: str, **settings):
    """An :class:`~stentrans.models.base.Enhancer` for ``name``.

    ``settings`` update the entry's defaults (e.g. ``epochs=50``); the entry's
    own defaults win where they define the method (an ablation stays one).
    """
    m = get(name)
    return enhancer_class(name)(name=name, **{**settings, **m.defaults})
