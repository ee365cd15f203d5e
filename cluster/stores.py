"""Embedded PostgreSQL and Redis for a cluster on one machine (when cluster.yml names none), on loopback.

PostgreSQL refuses to run as root: as root the cluster runs it as the `postgres`
user (runuser). Its password is generated into <state>/secrets/postgres-password
(0600); Redis gets one too (`requirepass`). Both listen on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from typing import List

import redis

from cluster import packages, procs
from cluster.config import ClusterConfig, ClusterError

PG_USER = "kefu"
PG_DB = "kefu"


def _secret(state: Path, name: str) -> str:
    path = state / "secrets" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(16) + "\n")
    return path.read_text().strip()


def _as_postgres(args: List[str]) -> List[str]:
    if os.geteuid() != 0:
        return args
    if shutil.which("runuser") is None:
        raise ClusterError("PostgreSQL refuses to run as root and runuser is missing: name a postgres_url in cluster.yml")
    return ["runuser", "-u", "postgres", "--", *args]


def postgres_url(config: ClusterConfig) -> str:
    password = _secret(config.state, "postgres-password")
    return f"postgresql://{PG_USER}:{password}@127.0.0.1:{config.embedded_postgres_port}/{PG_DB}"


def start_postgres(config: ClusterConfig) -> str:
    """Initialises (first time) and starts the embedded PostgreSQL; its URL."""
    packages.ensure("initdb")
    state, bin_dir = config.state, packages.PG_BIN
    data, password = state / "postgres", _secret(state, "postgres-password")
    state.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        procs.make_traversable(state)  # postgres must reach its data directory
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        pwfile = state / "postgres.pw"
        pwfile.unlink(missing_ok=True)
        with os.fdopen(os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
            handle.write(password + "\n")
        if os.geteuid() == 0:
            shutil.chown(data, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        os.chmod(data, 0o700)
        result = subprocess.run(_as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-U", PG_USER, "--pwfile", str(pwfile),
                                              "--auth-host=scram-sha-256", "--auth-local=peer", "-E", "UTF8"]),
                                capture_output=True, text=True)
        pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise ClusterError(f"initdb failed: {result.stderr[-500:]}")
    procs.spawn(state, "postgres", _as_postgres([str(bin_dir / "postgres"), "-D", str(data), "-p", str(config.embedded_postgres_port),
                                                 "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={data}",
                                                 "-c", "max_connections=200", "-c", "fsync=on"]))
    deadline = time.monotonic() + 60
    env = dict(os.environ, PGPASSWORD=password)
    while True:
        check = subprocess.run([str(bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(config.embedded_postgres_port), "-U", PG_USER,
                                "-d", "postgres", "-tAc", f"SELECT 1 FROM pg_database WHERE datname='{PG_DB}'"],
                               capture_output=True, text=True, env=env)
        if check.returncode == 0:
            break
        if time.monotonic() > deadline or not procs.alive(procs.read_pid(state, "postgres")):
            raise ClusterError(f"PostgreSQL did not start: {check.stderr[-300:]} (log: {state / 'logs' / 'postgres.log'})")
        time.sleep(0.3)
    if check.stdout.strip() != "1":
        subprocess.run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(config.embedded_postgres_port), "-U", PG_USER, PG_DB],
                       check=True, capture_output=True, env=env)
    return postgres_url(config)


def redis_url(config: ClusterConfig) -> str:
    return f"redis://:{_secret(config.state, 'redis-password')}@127.0.0.1:{config.embedded_redis_port}"


def start_redis(config: ClusterConfig) -> str:
    server = packages.ensure("redis-server")
    state = config.state
    (state / "redis").mkdir(parents=True, exist_ok=True)
    password = _secret(state, "redis-password")
    conf = state / "redis" / "redis.conf"
    conf.write_text(f"port {config.embedded_redis_port}\nbind 127.0.0.1\nprotected-mode yes\nrequirepass {password}\n"
                    f"dir {state / 'redis'}\nsave \"\"\nappendonly no\ndaemonize no\n")
    os.chmod(conf, 0o600)
    pid = procs.spawn(state, "redis", [server, str(conf)])
    deadline = time.monotonic() + 30
    client = redis.Redis.from_url(redis_url(config), socket_timeout=1, socket_connect_timeout=1)
    while True:
        try:
            if client.ping():
                break
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline or not procs.alive(pid):
            raise ClusterError(f"Redis did not start (log: {state / 'logs' / 'redis.log'})")
        time.sleep(0.2)
    return redis_url(config)
