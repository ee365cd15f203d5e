"""The model `make test` trained (KEFU_TEST_MODEL), for tests that promote a real archive."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def model() -> Path:
    path = os.environ.get("KEFU_TEST_MODEL")
    if not path:
        pytest.skip("needs a trained model: run `make test` (sets KEFU_TEST_MODEL)")
    return Path(path)
