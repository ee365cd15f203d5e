"""The cluster's front nginx (cluster/nginx.py's configuration) in front of tiny stand-in replicas.

Each stand-in is an HTTP/1.1 keep-alive server that answers a POST with its own
port, so a test or a bench sees which replica nginx chose, without a model.
Used by tests/cluster/test_drain.py and bench/nginx_drain.py.
"""

from __future__ import annotations

import contextlib
import http.server
import subprocess
import threading
from pathlib import Path
from typing import Iterator, Tuple

from cluster import modelfiles, nginx, packages, procs
from cluster.config import ClusterConfig
from tests.live_bot import free_port, free_port_block


class StandInReplica(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Rasa's Sanic
    disable_nagle_algorithm = True  # headers and body in two writes: no 40 ms delayed-ACK wait

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = str(self.server.server_address[1]).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def standin_front(workdir: Path, replicas: int = 3) -> Iterator[Tuple[ClusterConfig, int]]:
    """Yields the cluster configuration and nginx's pid; raises ClusterError when nginx cannot be installed."""
    binary = packages.ensure("nginx")
    base = free_port_block(replicas)
    servers = []
    for i in range(replicas):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", base + i), StandInReplica)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    config = ClusterConfig(replicas=replicas, replica_base_port=base, port=free_port(), actions_port=free_port(),
                           model_server_port=free_port(), state_dir=str(workdir / "state"),
                           models_dir=str(workdir / "shared models"))  # a space: the paths are quoted
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
        yield config, process.pid
    finally:
        process.terminate()
        process.wait(timeout=20)
        for server in servers:
            server.shutdown()
