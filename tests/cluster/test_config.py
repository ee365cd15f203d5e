"""cluster.yml, the generated endpoints/credentials and the nginx configuration (checked by `nginx -t`)."""

import subprocess

import pytest
import yaml

from cluster import modelfiles, nginx, packages, topology
from cluster.config import ClusterConfig, ClusterError
from kefu.cli import main


def test_unknown_and_bad_options_are_refused(tmp_path):
    (tmp_path / "c.yml").write_text("replicas: 3\nreplica: 2\n")
    with pytest.raises(ClusterError, match="replica"):
        ClusterConfig.load(tmp_path / "c.yml")
    with pytest.raises(ClusterError, match="postgres"):
        ClusterConfig(postgres_url="mysql://x")
    assert ClusterConfig.load(None, replicas=4).replica_ports() == [15005, 15006, 15007, 15008]


def test_endpoints_use_postgres_redis_and_the_model_server(tmp_path):
    (tmp_path / "endpoints.yml").write_text("nlg:\n  type: bot.nlg.BilingualNLG\ntracker_store:\n  type: SQL\n")
    config = ClusterConfig(model_server_port=9000, actions_port=9001)
    result = topology.endpoints(config, "postgresql://kefu:p%40ss@db:5433/kefu", "redis://:pw@cache:6380", tmp_path / "endpoints.yml")
    assert result["tracker_store"] == {"type": "SQL", "dialect": "postgresql", "url": "db", "port": 5433, "db": "kefu",
                                       "username": "kefu", "password": "p@ss"}
    assert result["lock_store"]["type"] == "bot.redis_lock_store.RedisLockStore"
    assert result["lock_store"]["password"] == "pw" and result["lock_store"]["db"] == 1 and result["lock_store"]["lease_s"] == 5
    assert result["models"] == {"url": "http://127.0.0.1:9000/models/champion.tar.gz", "wait_time_between_pulls": 5}
    assert result["action_endpoint"]["url"] == "http://127.0.0.1:9001/webhook"
    replica = topology.endpoints(config, "postgresql://h/kefu", "redis://h", tmp_path / "endpoints.yml", replica=2)
    assert replica["models"]["url"] == "http://127.0.0.1:9000/models/.rollout/replica-2.tar.gz"  # rolling rollouts
    assert result["nlg"]["type"] == "bot.nlg.BilingualNLG"
    assert topology.channel_redis_url("redis://:pw@cache:6380") == "redis://:pw@cache:6380/2"
    (tmp_path / "credentials.yml").write_text("bot.channels.rest.ValidatingRestInput:\n")
    assert topology.METRICS_CHANNEL in topology.credentials(tmp_path / "credentials.yml")


def test_nginx_accepts_the_rendered_configuration(tmp_path):
    try:
        binary = packages.ensure("nginx")
    except ClusterError as e:
        pytest.skip(str(e))
    config = ClusterConfig(replicas=3, state_dir=str(tmp_path), models_dir=str(tmp_path / "models"))
    (tmp_path / "nginx").mkdir()
    (tmp_path / "logs").mkdir()
    conf = nginx.configure(config, tmp_path)
    check = subprocess.run([binary, "-t", "-p", str(tmp_path / "nginx"), "-c", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    text = conf.read_text()
    assert "client_max_body_size 64k" in text and "hash $sticky_key consistent" in text and "Upgrade $http_upgrade" in text
    hosts = nginx.replica_hosts(config)
    without_1 = text.split("upstream rasa_without_1 {")[1].split("}")[0]
    assert hosts[1] not in without_1 and hosts[0] in without_1 and hosts[2] in without_1
    assert f"if (-f \"{modelfiles.drain_flag(config, 1)}\") {{ set $replicas rasa_without_1; }}" in text
    sticky = text.split("upstream rasa_sticky {")[1].split("}")[0]
    assert all(h in sticky for h in hosts)  # socket.io sessions live in their replica: never drained
    config.client_max_body_size = "bogus"
    with pytest.raises(ClusterError, match="nginx refused"):
        nginx.configure(config, tmp_path)
    assert "client_max_body_size 64k" in conf.read_text()  # the refused file never replaced the running one


def test_one_replica_has_nothing_to_drain_to(tmp_path):
    text = nginx.render(ClusterConfig(replicas=1), tmp_path)
    assert "rasa_without" not in text and "if (-f" not in text and "proxy_pass http://$replicas;" in text


def test_shipped_template_matches_the_defaults():
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "kefu.conf"
    assert shipped.read_text() == nginx.template(), \
        "deploy/nginx/kefu.conf is stale: regenerate it with the command in cluster/nginx.py's docstring"


def test_cli_down_with_nothing_running(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cluster.yml").write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state")}))
    assert main(["cluster", "down"]) == 0
    assert "nothing" in capsys.readouterr().out
