"""`kefu cluster up | down | rollout | status`: the whole topology on one machine, as detached processes.

up: stores (embedded PostgreSQL and Redis unless cluster.yml names them), the
model server and the front (one nginx), N action servers (loopback), N Rasa
replicas (loopback, each `rasa run --enable-api` with the shared stores and the
model server; the API token in its environment, not on its command line:
bot/rasa_server.py). Returns once every replica serves the model
through nginx. State, logs, generated configs: `state_dir` (var/cluster).

rollout: atomically replaces the served archive (`models_dir/model_file`); each
replica polls the model server every `pull_interval_s` and swaps in the new
model when its ETag changes; a corrupt archive fails to load and the replica
keeps serving the previous one. `kefu retrain` promotes by writing the same
file (retrain.yml `models_dir` = cluster.yml `models_dir`, champion.tar.gz).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

from bot import model_domain
from cluster import modelfiles, nginx, packages, procs, stores, topology
from cluster.config import ClusterConfig, ClusterError
from kefu.core import atomic
from kefu.core.archives import newest_model
from kefu.core.secrets import api_token


def say(message: str) -> None:
    print(message, flush=True)


def up(config: ClusterConfig, project: Path = Path("."), timeout_s: float = 600) -> Dict[str, Any]:
    started = time.monotonic()
    project = project.resolve()
    state = config.state
    if procs.running(state):
        raise ClusterError(f"a cluster is already running from {state} ({', '.join(procs.running(state))}): kefu cluster down first")
    state.mkdir(parents=True, exist_ok=True)
    served = config.model_path
    if not served.exists():
        source = newest_model(served.parent)
        if source is None:
            raise ClusterError(f"no model to serve: train one (`rasa train`) or put it at {served}")
        rollout(config, source, quiet=True)
    os.chmod(served, os.stat(served).st_mode | 0o044)  # nginx's workers (another user) serve it
    procs.make_traversable(served.parent)
    token, token_file = api_token(project / "var")
    try:
        postgres_url = config.postgres_url or stores.start_postgres(config)
        redis_url = config.redis_url or stores.start_redis(config)
        endpoints = {}
        for replica in (None, *range(config.replicas)):  # endpoints.yml (for the retrain) and one per replica
            name = "endpoints.yml" if replica is None else f"endpoints-{replica}.yml"
            endpoints[replica] = atomic.write_text(state / name, "# Written by `kefu cluster up`.\n" + yaml.safe_dump(
                topology.endpoints(config, postgres_url, redis_url, project / "endpoints.yml", replica), sort_keys=False))
            os.chmod(endpoints[replica], 0o600)  # holds the store passwords
        if config.rolling:
            for replica in range(config.replicas):
                modelfiles.link_atomically(served, modelfiles.replica_model(config, replica))
        credentials = atomic.write_text(state / "credentials.yml", "# Written by `kefu cluster up`.\n" + yaml.safe_dump(
            topology.credentials(project / config.credentials), sort_keys=False))
        _start_nginx(config, state)
        procs.wait_http(topology.model_url(config), 30, "model server")
        for i, port in enumerate(config.action_ports()):
            procs.spawn(state, f"actions-{i}", [sys.executable, "-m", "bot.action_server", "--host", "127.0.0.1", "--port", str(port)],
                        env={"PYTHONPATH": str(project)}, cwd=project)
        env = dict(topology.replica_env(config, redis_url), PYTHONPATH=str(project),  # this project's code, not another install
                   KEFU_API_TOKEN=token)  # read by bot/rasa_server.py: `ps` shows no token
        for i, port in enumerate(config.replica_ports()):
            procs.spawn(state, f"replica-{i}", replica_command(port, endpoints[i], credentials), env=env, cwd=project)
        for i, port in enumerate(config.action_ports()):
            procs.wait_http(f"http://127.0.0.1:{port}/health", 120, f"action server {i}", procs.read_pid(state, f"actions-{i}"),
                            state / "logs" / f"actions-{i}.log")
        for i, port in enumerate(config.replica_ports()):
            procs.wait_http(f"http://127.0.0.1:{port}/status?token={token}", timeout_s, f"replica {i}",
                            procs.read_pid(state, f"replica-{i}"), state / "logs" / f"replica-{i}.log")
        procs.wait_http(f"http://{_local(config.host)}:{config.port}/", 30, "nginx front")
        if config.rolling:
            atomic.write_json(state / "config.json", dict(dataclasses.asdict(config), _cwd=str(Path.cwd())))
            procs.spawn(state, "controller", [sys.executable, "-m", "cluster.controller", "--state", str(state)],
                        env={"PYTHONPATH": str(project)}, cwd=project)
    except BaseException:
        down(config, quiet=True)
        raise
    info = {"url": f"http://{_local(config.host)}:{config.port}", "replicas": [f"http://127.0.0.1:{p}" for p in config.replica_ports()],
            "actions": f"http://127.0.0.1:{config.actions_port}", "model_url": topology.model_url(config),
            "model": str(served), "token_file": str(token_file) if token_file else "KEFU_API_TOKEN",
            "postgres": "embedded" if not config.postgres_url else "external", "redis": "embedded" if not config.redis_url else "external",
            "seconds_to_serving": round(time.monotonic() - started, 1)}
    atomic.write_json(state / "cluster.json", info)
    say(f"kefu cluster up in {info['seconds_to_serving']} s: {config.replicas} replica(s) behind {info['url']} "
        f"(webhooks, socket.io, API with the token in {info['token_file']}); metrics on each replica's /metrics; "
        f"logs in {state / 'logs'}; stop with `kefu cluster down`.")
    return info


def replica_command(port: int, endpoints: Path, credentials: Path) -> List[str]:
    """`rasa run` through bot/rasa_server.py: the API token comes from KEFU_API_TOKEN in the environment."""
    return [sys.executable, "-m", "bot.rasa_server", "--interface", "127.0.0.1", "--port", str(port), "--enable-api",
            "--endpoints", str(endpoints), "--credentials", str(credentials), "--cors", "*"]


def _start_nginx(config: ClusterConfig, state: Path) -> None:
    binary = packages.ensure("nginx")
    for folder in ("nginx", "logs"):
        (state / folder).mkdir(parents=True, exist_ok=True)
    conf = nginx.configure(config, state)
    procs.spawn(state, "nginx", [binary, "-p", str(state / "nginx"), "-c", str(conf), "-g", "daemon off;"])


def _local(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


ORDER = ("controller", "nginx", "replica", "actions", "redis", "postgres")
STOP_SIGNAL = {"postgres": signal.SIGINT}  # PostgreSQL's fast shutdown (SIGTERM waits for every client to leave)


def down(config: ClusterConfig, quiet: bool = False) -> List[str]:
    """Stops everything `up` started (front first, stores last); the names stopped."""
    state = config.state
    names = sorted((p.stem for p in (state / "run").glob("*.pid")), key=lambda n: ORDER.index(n.split("-")[0]) if n.split("-")[0] in ORDER else 9)
    stopped = [n for n in names if procs.stop(state, n, sig=STOP_SIGNAL.get(n, signal.SIGTERM))]
    if not quiet:
        say(f"kefu cluster down: stopped {', '.join(stopped) or 'nothing (not running)'}")
    return stopped


def rollout(config: ClusterConfig, archive: Path, quiet: bool = False) -> Path:
    """Atomically replaces the archive the model server serves; replicas pick it up within pull_interval_s.

    An archive whose domain needs custom actions the running action servers do not
    serve (a model trained with another domain) is refused before anything changes.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise ClusterError(f"model archive {archive} not found")
    fit = model_domain.check(archive, action_endpoint_url(config))  # a corrupt archive: the replicas refuse it
    if fit.missing:
        raise ClusterError(f"refused: {fit.reason()}; the replicas keep serving {config.model_path.name}")
    if not fit.checked and not quiet:
        say(f"note: {fit.reason()}")
    target = config.model_path
    with open(archive, "rb") as source:
        atomic.write_bytes(target, source.read())
    os.chmod(target, 0o644)  # nginx's workers (another user) serve it
    procs.make_traversable(target.parent)
    if not quiet:
        say(f"rolled out {archive} as {target}; every replica loads it within {config.pull_interval_s} s "
            "(a corrupt archive is refused and the previous model keeps serving)")
    return target


def action_endpoint_url(config: ClusterConfig) -> str:
    """What the replicas call: nginx's upstream of the action servers (topology.endpoints)."""
    return f"http://127.0.0.1:{config.actions_port}/webhook"


def status(config: ClusterConfig) -> Dict[str, Any]:
    state = config.state
    info: Dict[str, Any] = json.loads((state / "cluster.json").read_text()) if (state / "cluster.json").exists() else {}
    info["running"] = procs.running(state)
    return info


def served_etag(config: ClusterConfig) -> Optional[str]:
    """The ETag the model server gives the served archive now (what replicas report as their fingerprint)."""
    request = urllib.request.Request(topology.model_url(config), method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.headers.get("ETag")
    except OSError:
        return None


def replica_fingerprints(config: ClusterConfig, token: str = "") -> Dict[int, Optional[str]]:
    """The model-server ETag each replica loaded (its /metrics); None when it does not answer.

    Rasa's /status names the model id, which a re-packed archive of the same training run shares.
    """
    return {port: modelfiles.replica_fingerprint(config, i) for i, port in enumerate(config.replica_ports())}


def wait_rolled_out(config: ClusterConfig, token: str, etag: str, timeout_s: float = 180) -> float:
    """Seconds until every replica serves the archive with `etag`."""
    started = time.monotonic()
    while set(replica_fingerprints(config, token).values()) != {etag}:
        if time.monotonic() - started > timeout_s:
            raise ClusterError(f"not every replica loaded the new model in {timeout_s:.0f} s: {replica_fingerprints(config, token)}")
        time.sleep(0.5)
    return time.monotonic() - started
