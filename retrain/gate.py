"""Champion vs challenger on the same frozen tests: the held-out NLU set, the `rasa test` story suite and,
when the pipeline has the knowledge base, its answer precision on held-out Q&A.

Both models are evaluated by `rasa test` (the full pipeline, fallback
included, and the dialogue policies), so the gate judges what customers get.
Knowledge-base answers are measured the same way (retrain/kb_probe.py: the
whole archive parses held-out paraphrases and unanswerable questions); a
challenger is refused when its answer precision is under
`gate.kb_precision_floor` or drops by more than its tolerance.
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
from retrain import kb_probe
from retrain.config import GateConfig, RetrainConfig, RetrainError
from retrain.train_candidate import has_retriever

KB_PRECISION = "kb_answer_precision"
METRICS = ("intent_accuracy", "intent_macro_f1", "story_accuracy", "action_accuracy", KB_PRECISION)


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
        tail = (out / "rasa_test.log").read_text(errors="replace")[-1500:]
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
    """Promote only if no metric drops by more than its tolerance and the challenger's knowledge-base answer
    precision is not under the floor; the reasons name every metric."""
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
    precision = challenger.get(KB_PRECISION)
    if precision is not None and gate.kb_precision_floor is not None and precision < gate.kb_precision_floor - 1e-9:
        ok = False
        wrong = (challenger.get("kb_wrong_examples") or [{}])[0]
        example = (f"; e.g. {wrong.get('question')!r} got {str(wrong.get('got'))[:80]!r}" if wrong.get("question") else "")
        reasons.append(f"{KB_PRECISION} {precision:.4f} is under the floor {gate.kb_precision_floor} "
                       f"(gate.kb_precision_floor): knowledge-base answers are wrong too often{example} WORSE")
    return ok, reasons


def _kb_counts(metric: str, champion: Dict, challenger: Dict) -> str:
    if metric != KB_PRECISION:
        return ""
    return (f" [right/given: {champion.get('kb_answers_right')}/{champion.get('kb_answers_given')} -> "
            f"{challenger.get('kb_answers_right')}/{challenger.get('kb_answers_given')} of {challenger.get('kb_questions')} questions]")


def champion_metrics(cached: Optional[Dict], fingerprint: str) -> Optional[Dict[str, float]]:
    if cached and cached.get("tests_fingerprint") == fingerprint:
        return cached.get("metrics")
    return None
