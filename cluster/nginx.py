"""The nginx configuration of a cluster: customers' front door, the action servers' upstream, the model server.

Three servers in one nginx:
- front (`host:port`): REST/Slack/WeChat webhooks and the API spread over the
  replicas (least connections; a replica that refuses connections is skipped,
  a POST already sent is never replayed), socket.io sticky per client
  (cookie `kefu_route`, set on the first Engine.IO request; `?route=` or the
  client address also work) with the websocket upgrade; body size and slow
  clients bounded; /metrics and `PUT|DELETE /model` refused (roll out through
  the model server; scrape replicas directly).
- actions (loopback): the action servers, round robin.
- model server (loopback): `models_dir` as static files with ETags, what each
  replica polls (`models:` in endpoints.yml).
deploy/nginx/kefu.conf is this file rendered for the defaults (a template for other machines):
`python -c 'from cluster import nginx; print(nginx.template(), end="")' > deploy/nginx/kefu.conf`.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import List

from cluster import modelfiles, packages
from cluster.config import ClusterConfig, ClusterError
from kefu.core import atomic

# Idle upstream connections nginx keeps: closed before the servers' own keep-alive timeout (the
# action servers': Sanic's KEEP_ALIVE_TIMEOUT, 5 s; `rasa run`'s: 120 s), so nginx never sends a POST on a
# connection the server is closing (a 502: a POST already sent is never replayed).
UPSTREAM_KEEPALIVE_TIMEOUT = "4s"


def render(config: ClusterConfig, state: Path) -> str:
    """The whole nginx.conf. Draining a replica (cluster/controller.py) needs no reload: with more than one
    replica there is an upstream without each, and the front picks it while the replica's drain flag
    (modelfiles.drain_flag) exists, a file test per request. A reload would close every idle
    keep-alive connection of the customers' clients, racing their next request (a reset, a failed message).
    """
    def servers(hosts: List[str]) -> str:
        return "\n".join(f"        server {h} max_fails=1 fail_timeout=3s;" for h in hosts)

    replicas, actions = _hosts(config.replica_ports()), _hosts(config.action_ports())
    groups = [("rasa", replicas)]
    if len(replicas) > 1:
        groups += [(f"rasa_without_{i}", replicas[:i] + replicas[i + 1:]) for i in range(len(replicas))]
    balanced = "\n".join(f"""    upstream {name} {{
        least_conn;
{servers(hosts)}
        keepalive 64;
        keepalive_timeout {UPSTREAM_KEEPALIVE_TIMEOUT};
    }}""" for name, hosts in groups)
    drains = "".join(f'        if (-f "{modelfiles.drain_flag(config, i)}") {{ set $replicas rasa_without_{i}; }}\n'
                     for i in range(len(replicas)) if len(replicas) > 1)
    tmp = state / "nginx"
    return f"""# Written by `kefu cluster up` (cluster/nginx.py); edit cluster.yml, not this file.
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {state}/logs/nginx-error.log warn;
events {{ worker_connections 4096; }}

http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server_tokens off;
    types {{ application/gzip gz; application/json json; text/plain txt; }}
    default_type application/octet-stream;

    # Bad and slow clients: bodies over the limit get a 413, trickling clients are cut off.
    client_max_body_size {config.client_max_body_size};
    client_body_buffer_size {config.client_max_body_size};
    client_header_timeout 10s;
    client_body_timeout 10s;
    send_timeout 30s;
    keepalive_timeout 30s;
    large_client_header_buffers 4 8k;

    map $http_upgrade $connection_upgrade {{ default upgrade; "" close; }}
    # socket.io stickiness: ?route=, else the kefu_route cookie, else a new id (set as the cookie).
    map $cookie_kefu_route $route_cookie {{ "" $request_id; default $cookie_kefu_route; }}
    map $arg_route $sticky_key {{ "" $route_cookie; default $arg_route; }}

{balanced}
    upstream rasa_sticky {{
        hash $sticky_key consistent;
{servers(replicas)}
    }}
    upstream actions {{
{servers(actions)}
        keepalive 32;
        keepalive_timeout {UPSTREAM_KEEPALIVE_TIMEOUT};
    }}

    server {{
        listen {config.host}:{config.port} reuseport backlog=4096;
        proxy_http_version 1.1;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_connect_timeout 2s;
        proxy_read_timeout 120s;
        # Only requests never sent to a replica (connection refused, replica down) go to the next one.
        proxy_next_upstream error timeout;
        proxy_next_upstream_tries 3;
        # A replica about to load a model gets no new webhook or API request (a file test, no reload).
        set $replicas rasa;
{drains}
        location = /metrics {{ return 403 "scrape each replica directly\\n"; }}
        location = /model {{ return 403 "roll models out through the model server: kefu cluster rollout\\n"; }}
        location /socket.io/ {{
            add_header Set-Cookie "kefu_route=$sticky_key; Path=/socket.io/; HttpOnly; SameSite=Lax";
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 3600s;
            proxy_pass http://rasa_sticky;
        }}
        location / {{
            proxy_set_header Connection "";
            proxy_pass http://$replicas;
        }}
    }}

    server {{
        listen 127.0.0.1:{config.actions_port};
        client_max_body_size 8m;  # Rasa posts the whole tracker to the action server
        location / {{
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_read_timeout 60s;
            proxy_pass http://actions;
        }}
    }}

    server {{
        listen 127.0.0.1:{config.model_server_port};
        location /models/ {{
            alias "{Path(config.models_dir).resolve()}/";
            etag on;
            add_header Cache-Control no-cache;
        }}
    }}
}}
"""


def _hosts(ports: List[int]) -> List[str]:
    return [f"127.0.0.1:{p}" for p in ports]


def replica_hosts(config: ClusterConfig) -> List[str]:
    return _hosts(config.replica_ports())


def configure(config: ClusterConfig, state: Path) -> Path:
    """Writes <state>/nginx/nginx.conf once `nginx -t` accepts it."""
    binary = packages.ensure("nginx")
    text = render(config, state)
    candidate = atomic.write_text(state / "nginx" / "nginx.conf.new", text)
    check = subprocess.run([binary, "-t", "-q", "-p", str(state / "nginx"), "-c", str(candidate)], capture_output=True, text=True)
    if check.returncode != 0:
        raise ClusterError(f"nginx refused its configuration: {check.stderr[-500:]}")
    conf = state / "nginx" / "nginx.conf"
    os.replace(candidate, conf)
    return conf


def template() -> str:
    """deploy/nginx/kefu.conf: the configuration for the defaults, 3 replicas, under /srv/kefu."""
    config = ClusterConfig(replicas=3, state_dir="/srv/kefu/var/cluster", models_dir="/srv/kefu/models")
    return (f"# Template: `kefu cluster up` writes this for cluster.yml (here 3 replicas, state in {config.state_dir}).\n"
            + render(config, config.state))
