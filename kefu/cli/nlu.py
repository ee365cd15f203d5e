"""`kefu nlu ...`: train, evaluate and try the intent classifier from the shell.

Importing `finetune` is light: torch and transformers load when a command
trains or loads a model, so `kefu --help` and the other commands start without them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from finetune import IntentModel, TrainConfig, evaluate, load_nlu_examples, train
from kefu.core import atomic


def add_parser(subparsers) -> None:
    nlu = subparsers.add_parser("nlu", help="train and evaluate the intent classifier")
    sub = nlu.add_subparsers(dest="nlu_command", required=True)

    p = sub.add_parser("train", help="fine-tune a classifier on Rasa NLU data")
    p.add_argument("--nlu", nargs="+", required=True, metavar="PATH", help="Rasa NLU files or directories")
    p.add_argument("--out", required=True, metavar="DIR", help="model directory to write")
    p.add_argument("--base-model", default=None, help="HF name or local path (default: packaged all-MiniLM-L6-v2)")
    p.add_argument("--config", metavar="JSON", help="training options as JSON, e.g. '{\"seed\": 7}'")
    p.add_argument("--seed", type=int)
    p.add_argument("--epochs", type=int)
    p.set_defaults(func=_train)

    p = sub.add_parser("eval", help="evaluate a model on held-out NLU data")
    p.add_argument("--model", required=True, metavar="DIR")
    p.add_argument("--nlu", nargs="+", required=True, metavar="PATH")
    p.add_argument("--report", metavar="FILE.json", help="write the full report here")
    p.add_argument("--fallback-threshold", type=float, default=0.5, help="as FallbackClassifier's threshold (config.yml)")
    p.set_defaults(func=_eval)

    p = sub.add_parser("predict", help="classify messages given as arguments")
    p.add_argument("--model", required=True, metavar="DIR")
    p.add_argument("text", nargs="+")
    p.set_defaults(func=_predict)


def _train(args) -> int:
    options = json.loads(args.config) if args.config else {}
    for key in ("seed", "epochs"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    if args.base_model:
        options["base_model"] = args.base_model
    config = TrainConfig.from_dict(options)
    examples = load_nlu_examples(args.nlu)
    print(f"Training on {len(examples)} examples, {len({e.intent for e in examples})} intents ({config.base_model})", file=sys.stderr)
    model = train(examples, config)
    model.save(args.out)
    m = model.metrics
    print(
        f"Saved {args.out}: {m['epochs_run']} epochs ({m['steps']} steps) in {m['train_seconds']} s on {m['device']}, "
        f"held-out accuracy {m.get('val_accuracy', float('nan')):.3f}"
    )
    return 0


def _eval(args) -> int:
    model = IntentModel.load(args.model)
    report = evaluate(model, load_nlu_examples(args.nlu), fallback_threshold=args.fallback_threshold)
    if args.report:
        atomic.write_json(Path(args.report), report)
    print(f"{report['examples']} messages: accuracy {report['accuracy']:.4f}, macro F1 {report['macro_f1']:.4f}, "
          f"latency p50 {report['latency_ms_p50']} ms / p99 {report['latency_ms_p99']} ms")
    fb = report.get("fallback", {})
    if "out_of_scope_recall" in fb:
        print(f"with fallback < {fb['threshold']}: in-scope accuracy {fb['in_scope_accuracy']:.4f}, out-of-scope caught {fb['out_of_scope_recall']:.4f}")
    for pair in report["confused_pairs"][:5]:
        print(f"  confused {pair['true']} -> {pair['predicted']}: {pair['count']}")
    return 0


def _predict(args) -> int:
    model = IntentModel.load(args.model)
    for text, p in zip(args.text, model.predict(args.text)):
        print(json.dumps({"text": text, "intent": p.intent, "confidence": round(p.confidence, 4),
                          "ranking": [[n, round(c, 4)] for n, c in p.ranking[:3]]}, ensure_ascii=False))
    return 0
