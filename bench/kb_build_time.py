"""Time of the knowledge base's calibration and build next to another business's NLU data.

Inside `rasa train nlu` the shop's FAQ (data/qa) is calibrated and built with the NLU data's intent
examples, which its answer heads learn and its intent gap measures. This times that part alone, for the
adapted model's path (one held-out split, then the second view's folds), the frozen MiniLM standing in for
the adapted one (no 5-minute adaptation), with the heads' intent-example cap as configured and with
another (`--cap`), so a user sees what the cap buys. For the public benchmarks (bench/public_data.py):

    flock /tmp/kefu-cpu.lock .venv/bin/python bench/kb_build_time.py \\
        --nlu ~/.cache/kefu/benchmarks/clinc150/train.yml --cap 3000 100000
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nlu", required=True, help="NLU training data (Rasa YAML) whose intents the heads learn")
    parser.add_argument("--qa", nargs="+", default=[str(ROOT / "data" / "qa")], help="Q&A files (default: the shop's FAQ)")
    parser.add_argument("--cap", nargs="+", type=int, default=[3000], help="head_intent_examples_max values to time")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import logging

    logging.disable(logging.WARNING)
    from rasa.shared.nlu.training_data.loading import load_data

    from retrieval.adapt import holdout_split
    from retrieval.embedder import Embedder
    from retrieval.index import QAIndex, fold_query
    from retrieval.intent_neighbours import IntentNeighbours
    from retrieval.knowledge_base import KBConfig, fit_ranking_and_decision
    from retrieval.loaders import load_qa

    data = load_data(args.nlu)
    examples = [(m.get("text"), m.get("intent")) for m in data.intent_examples if m.get("text") and m.get("intent")]
    negatives = [t for t, i in examples if i == "out_of_scope"]
    pairs = load_qa(args.qa)
    print(f"{len(pairs)} Q&A pairs, {len(examples)} intent examples of {len({i for _, i in examples})} intents")
    # What does not depend on the cap is loaded and computed once.
    base = KBConfig(answer_precision=0.9, clarify_precision=0.5)
    embedder = Embedder.load(base.index_config().model)
    split = holdout_split(pairs, base.adapt_config().holdout_fraction, base.seed)
    intents = IntentNeighbours.build(embedder, [(fold_query(t, base.index_config()), i) for t, i in examples], base.intent_gap_examples,
                                     base.seed, base.index_config().batch_size, min_coverage=base.index_config().lexical_min_coverage)
    for cap in args.cap:
        config = dataclasses.replace(base, index={"head_intent_examples_max": cap})
        index_config = config.index_config()
        started = time.perf_counter()
        ranking, tried, decision = fit_ranking_and_decision(pairs, negatives, config, index_config, embedder, split, examples,
                                                            frozen=embedder, intents=intents)
        calibrated = time.perf_counter()
        QAIndex.build(pairs, dataclasses.replace(index_config, answer_text_weight=ranking.answer_text_weight,
                                                 answer_head=ranking.answer_head), embedder=embedder, progress=False, intent_examples=examples)
        built = time.perf_counter()
        print(f"cap {cap}: calibration {calibrated - started:.1f} s, build {built - calibrated:.1f} s; ranking {ranking} "
              f"(held-out top-1 {tried[ranking]:.4f}); answer threshold {decision.high:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
