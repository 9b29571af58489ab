"""Reports: result tables (and, given paths, the results page)."""

from .tables import ablation_table, format_pm, summarize, to_markdown, write_results

__all__ = ["summarize", "ablation_table", "to_markdown", "write_results", "format_pm"]
