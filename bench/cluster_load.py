"""Cluster figures for the closing note: `kefu cluster up` time, saturated msgs/s and latency at 50% load, rollout.

    flock /tmp/kefu-cpu.lock .venv/bin/python bench/cluster_load.py throughput --model M [--replicas 1 3] [--seconds 30]
    flock /tmp/kefu-cpu.lock .venv/bin/python bench/cluster_load.py rollout --model M [--replicas 3] [--rate 4] [--rollouts 1]

throughput, per replica count: starts a cluster (embedded PostgreSQL/Redis,
loopback ports, scratch state), times `up` from nothing to serving; saturates it
with a closed loop of `--concurrency` customers through nginx (msgs/s = 200s
per second); then an open loop at 50% of that rate (p50/p95/p99). rollout:
load at `--rate` msgs/s, a new archive rolled out mid-run; sent, failed, and
p50/p99 before / during (until every replica serves it) / after, with why requests
failed; `--rollouts N` rolls out N new archives in a row (`--seconds` apart).
Channel rate limits are off (one simulated sender writes more than a person would).
Hold the CPU lock: every figure is wall time on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cluster import lifecycle  # noqa: E402
from cluster.config import ClusterConfig  # noqa: E402
from cluster.loadgen import Run, generate  # noqa: E402
from tests.live_bot import free_port, free_port_block  # noqa: E402

TOKEN = "kefu-bench-token"


def start(model: Path, replicas: int, workdir: Path) -> tuple:
    (workdir / "models").mkdir(parents=True, exist_ok=True)
    shutil.copy(model, workdir / "models" / "champion.tar.gz")
    ports = {k: free_port() for k in ("port", "actions_port", "model_server_port", "embedded_postgres_port", "embedded_redis_port")}
    base = free_port_block(70 + replicas)  # replicas at base.., action servers at base + 70..
    config = ClusterConfig(replicas=replicas, state_dir=str(workdir / "state"), models_dir=str(workdir / "models"),
                           replica_base_port=base, actions_base_port=base + 70, pull_interval_s=2, rate_per_minute=0, **ports)
    os.environ.update(KEFU_API_TOKEN=TOKEN, KEFU_ORDERS_DB=str(workdir / "orders.db"))
    info = lifecycle.up(config, project=ROOT, timeout_s=600)
    return config, info


def throughput(args) -> None:
    results = {}
    for replicas in args.replicas:
        workdir = Path(tempfile.mkdtemp(prefix=f"kefu-bench-{replicas}-"))
        config, info = start(Path(args.model), replicas, workdir)
        try:
            url = info["url"] + "/webhooks/rest/webhook"
            asyncio.run(generate(url, 5, args.concurrency, "warmup"))
            saturated = asyncio.run(generate(url, args.seconds, args.concurrency, "sat")).summary()
            half = saturated["msgs_per_s"] / 2
            at_half = asyncio.run(generate(url, args.seconds, args.concurrency, "half", rate_per_s=half)).summary()
            results[replicas] = {"up_s": info["seconds_to_serving"], "saturated": saturated, "at_50pct": dict(at_half, rate=half)}
            print(f"{replicas} replica(s): up in {info['seconds_to_serving']} s; saturated {saturated['msgs_per_s']} msgs/s "
                  f"(p50 {saturated['p50_ms']} ms, p99 {saturated['p99_ms']} ms, failed {saturated['failed']}); at 50% "
                  f"({half:.1f}/s): p50 {at_half['p50_ms']} ms p95 {at_half['p95_ms']} ms p99 {at_half['p99_ms']} ms, "
                  f"failed {at_half['failed']}", flush=True)
        finally:
            lifecycle.down(config, quiet=True)
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(results, indent=2))


def rollout(args) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="kefu-bench-rollout-"))
    config, info = start(Path(args.model), args.replicas[0], workdir)
    try:
        url = info["url"] + "/webhooks/rest/webhook"
        result, marks = Run(), []

        async def scenario():
            stop = asyncio.Event()
            load = asyncio.ensure_future(generate(url, 36000, 8, "roll", result, rate_per_s=args.rate, stop=stop))
            await asyncio.sleep(args.seconds)
            for n in range(args.rollouts):
                new_model = workdir / f"new-{n}.tar.gz"  # a new file each time: a new ETag, every replica loads it
                shutil.copy(args.new_model or args.model, new_model)
                start = time.monotonic()
                lifecycle.rollout(config, new_model, quiet=True)
                took = await asyncio.to_thread(lifecycle.wait_rolled_out, config, TOKEN, lifecycle.served_etag(config), 600)
                marks.append((start, time.monotonic(), took))
                await asyncio.sleep(args.seconds)
            stop.set()
            await load

        asyncio.run(scenario())
        parts = {"before": result.between(0, marks[0][0])}
        for n, (began, ended, _) in enumerate(marks):
            parts[f"during {n + 1}" if len(marks) > 1 else "during"] = result.between(began, ended)
        parts.update({"after": result.between(marks[-1][1], float("inf")), "all": result})
        for name, part in parts.items():
            s = part.summary()
            errors = f" ({json.dumps(s['errors'])})" if s.get("errors") else ""
            print(f"{name:>9}: sent {s['sent']} failed {s['failed']}{errors} p50 {s['p50_ms']} ms p99 {s['p99_ms']} ms")
        took = ", ".join(f"{t:.1f}" for _, _, t in marks)
        print(f"every replica served the new model {took} s after each rollout; up took {info['seconds_to_serving']} s")
    finally:
        lifecycle.down(config, quiet=True)
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("throughput", "rollout"))
    parser.add_argument("--model", default=os.environ.get("KEFU_TEST_MODEL", str(ROOT / "build/test/models/kefu.tar.gz")))
    parser.add_argument("--new-model", help="rollout: the archive rolled out (default: a fresh copy of --model)")
    parser.add_argument("--replicas", type=int, nargs="+", default=None)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=4.0)
    parser.add_argument("--rollouts", type=int, default=1, help="rollout: how many in a row (--seconds apart)")
    args = parser.parse_args()
    args.replicas = args.replicas or ([1, 3] if args.what == "throughput" else [3])
    (throughput if args.what == "throughput" else rollout)(args)


if __name__ == "__main__":
    main()
