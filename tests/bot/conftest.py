"""`kefu run` on the test model, shared by the socket.io channel tests and the widget's browser tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.kefu_server import KefuRun


@pytest.fixture(scope="session")
def kefu_server(tmp_path_factory):
    model = os.environ.get("KEFU_TEST_MODEL")
    if not model:
        pytest.skip("needs a trained model: run `make test` (sets KEFU_TEST_MODEL)")
    server = KefuRun(Path(model), tmp_path_factory.mktemp("kefu-run")).start()
    yield server
    server.stop()
