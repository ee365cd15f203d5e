"""Failed requests while nginx takes replicas out and back: reloads against drain flags, side by side.

    flock /tmp/kefu-cpu.lock .venv/bin/python bench/nginx_drain.py [--rate 200] [--seconds 20] [--every 0.5]

The cluster's front nginx (cluster/nginx.py, 3 replicas) in front of three tiny
HTTP/1.1 keep-alive servers standing in for Rasa (no model: the figure is
nginx's alone), an open loop of POSTs at `--rate` per second through a pool of
keep-alive connections, as the web widget's and the load generator's. Phase
`reload`: every `--every` seconds nginx is reloaded (SIGHUP), as the rolling
rollout did twice per replica before drain flags; phase `drain flag`: every
`--every` seconds a replica's drain flag is created or removed instead. Prints
sent, failed and why, per phase.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cluster import modelfiles, nginx, packages, procs  # noqa: E402
from cluster.config import ClusterConfig  # noqa: E402
from cluster.loadgen import generate  # noqa: E402
from tests.live_bot import free_port  # noqa: E402


class Replica(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body in two writes: no 40 ms delayed-ACK wait

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"[]")

    def log_message(self, *args):
        pass


async def phase(config: ClusterConfig, pid: int, what: str, args) -> dict:
    stop = asyncio.Event()
    url = f"http://127.0.0.1:{config.port}/webhooks/rest/webhook"
    load = asyncio.ensure_future(generate(url, args.seconds, 16, what.replace(" ", "-"), rate_per_s=args.rate, stop=stop))
    changes = 0
    while not load.done():
        await asyncio.sleep(args.every)
        if what == "reload":
            os.kill(pid, signal.SIGHUP)
        else:
            flag = modelfiles.drain_flag(config, (changes // 2) % config.replicas)
            flag.unlink() if flag.exists() else flag.touch()
        changes += 1
    for i in range(config.replicas):
        modelfiles.drain_flag(config, i).unlink(missing_ok=True)
    return dict((await load).summary(), changes=changes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--every", type=float, default=0.5, help="seconds between reloads / drain-flag changes")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="kefu-bench-drain-"))
    base = free_port()
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", base + i), Replica) for i in range(3)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    config = ClusterConfig(replicas=3, replica_base_port=base, port=free_port(), actions_port=free_port(),
                           model_server_port=free_port(), state_dir=str(workdir / "state"), models_dir=str(workdir / "models"))
    for folder in ("nginx", "logs"):
        (config.state / folder).mkdir(parents=True)
    flags = modelfiles.drain_flag(config, 0).parent
    flags.mkdir(parents=True)
    flags.chmod(0o755)
    procs.make_traversable(flags)
    binary = packages.ensure("nginx")
    conf = nginx.configure(config, config.state)
    process = subprocess.Popen([binary, "-p", str(config.state / "nginx"), "-c", str(conf), "-g", "daemon off;"])
    try:
        procs.wait_http(f"http://127.0.0.1:{config.port}/", 20, "nginx", ok=(200, 404, 405, 501))
        results = {what: asyncio.run(phase(config, process.pid, what, args)) for what in ("reload", "drain flag")}
        for what, s in results.items():
            errors = f" ({json.dumps(s['errors'])})" if s.get("errors") else ""
            print(f"{what:>10}: {s['changes']} changes, sent {s['sent']}, failed {s['failed']}{errors}, "
                  f"p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms")
    finally:
        process.terminate()
        process.wait(timeout=20)
        for server in servers:
            server.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
