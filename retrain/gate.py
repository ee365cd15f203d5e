"""Champion vs challenger on the same frozen tests: the held-out NLU set, the `rasa test` story suite and,
when the pipeline has the knowledge base, its answer precision on held-out Q&A.

Both models are evaluated by `rasa test` (the full pipeline, fallback
included, and the dialogue policies), so the gate judges what customers get.
Knowledge-base answers are measured the same way (retrain/kb_probe.py: the
whole archive parses held-out paraphrases and unanswerable questions); a
challenger is refused when its answer precision is under
`gate.kb_precision_floor` or drops by more than its tolerance. Those fixed
questions rarely touch the entries a night adds, so the rows the challenger's
knowledge base adds are judged on their own evidence (retrain/kb_entries.py:
each row's question, held out, must find its own answer); a challenger is
refused when the share that does is under `gate.kb_new_entries_floor`. With that
check on, a champion already under the precision floor does not make every
challenger fail: the challenger's precision is then judged on the tolerance alone.
A champion's figures are cached in its registry entry, keyed by the test
files' fingerprint, so each night evaluates only the challenger.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from kefu.core.archives import rasa_executable
from kefu.core.text import log_tail
from retrain import kb_entries, kb_probe
from retrain.config import GateConfig, RetrainConfig, RetrainError
from retrain.train_candidate import has_retriever

KB_PRECISION = "kb_answer_precision"
KB_NEW_ENTRIES = "kb_new_entry_agreement"
REVIEW_LABELS = "review_label_agreement"
INTENT_METRICS = ("intent_accuracy", "intent_macro_f1")
METRICS = (*INTENT_METRICS, "story_accuracy", "action_accuracy", KB_PRECISION)


def kb_question_files(config: RetrainConfig) -> tuple:
    """(paraphrase files, unanswerable files) that exist; ([], []) when the pipeline has no knowledge base."""
    gate = config.gate
    if not has_retriever(config):
        return [], []
    return ([config.path(p) for p in gate.kb_paraphrases if config.path(p).exists()],
            [config.path(p) for p in gate.kb_unanswerable if config.path(p).exists()])


def tests_fingerprint(config: RetrainConfig) -> str:
    digest = hashlib.sha256()
    for path in (config.gate.heldout_nlu, config.gate.stories):
        if path:
            digest.update(config.path(path).read_bytes())
    for path in [p for files in kb_question_files(config) for p in files]:
        digest.update(b"kb\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def kb_metrics(config: RetrainConfig, archive: Path, out: Path) -> Dict:
    """The archive's knowledge-base answer precision on the gate's held-out questions ({} without a knowledge base)."""
    paraphrases, unanswerable = kb_question_files(config)
    if not paraphrases:
        return {}
    questions = kb_probe.read_questions(paraphrases, unanswerable)
    try:
        found = kb_probe.measure(archive, questions, out, config.gate.timeout_minutes * 60)
    except subprocess.TimeoutExpired as exc:
        raise RetrainError(f"the knowledge-base probe of {archive.name} took longer than {config.gate.timeout_minutes} min") from exc
    except (RuntimeError, ValueError) as exc:
        raise RetrainError(str(exc)) from exc
    return {KB_PRECISION: found["precision"], "kb_answers_given": found["given"], "kb_answers_right": found["right"],
            "kb_questions": found["questions"], "kb_wrong_examples": found["wrong_examples"][:5]}


def new_entry_metrics(config: RetrainConfig, champion: Path, challenger: Path, out: Path) -> Dict:
    """How the knowledge-base rows `challenger` adds to `champion`'s agree with the rest ({} when the check is off or
    the pipeline has no knowledge base; `kb_new_entry_agreement` None when nothing was added)."""
    gate = config.gate
    if gate.kb_new_entries_floor is None or not has_retriever(config):
        return {}
    try:
        found = kb_entries.measure(champion, challenger, out, gate.timeout_minutes * 60, gate.kb_new_entries_top_k)
    except subprocess.TimeoutExpired as exc:
        raise RetrainError(f"the new knowledge-base entries check of {challenger.name} took longer than {gate.timeout_minutes} min") from exc
    except (RuntimeError, ValueError) as exc:
        raise RetrainError(str(exc)) from exc
    if not found:
        return {}
    return {KB_NEW_ENTRIES: found["agreement"], "kb_new_rows": found["new_rows"], "kb_new_rows_agreeing": found["agreeing"],
            "kb_new_rows_first": found["first"], "kb_new_answers": found["new_answers"], "kb_new_entries_top_k": found["top_k"],
            "kb_new_entry_misses": found["misses"][:5]}


def evaluate_archive(config: RetrainConfig, archive: Path, out: Path) -> Dict[str, float]:
    """Runs `rasa test` on `archive` and returns the gate's metrics."""
    gate = config.gate
    rasa = rasa_executable()
    command = [rasa, "test", "--model", str(archive), "--out", str(out), "--endpoints", str(config.path(config.endpoints))]
    heldout = config.path(gate.heldout_nlu)
    if not heldout.exists():
        raise RetrainError(f"gate.heldout_nlu not found: {heldout}")
    command += ["--nlu", str(heldout)]
    if gate.stories:
        stories = config.path(gate.stories)
        if not stories.exists():
            raise RetrainError(f"gate.stories not found: {stories}")
        if not stories.name.startswith("test_"):
            raise RetrainError(f"gate.stories: Rasa evaluates only files named test_*.yml, got {stories.name}")
        command += ["--stories", str(stories)]
    else:
        command = [command[0], "test", "nlu", *command[2:]]
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(out / "rasa_test.log", "wb") as log:
        try:
            code = subprocess.call(command, cwd=config.project, stdout=log, stderr=subprocess.STDOUT,
                                   env=dict(os.environ, HF_HUB_OFFLINE="1"), timeout=gate.timeout_minutes * 60)
        except subprocess.TimeoutExpired as exc:
            raise RetrainError(f"`rasa test` of {archive.name} took longer than {gate.timeout_minutes} min") from exc
    if code != 0:
        tail = log_tail(out / "rasa_test.log")
        raise RetrainError(f"`rasa test` of {archive} failed (exit {code}); see {out / 'rasa_test.log'}:\n{tail}")
    metrics = read_results(out, with_stories=bool(gate.stories)) | kb_metrics(config, archive, out / "kb")
    return metrics | {"seconds": round(time.perf_counter() - started, 1)}


def read_results(out: Path, with_stories: bool = True) -> Dict[str, float]:
    try:
        intent = json.loads((out / "intent_report.json").read_text())
        metrics = {"intent_accuracy": _accuracy(intent),
                   "intent_macro_f1": round(float(intent["macro avg"]["f1-score"]), 4)}
        if with_stories:
            story = json.loads((out / "story_report.json").read_text())
            if not story:
                raise RetrainError(f"`rasa test` evaluated no test stories (see {out / 'rasa_test.log'})")
            metrics["action_accuracy"] = _accuracy(story)
            conv = story.get("conversation_accuracy") or {}
            metrics["story_accuracy"] = round(float(conv.get("accuracy", 1.0)), 4)
    except (OSError, KeyError, ValueError) as exc:
        raise RetrainError(f"`rasa test` results in {out} are incomplete: {exc}") from exc
    return metrics


def _accuracy(report: Dict) -> float:
    """sklearn's report has `accuracy` only when the predictions use no label outside the truth;
    otherwise micro-averaged recall over the true labels is the same figure."""
    if "accuracy" in report:
        return round(float(report["accuracy"]), 4)
    return round(float(report["micro avg"]["recall"]), 4)


def decide(champion: Dict[str, float], challenger: Dict[str, float], gate: GateConfig) -> Tuple[bool, List[str]]:
    """Promote only if no metric drops by more than its tolerance, the knowledge-base rows the challenger adds agree
    with the rest (`gate.kb_new_entries_floor`) and its answer precision is not under the floor (unless the champion's
    is under it too and the new rows were checked: then the tolerance alone); the reasons name every metric."""
    ok, reasons = True, []
    for metric in METRICS:
        if champion.get(metric) is None or challenger.get(metric) is None:
            continue
        before, after = champion[metric], challenger[metric]
        allowed = float(gate.tolerance.get(metric, 0.0))
        worse = after < before - allowed - 1e-9
        ok = ok and not worse
        reasons.append(f"{metric} {before:.4f} -> {after:.4f} ({after - before:+.4f}, tolerance {allowed})"
                       + _kb_counts(metric, champion, challenger) + (" WORSE" if worse else ""))
    entries_checked = gate.kb_new_entries_floor is not None and KB_NEW_ENTRIES in challenger
    if entries_checked:
        entries_ok, line = _new_entries(challenger, gate)
        ok = ok and entries_ok
        reasons.append(line)
    precision = challenger.get(KB_PRECISION)
    if precision is not None and gate.kb_precision_floor is not None and precision < gate.kb_precision_floor - 1e-9:
        before = champion.get(KB_PRECISION)
        if entries_checked and before is not None and before < gate.kb_precision_floor - 1e-9:
            # Refusing here would refuse every challenger of a poor champion, also one that adds right entries; the
            # entries it adds were judged on their own above, the fixed questions on the tolerance.
            reasons.append(f"{KB_PRECISION} {precision:.4f} is under the floor {gate.kb_precision_floor}, as the champion's "
                           f"{before:.4f} is: judged on the tolerance alone (the new entries on {KB_NEW_ENTRIES})")
            return ok, reasons
        ok = False
        wrong = (challenger.get("kb_wrong_examples") or [{}])[0]
        example = (f"; e.g. {wrong.get('question')!r} got {str(wrong.get('got'))[:80]!r}" if wrong.get("question") else "")
        reasons.append(f"{KB_PRECISION} {precision:.4f} is under the floor {gate.kb_precision_floor} "
                       f"(gate.kb_precision_floor): knowledge-base answers are wrong too often{example} WORSE")
    return ok, reasons


def only_intents_worse(reasons: List[str]) -> bool:
    """Whether the intent classifier's metrics are the only ones `decide` found worse (the night's knowledge base
    may still ship with the champion's classifier: retrain/pipeline.py)."""
    worse = [line for line in reasons if line.endswith(" WORSE")]
    return bool(worse) and all(line.split(" ", 1)[0] in INTENT_METRICS for line in worse)


def _new_entries(challenger: Dict, gate: GateConfig) -> Tuple[bool, str]:
    share, rows = challenger.get(KB_NEW_ENTRIES), challenger.get("kb_new_rows") or 0
    if share is None:
        return True, f"{KB_NEW_ENTRIES}: the challenger adds no knowledge-base rows"
    top_k = challenger.get("kb_new_entries_top_k", gate.kb_new_entries_top_k)
    counts = (f"{challenger.get('kb_new_rows_agreeing')}/{rows} new rows (of {challenger.get('kb_new_answers')} answers) "
              f"find their own answer in the top {top_k} with their question held out, {challenger.get('kb_new_rows_first')} first")
    if share >= gate.kb_new_entries_floor - 1e-9:
        return True, f"{KB_NEW_ENTRIES} {share:.4f} (floor {gate.kb_new_entries_floor}): {counts}"
    miss = (challenger.get("kb_new_entry_misses") or [{}])[0]
    example = (f"; e.g. {miss['question']!r} filed under {str(miss.get('answer'))[:60]!r} finds {str(miss.get('got'))[:60]!r}"
               if miss.get("question") else "")
    return False, (f"{KB_NEW_ENTRIES} {share:.4f} is under the floor {gate.kb_new_entries_floor} (gate.kb_new_entries_floor): "
                   f"{counts}: accepted answers filed under questions they do not answer{example} WORSE")


def _kb_counts(metric: str, champion: Dict, challenger: Dict) -> str:
    if metric != KB_PRECISION:
        return ""
    return (f" [right/given: {champion.get('kb_answers_right')}/{champion.get('kb_answers_given')} -> "
            f"{challenger.get('kb_answers_right')}/{challenger.get('kb_answers_given')} of {challenger.get('kb_questions')} questions]")


def champion_metrics(cached: Optional[Dict], fingerprint: str) -> Optional[Dict[str, float]]:
    if cached and cached.get("tests_fingerprint") == fingerprint:
        return cached.get("metrics")
    return None


def review_labels(found: Dict, gate: GateConfig) -> Tuple[bool, str]:
    """(whether the reviewed labels pass, the report line) for retrain/label_check.py's `agreement` result."""
    share, judged = found.get("agreement"), found.get("judged", 0)
    counts = (f"{found.get('agreeing')}/{judged} reviewed labels are among the top {found.get('top_k')} intents the rest of "
              f"the training data gives their text ({found.get('first')} first"
              + (f"; {found['unjudged']} could not be judged" if found.get("unjudged") else "") + ")")
    if share is None:
        return True, f"{REVIEW_LABELS}: no reviewed label could be judged"
    if judged < gate.review_labels_min:
        return True, f"{REVIEW_LABELS} {share:.4f}: {counts}; fewer than gate.review_labels_min ({gate.review_labels_min}), not gating"
    if share >= gate.review_labels_floor - 1e-9:
        return True, f"{REVIEW_LABELS} {share:.4f} (floor {gate.review_labels_floor}): {counts}"
    miss = (found.get("misses") or [{}])[0]
    example = f"; e.g. {miss['text']!r} labelled {miss['label']!r} reads as {miss['got']!r}" if miss.get("text") else ""
    return False, (f"{REVIEW_LABELS} {share:.4f} is under the floor {gate.review_labels_floor} (gate.review_labels_floor): "
                   f"{counts}: relabel them in the review queue{example} WORSE")
