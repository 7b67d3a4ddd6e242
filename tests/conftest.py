"""Shared pytest fixtures.

Tests that need the real benchmark data in ../shared/data take its path from the environment
variable ``KGT5MM_SHARED_DATA`` (``.ci/run`` sets it) and are skipped with a reason where it
is unset. Everything else runs on the data embedded in the package.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA_ENV = "KGT5MM_SHARED_DATA"


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """Folder holding wn9_img/, mkg_w/ and mkg_y/ (../shared/data); skips when unset."""
    value = os.environ.get(SHARED_DATA_ENV)
    if not value:
        pytest.skip(f"{SHARED_DATA_ENV} is not set: the real benchmark data is not available")
    path = Path(value)
    if not path.is_dir():
        pytest.fail(f"{SHARED_DATA_ENV}={value} is not a directory")
    return path
