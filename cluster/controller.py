"""Rolling rollout: replicas take a new model one at a time, so the others keep answering at full speed.

A Rasa replica answers nothing while it loads a model (10-20 s on a small CPU);
measured on 3 replicas pulling the same file at once: every request stalled,
p99 16 s during the rollout. With `rolling: true` (the default) each replica
polls its own link, `<models_dir>/.rollout/replica-<i>.tar.gz`, and this
controller watches the served archive (`models_dir/model_file`, what
`kefu cluster rollout` and `kefu retrain`'s promote write atomically). When it
changes, it takes replica 0 out of nginx's least_conn upstream (its drain flag,
`.rollout/drain-<i>`: nginx tests for the file on every request, so no reload closes
customers' keep-alive connections), gives its requests in hand 2 s to finish, links
the archive for it, waits until it reports the new ETag (or refuses it: a corrupt
archive), puts it back, then replica 1, and so on. So no webhook or API request waits
behind a load (measured without the drain: p99 14-15 s during a rolling rollout, the
requests that reached the loading replica). Socket.io stays sticky to its replica
(the session lives there): those customers wait for the load.

Run by `kefu cluster up`: `python -m cluster.controller --state <state_dir>` (reads <state_dir>/config.json).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Optional, Tuple

from cluster import modelfiles
from cluster.config import ClusterConfig

# Time the requests a drained replica holds get to finish before it loads (messages take well under a second).
DRAIN_S = 2.0


def signature(path: Path) -> Optional[Tuple[int, int, int]]:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def step(config: ClusterConfig, replica: int, timeout_s: float, drain_s: float = DRAIN_S) -> str:
    """Gives `replica` the served archive: 'loaded', 'refused' (it failed to load it) or 'timeout'.

    With more than one replica, nginx first stops sending it webhook and API requests, and
    the ones it has get `drain_s` to finish, so no request waits behind the load; it
    takes requests again once it has loaded the archive or refused it.
    """
    failed_before = modelfiles.failed_loads(config, replica)
    flag = modelfiles.drain_flag(config, replica)
    drain = config.replicas > 1
    try:
        if drain:
            flag.parent.mkdir(parents=True, exist_ok=True)
            flag.touch()
            time.sleep(drain_s)
        target = modelfiles.replica_model(config, replica)
        modelfiles.link_atomically(config.model_path, target)
        etag = modelfiles.etag_of(target)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if modelfiles.replica_fingerprint(config, replica) == etag:
                return "loaded"
            if modelfiles.failed_loads(config, replica) > failed_before:
                return "refused"
            time.sleep(0.5)
        return "timeout"
    finally:
        flag.unlink(missing_ok=True)


def run(config: ClusterConfig, poll_s: float = 1.0, step_timeout_s: float = 180.0) -> None:
    for i in range(config.replicas):  # no replica left drained by a controller that was killed mid-step
        modelfiles.drain_flag(config, i).unlink(missing_ok=True)
    seen = signature(config.model_path)
    if any(signature(modelfiles.replica_model(config, i)) != seen for i in range(config.replicas)):
        seen = None  # some replica has an older archive: roll out now
    while True:
        current = signature(config.model_path)
        if current is not None and current != seen:
            seen = current
            for i in range(config.replicas):
                outcome = step(config, i, step_timeout_s)
                print(json.dumps({"event": "kefu.rollout.step", "replica": i, "outcome": outcome}), flush=True)
                if signature(config.model_path) != seen:
                    break  # a newer archive arrived: start over with it
        time.sleep(poll_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", required=True)
    args = parser.parse_args()
    values = json.loads((Path(args.state) / "config.json").read_text())
    os.chdir(values.pop("_cwd"))
    run(ClusterConfig.from_dict(values))


if __name__ == "__main__":
    main()
