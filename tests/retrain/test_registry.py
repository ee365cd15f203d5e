"""The model registry: atomic champion file, keep N, rollback, telling a server (a fake Rasa `PUT /model`)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from retrain.config import RetrainConfig, RetrainError
from retrain.registry import Registry


@pytest.fixture
def fake_rasa():
    calls = []

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self):
            calls.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", calls
    server.shutdown()


def test_promote_keep_and_rollback(tmp_path, fake_rasa, monkeypatch):
    url, calls = fake_rasa
    monkeypatch.setenv("KEFU_API_TOKEN", "s3cret")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "20250101-trained.tar.gz").write_bytes(b"model 0")
    registry = Registry(RetrainConfig.from_dict({"project": str(tmp_path), "keep_models": 2, "server": {"url": url}}))
    with pytest.raises(RetrainError, match="no earlier model"):
        registry.champion() and registry.rollback()
    champion = tmp_path / "models" / "champion.tar.gz"
    for n in (1, 2, 3):
        candidate = tmp_path / f"c{n}.tar.gz"
        candidate.write_bytes(f"model {n}".encode())
        registry.promote(candidate, {"n": n})
        assert champion.read_bytes() == f"model {n}".encode()
    assert len(registry.versions()) == 2  # keep_models
    assert registry.notify_server()["notified"] is True
    assert calls[-1] == ("/model?token=s3cret", {"model_file": str(champion.resolve())})
    previous = registry.rollback()
    assert champion.read_bytes() == b"model 2" and registry.state()["champion"] == previous
    with pytest.raises(RetrainError, match="no earlier model"):
        registry.rollback()
    assert not list((tmp_path / "models").glob(".*tmp*"))


def test_no_model_and_no_server_are_explained(tmp_path):
    registry = Registry(RetrainConfig.from_dict({"project": str(tmp_path), "server": {"url": "http://127.0.0.1:9"}}))
    with pytest.raises(RetrainError, match="train one first"):
        registry.champion()
    result = registry.notify_server()
    assert result["notified"] is False and "next starts" in result["reason"]


def test_a_crashed_write_leaves_only_leftovers_that_the_next_run_removes(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "first.tar.gz").write_bytes(b"model 0")
    registry = Registry(RetrainConfig.from_dict({"project": str(tmp_path), "server": {"url": None}}))
    version = registry.champion()["version"]
    # What kefu.core.atomic leaves when the process dies mid-write.
    (tmp_path / "models" / ".champion.tar.gz.abc123.tmp").write_bytes(b"half a model")
    (registry.root / ".state.json.x1.tmp").write_text("{")
    (registry.root / version / ".metrics.json.x2.tmp").write_text("{")
    half = registry.root / ".20990101T000000-v.tmp-q7"
    half.mkdir()
    (half / "metrics.json").write_text("{}")  # complete-looking, but never renamed into place
    others = tmp_path / "models" / ".kb.tmp-zz"  # another tool's write in progress: not ours to remove
    others.mkdir()
    assert registry.versions() == [version]
    assert registry.clean_temporaries() == 4
    assert others.exists() and not half.exists()
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [".kb.tmp-zz", "champion.tar.gz", "first.tar.gz"]
    assert registry.champion()["version"] == version
