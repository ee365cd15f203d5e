"""`retrain.yml`: what the nightly retrain reads, learns from, and how it decides.

Every section maps onto an option class (kefu.core.options.Options), validated
when built; unknown keys are errors (a typo must not silently switch a signal
off). Relative paths are relative to `project`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Optional, Type

import yaml

from kefu.core.errors import KefuError
from kefu.core.options import Options
from kefu.core.payloads import AGENT_HUMAN, AGENT_KEY, NLU_FALLBACK, OUT_OF_SCOPE


class RetrainError(KefuError):
    """A retrain that cannot run or failed; the message says why and what to do."""


@dataclass
class RetrainOptions(Options):
    """Base of the retrain.yml sections: their errors are RetrainErrors."""

    error: ClassVar[Type[Exception]] = RetrainError


def _section(values: Dict[str, Any], key: str, kind: Type[RetrainOptions]) -> RetrainOptions:
    """Pops and builds the nested section `key` (missing or empty: its defaults)."""
    section = values.pop(key, None)
    if section is not None and not isinstance(section, dict):
        raise RetrainError(f"{kind.what} must be a mapping of options, got {section!r}")
    return kind.from_dict(section)


@dataclass
class IntakeConfig(RetrainOptions):
    what: ClassVar[str] = "intake"

    tracker_store: bool = True          # read the store in `endpoints` (SQLite or PostgreSQL)
    export_files: List[str] = field(default_factory=list)   # tracker JSON / `rasa export` JSONL files or globs


@dataclass
class ReviewConfig(RetrainOptions):
    what: ClassVar[str] = "signals.review"

    enabled: bool = True
    file: str = "var/retrain/review.csv"
    confidence_below: float = 0.7       # messages the bot was less sure about are queued
    max_queue: int = 300                # open rows kept, highest priority first

    def validate(self) -> None:
        self.require(0 < self.confidence_below <= 1 and self.max_queue >= 1,
                     "review.confidence_below must be in (0, 1] and max_queue positive")


@dataclass
class PseudoLabelConfig(RetrainOptions):
    what: ClassVar[str] = "signals.pseudo_labels"

    enabled: bool = True
    threshold: float = 0.95             # champion confidence needed (and agreement with the live parse)
    cap_per_intent: int = 20            # new pseudo-labels per intent per run
    max_total_per_intent: int = 100     # pseudo-labels per intent kept across runs
    # Kept only when the frozen multilingual view, fitted on the project's examples, also reads the text as that
    # intent first (retrain/label_check.py, top 1): the classifier's own confidence vouches for its own mistakes.
    second_view: bool = True

    def validate(self) -> None:
        self.require(0 < self.threshold <= 1 and self.cap_per_intent >= 0 and self.max_total_per_intent >= 0,
                     "pseudo_labels: threshold in (0, 1], caps >= 0")


@dataclass
class HandoffQAConfig(RetrainOptions):
    what: ClassVar[str] = "signals.handoff_qa"

    enabled: bool = True
    # A human agent's message is a `bot` event whose metadata has this key/value.
    agent_key: str = AGENT_KEY
    agent_value: str = AGENT_HUMAN
    min_answer_chars: int = 20
    # Customer messages of these (live) intents are not questions worth keeping.
    skip_intents: List[str] = field(default_factory=lambda: ["greet", "goodbye", "thanks", "affirm", "deny", "human_handoff"])
    near_duplicate_threshold: float = 0.95

    def validate(self) -> None:
        self.require(bool(self.agent_key), "handoff_qa.agent_key must not be empty")


@dataclass
class NewIntentConfig(RetrainOptions):
    what: ClassVar[str] = "signals.new_intents"

    enabled: bool = True
    # Messages that fit no intent: these live intents, or confidence below the threshold.
    fallback_intents: List[str] = field(default_factory=lambda: [NLU_FALLBACK, OUT_OF_SCOPE])
    confidence_below: float = 0.45
    min_cluster_size: int = 5
    distance_threshold: float = 0.45    # cosine distance, average linkage
    examples_shown: int = 5

    def validate(self) -> None:
        self.require(self.min_cluster_size >= 2 and 0 < self.distance_threshold < 2,
                     "new_intents: min_cluster_size >= 2, distance_threshold in (0, 2)")


@dataclass
class SignalsConfig(RetrainOptions):
    what: ClassVar[str] = "signals"

    review: ReviewConfig = field(default_factory=ReviewConfig)
    reviewed_labels: bool = True        # train on labels a person entered in the review file
    # The customers' questions of answers a lead accepted in the desk train the classifier as the knowledge
    # base's retrieval intent (faq), so the next customers' paraphrases reach the answer, not a scripted flow.
    accepted_questions: bool = True
    pseudo_labels: PseudoLabelConfig = field(default_factory=PseudoLabelConfig)
    handoff_qa: HandoffQAConfig = field(default_factory=HandoffQAConfig)
    new_intents: NewIntentConfig = field(default_factory=NewIntentConfig)

    @classmethod
    def from_dict(cls, values: Optional[Dict[str, Any]]) -> "SignalsConfig":
        values = dict(values or {})
        parts = {
            "review": ReviewConfig, "pseudo_labels": PseudoLabelConfig,
            "handoff_qa": HandoffQAConfig, "new_intents": NewIntentConfig,
        }
        built = {key: _section(values, key, kind) for key, kind in parts.items()}
        return super().from_dict({**values, **built})


@dataclass
class TrainingConfig(RetrainOptions):
    what: ClassVar[str] = "training"

    # Continue from the champion's classifier weights when the label set is unchanged (false: always from the base model).
    continue_when_labels_unchanged: bool = True
    # ... and also when intents were added or removed: kept intents keep the champion's head rows, new ones start
    # from their examples (finetune/head_growth.py); false: such nights train from the base model.
    continue_when_labels_change: bool = True
    # Classifier options (finetune.TrainConfig) for continued training, merged over config.yml's.
    continued_overrides: Dict[str, Any] = field(default_factory=lambda: {"epochs": 4, "learning_rate": 5e-5, "head_learning_rate": 5e-4})
    # Classifier options applied in both modes (tests use a tiny schedule).
    classifier_overrides: Dict[str, Any] = field(default_factory=dict)
    # Rasa's graph cache, kept between nights so unchanged parts (policies) are reused.
    cache_dir: str = "var/retrain/cache"
    timeout_minutes: float = 90

    def validate(self) -> None:
        self.require(self.timeout_minutes > 0, "training.timeout_minutes must be positive")


@dataclass
class GateConfig(RetrainOptions):
    what: ClassVar[str] = "gate"

    heldout_nlu: str = "tests/data/nlu.yml"
    stories: Optional[str] = "tests/test_stories.yml"
    # Largest drop allowed from champion to challenger, per metric (absolute).
    tolerance: Dict[str, float] = field(default_factory=lambda: {
        "intent_accuracy": 0.005, "intent_macro_f1": 0.01, "story_accuracy": 0.0, "action_accuracy": 0.005,
        "kb_answer_precision": 0.05})
    timeout_minutes: float = 30
    # Knowledge-base answer precision (retrain/kb_probe.py), measured when the pipeline has the knowledge base:
    # held-out paraphrases with their right answer, and questions it has no answer for (any answer is wrong).
    kb_paraphrases: List[str] = field(default_factory=lambda: ["tests/data/qa_paraphrases.csv", "tests/data/qa_paraphrases_zh.csv"])
    kb_unanswerable: List[str] = field(default_factory=lambda: ["tests/data/qa_unanswerable.csv"])
    # A challenger whose answers are right less often than this is refused (null: no floor). While the new-entries
    # check below is on and the champion itself is under the floor, the challenger is judged on the tolerance alone.
    kb_precision_floor: Optional[float] = 0.9
    # The knowledge-base rows the challenger adds (retrain/kb_entries.py): each row's question, held out, must find
    # its own answer among the top `kb_new_entries_top_k`; the challenger is refused when the share of rows that do
    # is under this (null: no check).
    kb_new_entries_floor: Optional[float] = 0.8
    kb_new_entries_top_k: int = 5
    # The intent labels leads gave in the review queue (retrain/label_check.py): each, held out, must be among the top
    # `review_labels_top_k` intents (at most a tenth of them) the rest of the training data gives its text. When the
    # labels changed since the champion and at least `review_labels_min` of them are judged, a night whose share that
    # agrees is under this is refused before training (null: no check).
    review_labels_floor: Optional[float] = 0.5
    review_labels_top_k: int = 3
    review_labels_min: int = 5

    def validate(self) -> None:
        known = {"intent_accuracy", "intent_macro_f1", "story_accuracy", "action_accuracy", "kb_answer_precision"}
        unknown = set(self.tolerance) - known
        self.require(not unknown, f"gate.tolerance: unknown metric(s) {sorted(unknown)}; known: {sorted(known)}")
        self.require(self.kb_precision_floor is None or 0 <= self.kb_precision_floor <= 1,
                     "gate.kb_precision_floor must be in [0, 1] or null")
        self.require(self.kb_new_entries_floor is None or 0 <= self.kb_new_entries_floor <= 1,
                     "gate.kb_new_entries_floor must be in [0, 1] or null")
        self.require(self.kb_new_entries_top_k >= 1, "gate.kb_new_entries_top_k must be at least 1")
        self.require(self.review_labels_floor is None or 0 <= self.review_labels_floor <= 1,
                     "gate.review_labels_floor must be in [0, 1] or null")
        self.require(self.review_labels_top_k >= 1, "gate.review_labels_top_k must be at least 1")
        self.require(self.review_labels_min >= 1, "gate.review_labels_min must be at least 1")


@dataclass
class ServerConfig(RetrainOptions):
    what: ClassVar[str] = "server"

    # A running Rasa server (started with --enable-api) told to load the new champion.
    url: Optional[str] = "http://127.0.0.1:5005"
    token_env: str = "KEFU_API_TOKEN"
    timeout_s: float = 300


@dataclass
class RetrainConfig(RetrainOptions):
    what: ClassVar[str] = "retrain"

    project: str = "."
    config: str = "config.yml"
    domain: str = "domain.yml"
    data: List[str] = field(default_factory=lambda: ["data"])
    endpoints: str = "endpoints.yml"
    models_dir: str = "models"
    state_dir: str = "var/retrain"
    keep_models: int = 5
    intake: IntakeConfig = field(default_factory=IntakeConfig)
    signals: SignalsConfig = field(default_factory=SignalsConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    server: ServerConfig = field(default_factory=ServerConfig)

    @classmethod
    def from_dict(cls, values: Optional[Dict[str, Any]], base: Optional[Path] = None) -> "RetrainConfig":
        """`base`: the folder a relative `project` is relative to (retrain.yml's folder)."""
        values = dict(values or {})
        parts = {"intake": IntakeConfig, "signals": SignalsConfig, "training": TrainingConfig,
                 "gate": GateConfig, "server": ServerConfig}
        built = {key: _section(values, key, kind) for key, kind in parts.items()}
        config = super().from_dict({**values, **built})
        if base is not None and not Path(config.project).is_absolute():
            config = dataclasses.replace(config, project=str((Path(base) / config.project).resolve()))
        return config

    @classmethod
    def load(cls, path: str | Path) -> "RetrainConfig":
        path = Path(path)
        if not path.exists():
            raise RetrainError(f"retrain config not found: {path}")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise RetrainError(f"{path} is not valid YAML: {exc}") from exc
        if not isinstance(values, dict):
            raise RetrainError(f"{path} must be a mapping of options")
        return cls.from_dict(values, base=path.resolve().parent)

    def validate(self) -> None:
        self.require(self.keep_models >= 2, "keep_models must be at least 2 (the champion and one to roll back to)")

    def path(self, value: str | Path) -> Path:
        value = Path(value)
        return value if value.is_absolute() else Path(self.project).resolve() / value

    @property
    def state(self) -> Path:
        return self.path(self.state_dir)
