"""Settings of the spatial-pattern analysis (paper Fig. 4), written once.

:func:`~stentrans.tl.patterns`, :func:`~stentrans.run.patterns_to`,
:func:`~stentrans.tl.pattern_families`, :func:`~stentrans.tl.enrich_families`
and the ``stentrans patterns`` command (whose flags are built from these
fields) all take their defaults from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._diffusion import SepalConfig

__all__ = ["PatternsConfig", "SPECIES"]

#: species whose gene symbols the enrichment can match to a human GMT
SPECIES = ("human", "mouse")
#: baselines Fig. 4's control may enhance the same spots with (``none``: no control)
CONTROLS = ("linear", "cubic", "nn", "none")


@dataclass(frozen=True)
class PatternsConfig:
    """Settings of :func:`~stentrans.run.patterns_to` (one field per keyword)."""

    top: int = field(default=150, metadata={"help": "top-ranked genes grouped into families (150 as the paper and Sepal's melanoma run)"})
    species: str = field(default="human", metadata={"help": "mouse symbols are upper-cased to match a human GMT", "choices": SPECIES})
    seed: int = field(default=0, metadata={"help": "random seed (k-means families only; the default agglomerative clustering is deterministic)"})
    n_families: int | None = field(default=None, metadata={"help": "fixed number of families; None: chosen by the silhouette rule"})
    device: str = field(default=SepalConfig.device, metadata={"help": "Sepal's device: auto | cpu | cuda"})
    cutoff: float = field(default=0.05, metadata={"help": "adjusted p below which a GO term is significant", "cli": False})
    seeds: int = field(default=3, metadata={"help": "Fig. 4's control (with --enhanced and --gmt): new terms after the enhanced file's method fitted again at its seed + 1 .. + SEEDS - 1, with its settings"})
    control: str = field(default="linear", metadata={"help": "Fig. 4's control: new terms after this baseline enhances the same spots (what a denser lattice alone gives); none: left out", "choices": CONTROLS})
