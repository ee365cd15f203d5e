"""Draining a replica through the real nginx: its drain flag keeps new requests off it, with no reload.

Stand-in replicas answer with their own port (tests/cluster/standin_front.py), so
this needs nginx (Debian's, installed when missing) but no model.
"""

from __future__ import annotations

import time
import urllib.request
from collections import Counter

import pytest

from cluster import modelfiles
from cluster.config import ClusterConfig, ClusterError
from tests.cluster.standin_front import standin_front


@pytest.fixture
def front(tmp_path):
    try:
        with standin_front(tmp_path) as (config, _):
            yield config
    except ClusterError as e:
        pytest.skip(str(e))


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
