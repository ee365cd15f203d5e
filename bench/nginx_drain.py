"""Failed requests while nginx takes replicas out and back: reloads against drain flags, side by side.

    flock /tmp/kefu-cpu.lock .venv/bin/python bench/nginx_drain.py [--rate 200] [--seconds 20] [--every 0.5]

The cluster's front nginx (cluster/nginx.py, 3 replicas) in front of three tiny
HTTP/1.1 keep-alive servers standing in for Rasa (tests/cluster/standin_front.py; no model: the
figure is nginx's alone), an open loop of POSTs at `--rate` per second through a pool of
keep-alive connections, as the web widget's and the load generator's. Phase
`drain flag`: every `--every` seconds a replica's drain flag is created or
removed; phase `reload` (second, so that no old worker outlives it into the
other): every `--every` seconds nginx is reloaded (SIGHUP), as the rolling
rollout did twice per replica before drain flags. Prints sent, failed and why,
per phase.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cluster import modelfiles  # noqa: E402
from cluster.config import ClusterConfig  # noqa: E402
from cluster.loadgen import generate  # noqa: E402
from tests.cluster.standin_front import standin_front  # noqa: E402


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
    await asyncio.sleep(3)  # a last reload's old worker has exited before the next phase starts
    return dict((await load).summary(), changes=changes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--every", type=float, default=0.5, help="seconds between reloads / drain-flag changes")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="kefu-bench-drain-"))
    try:
        with standin_front(workdir) as (config, pid):
            results = {what: asyncio.run(phase(config, pid, what, args)) for what in ("drain flag", "reload")}
        for what, s in results.items():
            errors = f" ({json.dumps(s['errors'])})" if s.get("errors") else ""
            print(f"{what:>10}: {s['changes']} changes, sent {s['sent']}, failed {s['failed']}{errors}, "
                  f"p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
