"""Shared fixtures: the real data folder beside the repo, temp dirs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("STENTRANS_SHARED", REPO.parent / "shared"))
DATA = SHARED / "data"
GENESETS = SHARED / "genesets"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests using it skip with a reason when it is absent."""
    if not DATA.is_dir():
        pytest.skip(f"real data folder not found: {DATA} (see ../shared/README.md)")
    return DATA


@pytest.fixture(scope="session")
def genesets() -> Path:
    if not GENESETS.is_dir():
        pytest.skip(f"gene set folder not found: {GENESETS}")
    return GENESETS


@pytest.fixture(autouse=True)
def _few_threads(monkeypatch):
    # small test models run fastest on one thread (and pytest may share the cores)
    monkeypatch.setenv("STENTRANS_THREADS", os.environ.get("STENTRANS_THREADS", "1"))
