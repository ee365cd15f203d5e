"""`kefu retrain`: the nightly run, promote, rollback, status, and the redaction check (code: retrain/)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from retrain.config import RetrainConfig, RetrainError
from retrain.lock import RetrainLock
from retrain.registry import Registry
from retrain.report import status, summary


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("retrain", help="learn from new transcripts; promote the new model only if it is not worse")
    p.add_argument("--config", default="retrain.yml", help="retrain config (default: retrain.yml)")
    p.add_argument("--dry-run", action="store_true", help="read and score new transcripts, say what would be trained; change nothing")
    sub = p.add_subparsers(dest="retrain_command")
    sub.add_parser("rollback", help="serve the previous model again")
    promote = sub.add_parser("promote", help="make a model archive (e.g. from `rasa train`) the champion, kept in the registry; "
                                             "refused if its domain needs actions the action server does not serve")
    promote.add_argument("archive", help="a Rasa model archive (.tar.gz)")
    sub.add_parser("status", help="champion, kept versions with their metrics, last run")
    pii = sub.add_parser("pii-check", help="recall and precision of the redaction on a labelled sample")
    pii.add_argument("--sample", default="tests/data/pii_sample.yml")
    p.set_defaults(func=_main)


def _main(args) -> int:
    if args.retrain_command == "pii-check":
        return _pii_check(args.sample)
    config = RetrainConfig.load(args.config)
    if args.retrain_command == "rollback":
        return _rollback(config)
    if args.retrain_command == "promote":
        return _promote(config, Path(args.archive))
    if args.retrain_command == "status":
        print(json.dumps(status(config), indent=2, ensure_ascii=False))
        return 0
    # The run loads the intent model, the embedder and Rasa's data loaders: imported only here.
    from retrain import pipeline  # local: the pipeline loads torch and sentence-transformers; status/rollback start without them

    try:
        report = pipeline.run(config, dry_run=args.dry_run)
    except RetrainError as exc:
        raise RetrainError(f"retrain failed: {exc}") from exc
    print(summary(report))
    return 0


def _rollback(config: RetrainConfig) -> int:
    with RetrainLock(config.state / "retrain.lock"):
        registry = Registry(config)
        version = registry.rollback()
        server = registry.notify_server()
    print(f"rolled back: {version} is the champion again; server: {'reloaded' if server.get('notified') else server.get('reason')}")
    return 0


def _promote(config: RetrainConfig, archive: Path) -> int:
    if not archive.is_file():
        raise RetrainError(f"model archive {archive} not found")
    with RetrainLock(config.state / "retrain.lock"):
        registry = Registry(config)
        registry.clean_temporaries()
        previous = registry.champion()["version"]
        version = registry.promote(archive, {"origin": str(archive.resolve()), "promoted_by": "kefu retrain promote",
                                             "previous": previous})
        server = registry.notify_server()
    print(f"promoted {archive} as {version} (previous champion {previous}); "
          f"server: {'reloaded' if server.get('notified') else server.get('reason')}")
    return 0


def _pii_check(sample: str) -> int:
    # scrubadub (and nltk under it) take most of a second to import: only for this command.
    from retrain.redact import evaluate_sample  # local: scrubadub + nltk take 0.65 s to import

    if not Path(sample).exists():
        print(f"error: sample not found: {sample}", file=sys.stderr)
        return 2
    report = evaluate_sample(sample)
    missed = report.pop("_missed")
    print(f"{'type':<14}{'labelled':>9}{'recall':>8}{'precision':>10}{'false +':>8}")
    for kind, r in report.items():
        fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        print(f"{kind:<14}{r['labelled']:>9}{fmt(r['recall']):>8}{fmt(r['precision']):>10}{r['false_positives']:>8}")
    for line in missed:
        print(f"  missed {line}")
    return 0
