"""Compatibility shim: moved to stentrans.tl._families, stentrans.tl._enrich, stentrans.tl._patterns, stentrans.pl._patterns and stentrans.cli.patterns; removed at the end of the refactor.

The figures are now ``stentrans.pl.ranked_genes``, ``family_summary`` and
``new_terms`` (``save=`` instead of ``path=``).
"""

from .pl._patterns import OKABE_ITO
from .tl._enrich import enrich_families, new_terms, read_gmt
from .tl._families import family_representative, normalized_profiles, pair_families, pattern_families
from .tl._patterns import run_patterns

__all__ = ["normalized_profiles", "pattern_families", "family_representative", "pair_families", "read_gmt", "enrich_families", "new_terms", "run_patterns", "OKABE_ITO"]
