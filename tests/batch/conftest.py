"""Fixtures for the batch runner tests: a folder of notebooks and data, and a data root beside it."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "sales.csv").write_text("region,price\nnorth,10\nsouth,30\n")
    return tmp_path


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    return tmp_path / ".llm_agent"
