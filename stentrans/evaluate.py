"""Compatibility shim: moved to stentrans.tl (evaluate, protocols) and stentrans.report (tables); removed at the end of the refactor."""

from .metrics import pcc
from .report.tables import ablation_table, summarize, to_markdown, write_results
from .tl._evaluate import evaluate
from .tl._protocols import ProtocolData

_Data = ProtocolData  # benchmarks/robust_ablation.py

__all__ = ["pcc", "evaluate", "summarize", "ablation_table", "write_results", "to_markdown"]
