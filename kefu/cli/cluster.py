"""`kefu cluster up|down|rollout|status`: N Rasa replicas behind nginx on PostgreSQL and Redis (cluster/lifecycle.py)."""

from __future__ import annotations

import json
from pathlib import Path

from cluster import lifecycle
from cluster.config import ClusterConfig
from kefu.core.secrets import api_token


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("cluster", help="run replicas behind nginx on PostgreSQL/Redis; roll models out")
    sub = p.add_subparsers(dest="cluster_command", required=True)
    up = sub.add_parser("up", help="start the stores (embedded unless cluster.yml names them), nginx, action servers, replicas")
    up.add_argument("--replicas", type=int, help="Rasa replicas (overrides cluster.yml)")
    up.add_argument("--timeout", type=float, default=600, help="seconds to wait for every replica to serve")
    for name, help_text in (("down", "stop everything `up` started"), ("status", "what runs, and each replica's model")):
        sub.add_parser(name, help=help_text)
    roll = sub.add_parser("rollout", help="serve a new model archive to every replica (model server pull, ETag)")
    roll.add_argument("archive", help="a model archive (rasa train's models/*.tar.gz)")
    roll.add_argument("--wait", action="store_true", help="until every replica serves it")
    for command in sub.choices.values():
        command.add_argument("--config", help="cluster.yml (default: ./cluster.yml when present)")
    p.set_defaults(func=_run)


def _config(args) -> ClusterConfig:
    path = Path(args.config) if args.config else (Path("cluster.yml") if Path("cluster.yml").exists() else None)
    return ClusterConfig.load(path, replicas=getattr(args, "replicas", None))


def _run(args) -> int:
    config = _config(args)
    if args.cluster_command == "up":
        lifecycle.up(config, timeout_s=args.timeout)
    elif args.cluster_command == "down":
        lifecycle.down(config)
    elif args.cluster_command == "rollout":
        lifecycle.rollout(config, Path(args.archive))
        if args.wait:
            token, _ = api_token(Path("var"))
            etag = lifecycle.served_etag(config)
            print(f"every replica serves it after {lifecycle.wait_rolled_out(config, token, etag):.1f} s")
    else:
        info = lifecycle.status(config)
        token, _ = api_token(Path("var"))
        info["fingerprints"] = {str(k): v for k, v in lifecycle.replica_fingerprints(config, token).items()}
        info["served_etag"] = lifecycle.served_etag(config)
        print(json.dumps(info, indent=2))
    return 0
