"""Shared fixtures: paths to ../shared/data (tests that need it skip when it is absent), an isolated cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # Built-in references are cached; one cache per test session keeps tests independent of the user's cache.
    monkeypatch.setenv("SWNN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "swnn-cache"))


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"reference data not found at {SHARED_DATA} (only present beside the development checkout)"
        )
    return SHARED_DATA


@pytest.fixture
def m3_image(shared_data) -> np.ndarray:
    from swnn.io import read_image

    return read_image(shared_data / "swnn-paper" / "M3.bmp")
