"""`kefu kb ...`: build, update, search and evaluate the Q&A knowledge base from the shell.

Imports name the modules rather than the `retrieval` package: an editable
install made before `retrieval/__init__.py` existed maps `retrieval` to a
namespace package, whose names are then missing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

# Merges listed one by one on stdout; the rest are counted.
SHOW_MERGES = 10


def add_parser(subparsers) -> None:
    kb = subparsers.add_parser("kb", help="build and search the knowledge base of historical Q&A")
    sub = kb.add_subparsers(dest="kb_command", required=True)

    p = sub.add_parser("build", help="build an index from Q&A files (CSV, JSONL, Rasa retrieval intents)")
    p.add_argument("--qa", nargs="+", required=True, metavar="PATH", help="Q&A files or directories")
    p.add_argument("--out", required=True, metavar="DIR", help="index directory to write")
    p.add_argument("--model", default=None, metavar="NAME_OR_PATH", help="embedding model (default: packaged all-MiniLM-L6-v2)")
    p.add_argument("--index-kind", choices=["auto", "flat", "hnsw", "ivf"], help="default auto: exact up to 20,000 entries, IVF above")
    p.add_argument("--config", metavar="JSON", help="index options as JSON, e.g. '{\"flat_max\": 50000}'")
    p.add_argument("--adapt", action="store_true", help="fine-tune the embedding model on this Q&A first (kept only if it retrieves better)")
    p.add_argument("--adapt-config", metavar="JSON", help="adaptation options as JSON, e.g. '{\"epochs\": 2, \"time_budget_minutes\": 5}'")
    p.set_defaults(func=_build)

    p = sub.add_parser("add", help="add Q&A to an index without rebuilding it (duplicates are merged)")
    p.add_argument("--index", required=True, metavar="DIR")
    p.add_argument("--qa", nargs="+", required=True, metavar="PATH")
    p.add_argument("--model", default=None, metavar="NAME_OR_PATH", help="where the index's model is now, if it moved")
    p.set_defaults(func=_add)

    p = sub.add_parser("delete", help="remove entries by id (every question filed under it)")
    p.add_argument("--index", required=True, metavar="DIR")
    p.add_argument("--id", nargs="+", required=True, dest="ids", metavar="ID")
    p.add_argument("--model", default=None, metavar="NAME_OR_PATH", help="where the index's model is now, if it moved")
    p.set_defaults(func=_delete)

    p = sub.add_parser("search", help="print the best answers for questions given as arguments")
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
    p.add_argument("--latency-samples", type=int, default=200, metavar="N", help="single queries timed (default 200; 0 skips)")
    p.add_argument("--model", default=None, metavar="NAME_OR_PATH", help="where the index's model is now, if it moved")
    p.set_defaults(func=_eval)


def _build(args) -> int:
    from retrieval.adapt import AdaptConfig, adapt
    from retrieval.config import IndexConfig
    from retrieval.embedder import Embedder
    from retrieval.index import build
    from retrieval.loaders import load_qa

    started = time.perf_counter()
    options = _json_option(args.config, "--config")
    if args.model:
        options["model"] = args.model
    if args.index_kind:
        options["kind"] = args.index_kind
    config = IndexConfig.from_dict(options)
    pairs = load_qa(args.qa)
    print(f"Loaded {len(pairs)} Q&A pairs from {', '.join(args.qa)}")
    embedder = Embedder.load(config.model, config.device)
    if args.adapt:
        adapt_options = _json_option(args.adapt_config, "--adapt-config")
        result = adapt(pairs, AdaptConfig.from_dict(dict(adapt_options, base_model=config.model)), frozen=embedder)
        print(f"Adaptation: {result.message}")
        embedder = result.embedder
    index = build(pairs, config, embedder=embedder)
    if args.adapt:
        index.stats["adaptation"] = result.to_dict()
    _print_merges(index.merges)
    index.save(args.out)
    print(f"Built {index.kind} index of {index.describe()} ({embedder.dimension}-d, model {embedder.name}, "
          f"{index.stats['device']}) in {time.perf_counter() - started:.1f} s -> {args.out}")
    return 0


def _add(args) -> int:
    from retrieval.index import QAIndex
    from retrieval.loaders import load_qa

    started = time.perf_counter()
    index = QAIndex.load(args.index, model=args.model)
    pairs = load_qa(args.qa)
    result = index.add(pairs)
    _print_merges(result.merges)
    index.save(args.index)
    print(f"Added {result.added} of {len(pairs)} pairs ({len(result.merges)} merged, {result.replaced} older answers replaced); "
          f"{index.describe()} ({index.kind}) in {time.perf_counter() - started:.1f} s -> {args.index}")
    return 0


def _delete(args) -> int:
    from retrieval.index import QAIndex

    index = QAIndex.load(args.index, model=args.model)
    removed = index.delete(args.ids)
    index.save(args.index)
    print(f"Deleted {removed} entries filed under {', '.join(args.ids)}; {index.describe()} left -> {args.index}")
    return 0


def _search(args) -> int:
    from retrieval.index import QAIndex

    index = QAIndex.load(args.index, model=args.model)
    for result in index.search(args.question, k=args.k):
        print(f"? {result.query}")
        for rank, answer in enumerate(result.answers, start=1):
            pair = answer.pair
            print(f"{rank}. {answer.score:.3f}  Q: {pair.question}")
            print(f"   A: {answer.answer}")
            print(f"   source: {pair.source or '-'} (id {pair.id})")
    return 0


def _eval(args) -> int:
    from retrieval.evaluate import evaluate
    from retrieval.index import QAIndex
    from retrieval.loaders import load_qa

    index = QAIndex.load(args.index, model=args.model)
    if args.answer_bonus is not None:
        index.config.answer_bonus = args.answer_bonus
    report = evaluate(index, load_qa(args.qa), latency_samples=args.latency_samples)
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    latency = f", latency p50 {report['latency_ms_p50']} ms / p99 {report['latency_ms_p99']} ms" if "latency_ms_p50" in report else ""
    print(f"{report['queries']} questions: top-1 {report['top1_accuracy']:.4f}, top-5 {report['top5_accuracy']:.4f}, "
          f"MRR@{report['mrr_cutoff']} {report['mrr']:.4f}{latency}")
    if report["answers_not_in_index"]:
        print(f"  {report['answers_not_in_index']} test questions expect an answer the index does not have")
    return 0


def _json_option(text, flag: str) -> dict:
    from retrieval.errors import RetrievalError

    try:
        options = json.loads(text) if text else {}
    except json.JSONDecodeError as exc:
        raise RetrievalError(f"{flag} is not valid JSON: {exc}") from None
    if not isinstance(options, dict):
        raise RetrievalError(f"{flag} must be a JSON object, e.g. '{{\"kind\": \"flat\"}}'")
    return options


def _print_merges(merges) -> None:
    if not merges:
        return
    counts = {}
    for merge in merges:
        counts[merge.reason] = counts.get(merge.reason, 0) + 1
    print(f"Merged {len(merges)} duplicates ({', '.join(f'{n} {reason}' for reason, n in counts.items())}):")
    for merge in merges[:SHOW_MERGES]:
        print(f"  {merge.describe()}")
    if len(merges) > SHOW_MERGES:
        print(f"  ... and {len(merges) - SHOW_MERGES} more")
