"""Compatibility shim: moved to stentrans.report.page; removed at the end of the refactor.

:func:`stentrans.report.page.collect` and :func:`~stentrans.report.page.render`
now take the run's files as ``{sample: {kind: path}}`` instead of guessing
a results folder; labels are the method registry's.
"""

from __future__ import annotations

from .report.page import (
    PROTOCOL_TEXT,
    SAMPLE_FILES,
    best_baseline,
    claims,
    collect,
    format_p,
    mean_of,
    method_table,
    paired_test,
    render,
    shrink_png,
    write,
)

__all__ = ["PROTOCOL_TEXT", "SAMPLE_FILES", "best_baseline", "claims", "collect", "format_p", "mean_of", "method_table", "paired_test", "render", "shrink_png", "write"]

_claims = claims
_p = format_p
