"""Seconds per step of the knowledge base's embedding adaptation: each batch padded whole, as sentence-transformers'
loss runs it, against retrieval.adapt.embed_by_length (groups of similar token length) at several pass costs.

    flock /tmp/kefu-cpu.lock .venv/bin/python bench/adapt_step.py [--qa data/qa] [--steps 12] [--rounds 3]

The same batches (the adaptation's own split, pairs and batching, seed 42), a fresh copy of the packaged
model per try, all cores, the ways alternating round by round. Prints every try, then the medians, and the
largest difference between the two ways' embeddings of one batch (eval mode: padding must not change them).
Nothing else should run meanwhile.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WAYS = {"one padded batch": 10**9, "by length, pass cost 512": 512, "by length, pass cost 128 (default)": 128,
        "by length, pass cost 32": 32}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qa", default=str(ROOT / "data/qa"))
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import numpy as np
    import torch
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    from kefu.core import runtime
    from retrieval.embedder import Embedder
    from retrieval.loaders import load_qa

    adapt = importlib.import_module("retrieval.adapt")  # the module (retrieval exports its function under that name)
    config = adapt.AdaptConfig()
    train, _ = adapt.holdout_split(load_qa([args.qa]), config.holdout_fraction, config.seed)
    examples = adapt.training_pairs(train, config.siblings_per_question, config.seed)
    batches = adapt.distinct_label_batches([key for _, _, key in examples], config.batch_size, np.random.default_rng(config.seed))
    runtime.set_threads(runtime.training_threads())
    base = Embedder.load("default", "cpu").model
    base.eval()
    with torch.no_grad():
        texts = [examples[i][1] for i in batches[0]]
        difference = float((adapt.embed_by_length(base, texts, base.device, 10**9) - adapt.embed_by_length(base, texts, base.device)).abs().max())

    seconds = {way: [] for way in WAYS}
    for round_ in range(1, args.rounds + 1):
        for way, pass_cost in WAYS.items():
            model = copy.deepcopy(base)
            model.train()
            loss_fn = MultipleNegativesRankingLoss(model)
            optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
            started = time.perf_counter()
            for batch in batches[1:args.steps + 1]:
                embeddings = [adapt.embed_by_length(model, [examples[i][column] for i in batch], model.device, pass_cost) for column in (0, 1)]
                loss_fn.compute_loss_from_embeddings(embeddings, None).backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            seconds[way].append((time.perf_counter() - started) / args.steps)
            print(f"round {round_}: {way:36s} {seconds[way][-1]:.3f} s/step", flush=True)
    print("median s/step: " + ", ".join(f"{way} {statistics.median(v):.3f}" for way, v in seconds.items()))
    print(f"largest embedding difference, padded whole vs by length: {difference:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
