"""Reports: result tables (and, given paths, the results page)."""

from .tables import ablation_table, format_pm, to_markdown, write_results

__all__ = ["ablation_table", "to_markdown", "write_results", "format_pm"]
