"""Tools: training, enhancement, baselines, evaluation, spatial patterns."""

from __future__ import annotations

__all__: list[str] = []
