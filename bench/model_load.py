"""How long a kefu model archive takes to load: Rasa's way of building TED, kefu's (bot/speedups.py), kefu's
with the transformers' ONNX graphs from the cache a previous load filled (kefu.core.onnx_cache), that last one
with skops imported its own way (`skops-plain`) instead of through kefu.core.sklearn_io.skops_io, and the NLU part
alone with the cache filled (`nlu-only`: bot.nlu_only, what the retrain's knowledge-base probe loads).

    flock /tmp/kefu-cpu.lock .venv/bin/python bench/model_load.py --model build/test/models/kefu.tar.gz [--rounds 3]

Each load runs in a fresh process (`Agent.load`, as `rasa run` and `rasa test` do; `nlu-only` builds
`bot.nlu_only.NLUParser`), the same modules imported before the clock starts, the ways alternating
round by round so that drift in the machine's speed hits all. The first two export the ONNX graphs (KEFU_ONNX_CACHE=off); the cache of the
others is filled by one load before the rounds (not counted). Prints the seconds of every load,
the median of each way, and whether the TED network's weights came out the same in the ways that
load it (they must: only how the network is built differs). Nothing else should run meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WAYS = ("rasa", "kefu", "kefu-cached", "skops-plain", "nlu-only")
TED_WAYS = WAYS[:-1]


def child(model: str, way: str, weights_out: str) -> None:
    import time

    import numpy as np
    from rasa.core.agent import Agent
    from rasa.core.policies.ted_policy import TEDPolicy
    from rasa.utils.tensorflow.models import RasaModel

    import bot.components  # noqa: F401  (what Rasa imports first for a kefu model; installs kefu's load)
    from bot.nlu_only import NLUParser

    if way == "rasa":
        RasaModel.load = classmethod(RasaModel.__dict__["load"].__func__.__wrapped__)
    started = time.perf_counter()
    if way == "skops-plain":
        import skops.io  # noqa: F401  (skops' own import, after TensorFlow and torch, as before kefu's lookup)
    if way == "nlu-only":
        NLUParser(model)
        print(json.dumps({"seconds": round(time.perf_counter() - started, 2)}))
        return
    agent = Agent.load(model)
    seconds = time.perf_counter() - started
    nodes = agent.processor.graph_runner._instantiated_nodes.values()
    ted = next(n._component for n in nodes if isinstance(getattr(n, "_component", None), TEDPolicy))
    np.savez(weights_out, *[w.numpy() for w in ted.model.weights])
    print(json.dumps({"seconds": round(seconds, 2)}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "build/test/models/kefu.tar.gz"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=WAYS, help=argparse.SUPPRESS)
    parser.add_argument("--weights-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.model, args.child, args.weights_out)
        return 0
    import numpy as np

    seconds = {way: [] for way in WAYS}
    with tempfile.TemporaryDirectory() as scratch:
        env = dict(os.environ, HF_HUB_OFFLINE="1", TF_CPP_MIN_LOG_LEVEL="2", PYTHONWARNINGS="ignore")

        def load(way: str) -> float:
            cache = f"{scratch}/onnx-cache" if way in ("kefu-cached", "skops-plain", "nlu-only") else "off"
            out = subprocess.run([sys.executable, __file__, "--model", args.model, "--child", way, "--weights-out",
                                  f"{scratch}/{way}.npz"], env=dict(env, KEFU_ONNX_CACHE=cache), capture_output=True, text=True)
            if out.returncode != 0:
                print(out.stderr[-2000:], file=sys.stderr)
                raise SystemExit(1)
            return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]

        print(f"filling the ONNX cache: {load('kefu-cached'):.2f} s (not counted)", flush=True)
        for round_ in range(1, args.rounds + 1):
            for way in WAYS:
                seconds[way].append(load(way))
                print(f"round {round_}: {way:11s} {seconds[way][-1]:6.2f} s", flush=True)
        weights = [np.load(f"{scratch}/{way}.npz") for way in TED_WAYS]
        same = all(w.files == weights[0].files and all((w[k] == weights[0][k]).all() for k in w.files) for w in weights)
    medians = {way: statistics.median(values) for way, values in seconds.items()}
    print(f"median load: Rasa's TED build {medians['rasa']:.2f} s, kefu's {medians['kefu']:.2f} s, kefu's with the "
          f"ONNX cache filled {medians['kefu-cached']:.2f} s, the same with skops' own import {medians['skops-plain']:.2f} s, the NLU alone {medians['nlu-only']:.2f} s; "
          f"TED weights identical: {same} ({len(weights[0].files)} arrays)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
