"""Draining a replica through the real nginx: its drain flag keeps new requests off it, with no reload.

Three tiny HTTP servers stand in for the replicas (each answers with its own port),
so this needs nginx (Debian's, installed when missing) but no model.
"""

from __future__ import annotations

import http.server
import subprocess
import threading
import time
import urllib.request
from collections import Counter

import pytest

from cluster import modelfiles, nginx, packages, procs
from cluster.config import ClusterConfig, ClusterError
from tests.live_bot import free_port


class Replica(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Rasa's Sanic
    disable_nagle_algorithm = True

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = str(self.server.server_address[1]).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def front(tmp_path):
    try:
        binary = packages.ensure("nginx")
    except ClusterError as e:
        pytest.skip(str(e))
    base = free_port()
    servers = []
    for i in range(3):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", base + i), Replica)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    config = ClusterConfig(replicas=3, replica_base_port=base, port=free_port(), actions_port=free_port(),
                           model_server_port=free_port(), state_dir=str(tmp_path / "state"),
                           models_dir=str(tmp_path / "shared models"))  # a space: the paths are quoted
    for folder in ("nginx", "logs"):
        (config.state / folder).mkdir(parents=True)
    flags = modelfiles.drain_flag(config, 0).parent
    flags.mkdir(parents=True)
    flags.chmod(0o755)
    procs.make_traversable(flags)  # nginx's workers run as another user
    conf = nginx.configure(config, config.state)
    process = subprocess.Popen([binary, "-p", str(config.state / "nginx"), "-c", str(conf), "-g", "daemon off;"])
    try:
        procs.wait_http(f"http://127.0.0.1:{config.port}/", 20, "nginx", ok=(200, 404, 405, 501))
        yield config
    finally:
        process.terminate()
        process.wait(timeout=20)
        for server in servers:
            server.shutdown()


def answered_by(config: ClusterConfig, n: int) -> Counter:
    ports = Counter()
    for _ in range(n):
        request = urllib.request.Request(f"http://127.0.0.1:{config.port}/webhooks/rest/webhook", data=b"{}", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            ports[int(response.read())] += 1
    return ports


def test_a_drained_replica_gets_no_new_request_and_comes_back_when_undrained(front):
    ports = front.replica_ports()
    assert set(answered_by(front, 30)) == set(ports)
    flag = modelfiles.drain_flag(front, 1)
    flag.touch()
    drained = answered_by(front, 30)
    assert ports[1] not in drained and sum(drained.values()) == 30, drained
    flag.unlink()
    time.sleep(0.2)
    assert ports[1] in answered_by(front, 30)
