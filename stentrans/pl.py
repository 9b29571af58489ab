"""Plotting (matplotlib; colour-blind-safe palettes)."""

from __future__ import annotations

__all__: list[str] = []
