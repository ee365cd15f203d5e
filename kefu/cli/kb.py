"""`kefu kb ...`: build, update, search and evaluate the knowledge base of historical Q&A from the shell.

`kb build` makes what `rasa train` puts in the model: `retrieval.KnowledgeBase`
(index + fitted answer decision) with the same `KBConfig` defaults; with
`--rasa-config config.yml` it takes the FaissAnswerRetriever options from the
bot's own pipeline, so the shell builds exactly what the bot serves.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Dict, Optional

import yaml

from kefu.core import atomic
from kefu.core.errors import OptionsError
from retrieval import KBConfig, KnowledgeBase, ModelLoadError, QAIndex, RetrievalError, evaluate, load_intent_examples, load_qa

# Merges listed one by one on stdout; the rest are counted.
SHOW_MERGES = 10
COMPONENT = "FaissAnswerRetriever"


def add_parser(subparsers) -> None:
    kb = subparsers.add_parser("kb", help="build and search the knowledge base of historical Q&A")
    sub = kb.add_subparsers(dest="kb_command", required=True)

    p = sub.add_parser("build", help="build the knowledge base (index + answer decision) from Q&A files")
    p.add_argument("--qa", nargs="+", required=True, metavar="PATH", help="Q&A files or directories (CSV, JSONL, Rasa retrieval intents)")
    p.add_argument("--out", required=True, metavar="DIR", help="directory to write")
    p.add_argument("--rasa-config", metavar="CONFIG_YML", help=f"take the {COMPONENT} options of this Rasa config (what `rasa train` uses)")
    p.add_argument("--nlu", nargs="+", metavar="PATH", help="Rasa NLU data whose out-of-scope examples calibrate the decision as negatives")
    p.add_argument("--model", default=None, metavar="NAME_OR_PATH", help="embedding model (default: packaged all-MiniLM-L6-v2)")
    p.add_argument("--index-kind", choices=["auto", "flat", "hnsw", "ivf"], help="default auto: exact up to 20,000 entries, IVF above")
    p.add_argument("--config", metavar="JSON", help="index options as JSON, e.g. '{\"flat_max\": 50000}'")
    p.add_argument("--adapt", action=argparse.BooleanOptionalAction, default=None,
                   help="fine-tune the embedding model on this Q&A first, kept only if it retrieves better "
                        "(default: on, at most 5 minutes, as `rasa train` does)")
    p.add_argument("--adapt-config", metavar="JSON", help="adaptation options as JSON, e.g. '{\"epochs\": 2, \"time_budget_minutes\": 5}'")
    p.set_defaults(func=_build)

    p = sub.add_parser("add", help="add Q&A to an index without rebuilding it (duplicates are merged; the decision is kept)")
    p.add_argument("--index", required=True, metavar="DIR")
    p.add_argument("--qa", nargs="+", required=True, metavar="PATH")
    p.add_argument("--model", default=None, metavar="NAME_OR_PATH", help="where the index's model is now, if it moved")
    p.set_defaults(func=_add)

    p = sub.add_parser("delete", help="remove entries by id (every question filed under it)")
    p.add_argument("--index", required=True, metavar="DIR")
    p.add_argument("--id", nargs="+", required=True, dest="ids", metavar="ID")
    p.add_argument("--model", default=None, metavar="NAME_OR_PATH", help="where the index's model is now, if it moved")
    p.set_defaults(func=_delete)

    p = sub.add_parser("search", help="print the best answers for questions given as arguments, and what the bot would do")
    p.add_argument("--index", required=True, metavar="DIR")
    p.add_argument("-k", type=int, default=5, help="answers per question (default 5)")
    p.add_argument("--model", default=None, metavar="NAME_OR_PATH", help="where the index's model is now, if it moved")
    p.add_argument("question", nargs="+")
    p.set_defaults(func=_search)

    p = sub.add_parser("eval", help="answer-level accuracy, MRR and latency on held-out questions")
    p.add_argument("--index", required=True, metavar="DIR")
    p.add_argument("--qa", nargs="+", required=True, metavar="TEST_PATH", help="test questions with the answers they should get")
    p.add_argument("--report", metavar="FILE.json", help="write the full report here")
    p.add_argument("--answer-bonus", type=float, help="try another answer_bonus (see IndexConfig) for this evaluation")
    p.add_argument("--answer-text-weight", type=float, help="try another answer_text_weight (see IndexConfig) for this evaluation")
    p.add_argument("--answer-head", type=float, help="try another answer_head share (see IndexConfig; the index must have the head)")
    p.add_argument("--latency-samples", type=int, default=200, metavar="N", help="single queries timed (default 200; 0 skips)")
    p.add_argument("--model", default=None, metavar="NAME_OR_PATH", help="where the index's model is now, if it moved")
    p.set_defaults(func=_eval)


def _build(args) -> int:
    started = time.perf_counter()
    options = _component_options(args.rasa_config) if args.rasa_config else {}
    index_options = {**(options.get("index") or {}), **_json_option(args.config, "--config")}
    if args.model:
        index_options["model"] = args.model
    if args.index_kind:
        index_options["kind"] = args.index_kind
    options["index"] = index_options
    if args.adapt is not None:
        options["adapt"] = args.adapt
    if args.adapt_config:
        options["adapt_options"] = {**(options.get("adapt_options") or {}), **_json_option(args.adapt_config, "--adapt-config")}
    config = KBConfig.from_dict(options)
    pairs = load_qa(args.qa)
    examples = load_intent_examples(args.nlu) if args.nlu else []
    negatives = [text for text, intent in examples if intent in set(config.negative_intents)]
    print(f"Loaded {len(pairs)} Q&A pairs from {', '.join(args.qa)}" + (f" and {len(examples)} intent examples "
                                                                        f"({len(negatives)} negative messages)" if args.nlu else ""))
    kb = KnowledgeBase.build(pairs, config, negatives, intent_examples=examples)
    index = kb.index
    if "adaptation" in index.stats:
        print(f"Adaptation: {index.stats['adaptation']['message']}")
    if "ranking" in index.stats:
        ranking = index.stats["ranking"]
        chosen = ranking["chosen"]
        print(f"Ranking: answer-text weight {chosen['answer_text_weight']:g}, answer head {chosen['answer_head']:g}, held-out top-1 "
              f"{chosen['top1']:.3f} (tried text weight/head: " + ", ".join(
                  f"{t['answer_text_weight']:g}/{t['answer_head']:g} {t['top1']:.3f}" for t in ranking["tried"]) + ")")
    _print_merges(index.merges)
    kb.save(args.out)
    print(f"Built {index.kind} index of {index.describe()} ({index.embedder.dimension}-d, model {index.embedder.name}, "
          f"{index.stats['device']}) in {time.perf_counter() - started:.1f} s -> {args.out}")
    if not kb.decision.stats.get("fitted"):
        print("Decision: too little data to calibrate (no answer has two questions); conservative defaults")
    for label, model in (("Decision", kb.decision), ("Second view", kb.decision.for_view(True) if kb.decision.second_view else None)):
        stats = model.stats if model is not None else {}
        if stats.get("fitted"):
            print(f"{label}: answer at p >= {model.high:.3f} (held-out precision {stats['answer_precision']:.3f}, "
                  f"{stats['answerable_share_answered']:.1%} of answerable questions answered), ask to rephrase at p >= {model.low:.3f}")
    if kb.decision.intent_gap_cut is not None:
        print(f"Intent examples: {len(kb.intents)} embedded; a message the classifier did not leave to the knowledge base, nearer "
              f"to them than to its best answer by more than {kb.decision.intent_gap_cut:.3f}, keeps its intent (no answer, no asking)")
    return 0


def _add(args) -> int:
    started = time.perf_counter()
    stored = QAIndex.read(args.index, model=args.model)
    index = QAIndex.from_stored(stored)
    pairs = load_qa(args.qa)
    result = index.add(pairs)
    _print_merges(result.merges)
    index.save(args.index, extras=stored.extras)
    print(f"Added {result.added} of {len(pairs)} pairs ({len(result.merges)} merged, {result.replaced} older answers replaced); "
          f"{index.describe()} ({index.kind}) in {time.perf_counter() - started:.1f} s -> {args.index}")
    return 0


def _delete(args) -> int:
    stored = QAIndex.read(args.index, model=args.model)
    index = QAIndex.from_stored(stored)
    removed = index.delete(args.ids)
    index.save(args.index, extras=stored.extras)
    print(f"Deleted {removed} entries filed under {', '.join(args.ids)}; {index.describe()} left -> {args.index}")
    return 0


def _search(args) -> int:
    try:
        kb: Optional[KnowledgeBase] = KnowledgeBase.load(args.index, model=args.model)
        index = kb.index
    except ModelLoadError as exc:
        if "without a decision" not in str(exc):
            raise
        kb, index = None, QAIndex.load(args.index, model=args.model)
    for result in index.search(args.question, k=args.k):
        print(f"? {result.query}")
        for rank, answer in enumerate(result.answers, start=1):
            pair = answer.pair
            print(f"{rank}. {answer.score:.3f}  Q: {pair.question}")
            print(f"   A: {answer.answer}")
            print(f"   source: {pair.source or '-'} (id {pair.id})")
        if kb is not None:
            decided = kb.decide(result, None, 0.0)
            print(f"=> kb_match {decided.match} (p_answer {decided.p_answer:.3f}, with no scripted intent)")
    return 0


def _eval(args) -> int:
    index = QAIndex.load(args.index, model=args.model)
    if args.answer_bonus is not None:
        index.config.answer_bonus = args.answer_bonus
    if args.answer_text_weight is not None:
        index.config.answer_text_weight = args.answer_text_weight
    if args.answer_head is not None:
        if args.answer_head > 0 and index.joint is None:
            raise RetrievalError(f"{args.index} has no answer head (its build chose a share of 0); rebuild it to try one")
        index.config.answer_head = args.answer_head
    index.config.validate()
    report = evaluate(index, load_qa(args.qa), latency_samples=args.latency_samples)
    if args.report:
        atomic.write_json(Path(args.report), report)
    latency = f", latency p50 {report['latency_ms_p50']} ms / p99 {report['latency_ms_p99']} ms" if "latency_ms_p50" in report else ""
    print(f"{report['queries']} questions: top-1 {report['top1_accuracy']:.4f}, top-5 {report['top5_accuracy']:.4f}, "
          f"MRR@{report['mrr_cutoff']} {report['mrr']:.4f}{latency}")
    if report["answers_not_in_index"]:
        print(f"  {report['answers_not_in_index']} test questions expect an answer the index does not have")
    return 0


def _component_options(path: str) -> Dict[str, Any]:
    """The FaissAnswerRetriever entry of a Rasa config.yml, without `name` and `qa_files`."""
    try:
        config = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise OptionsError(f"--rasa-config {path}: {exc}") from None
    for step in config.get("pipeline") or []:
        if isinstance(step, dict) and str(step.get("name", "")).split(".")[-1] == COMPONENT:
            return {k: v for k, v in step.items() if k not in ("name", "qa_files")}
    raise OptionsError(f"--rasa-config {path}: no {COMPONENT} in its pipeline")


def _json_option(text, flag: str) -> dict:
    try:
        options = json.loads(text) if text else {}
    except json.JSONDecodeError as exc:
        raise OptionsError(f"{flag} is not valid JSON: {exc}") from None
    if not isinstance(options, dict):
        raise OptionsError(f"{flag} must be a JSON object, e.g. '{{\"kind\": \"flat\"}}'")
    return options


def _print_merges(merges) -> None:
    if not merges:
        return
    counts: Dict[str, int] = {}
    for merge in merges:
        counts[merge.reason] = counts.get(merge.reason, 0) + 1
    print(f"Merged {len(merges)} duplicates ({', '.join(f'{n} {reason}' for reason, n in counts.items())}):")
    for merge in merges[:SHOW_MERGES]:
        print(f"  {merge.describe()}")
    if len(merges) > SHOW_MERGES:
        print(f"  ... and {len(merges) - SHOW_MERGES} more")
