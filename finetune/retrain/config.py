"""`retrain.yml`: what the nightly retrain reads, learns from, and how it decides.

Every section maps onto a dataclass; unknown keys are errors (a typo must not
silently switch a signal off). Relative paths are relative to `project`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from kefu.errors import KefuError
from kefu.options import options_from_dict


class RetrainError(KefuError):
    """A retrain that cannot run or failed; the message says why and what to do."""


def _opts(cls, values, what):
    return options_from_dict(cls, values or {}, RetrainError, what)


@dataclass
class IntakeConfig:
    tracker_store: bool = True          # read the store in `endpoints` (SQLite or PostgreSQL)
    export_files: List[str] = field(default_factory=list)   # tracker JSON / `rasa export` JSONL files or globs

    def validate(self) -> None:
        pass


@dataclass
class ReviewConfig:
    enabled: bool = True
    file: str = "var/retrain/review.csv"
    confidence_below: float = 0.7       # messages the bot was less sure about are queued
    max_queue: int = 300                # open rows kept, highest priority first

    def validate(self) -> None:
        if not 0 < self.confidence_below <= 1 or self.max_queue < 1:
            raise RetrainError("review.confidence_below must be in (0, 1] and max_queue positive")


@dataclass
class PseudoLabelConfig:
    enabled: bool = True
    threshold: float = 0.95             # champion confidence needed (and agreement with the live parse)
    cap_per_intent: int = 20            # new pseudo-labels per intent per run
    max_total_per_intent: int = 100     # pseudo-labels per intent kept across runs

    def validate(self) -> None:
        if not 0 < self.threshold <= 1 or self.cap_per_intent < 0 or self.max_total_per_intent < 0:
            raise RetrainError("pseudo_labels: threshold in (0, 1], caps >= 0")


@dataclass
class HandoffQAConfig:
    enabled: bool = True
    # A human agent's message is a `bot` event whose metadata has this key/value.
    agent_key: str = "agent"
    agent_value: str = "human"
    min_answer_chars: int = 20
    # Customer messages of these (live) intents are not questions worth keeping.
    skip_intents: List[str] = field(default_factory=lambda: ["greet", "goodbye", "thanks", "affirm", "deny", "human_handoff"])
    near_duplicate_threshold: float = 0.95

    def validate(self) -> None:
        if not self.agent_key:
            raise RetrainError("handoff_qa.agent_key must not be empty")


@dataclass
class NewIntentConfig:
    enabled: bool = True
    # Messages that fit no intent: these live intents, or confidence below the threshold.
    fallback_intents: List[str] = field(default_factory=lambda: ["nlu_fallback", "out_of_scope"])
    confidence_below: float = 0.45
    min_cluster_size: int = 5
    distance_threshold: float = 0.45    # cosine distance, average linkage
    examples_shown: int = 5

    def validate(self) -> None:
        if self.min_cluster_size < 2 or not 0 < self.distance_threshold < 2:
            raise RetrainError("new_intents: min_cluster_size >= 2, distance_threshold in (0, 2)")


@dataclass
class SignalsConfig:
    review: ReviewConfig = field(default_factory=ReviewConfig)
    reviewed_labels: bool = True        # train on labels a person entered in the review file
    pseudo_labels: PseudoLabelConfig = field(default_factory=PseudoLabelConfig)
    handoff_qa: HandoffQAConfig = field(default_factory=HandoffQAConfig)
    new_intents: NewIntentConfig = field(default_factory=NewIntentConfig)

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "SignalsConfig":
        values = dict(values or {})
        parts = {
            "review": ReviewConfig, "pseudo_labels": PseudoLabelConfig,
            "handoff_qa": HandoffQAConfig, "new_intents": NewIntentConfig,
        }
        built = {key: _opts(kind, values.pop(key, None), f"signals.{key}") for key, kind in parts.items()}
        return _opts(cls, {**values, **built}, "signals")

    def validate(self) -> None:
        pass


@dataclass
class TrainingConfig:
    # Continue from the champion's classifier weights when the label set is unchanged.
    continue_when_labels_unchanged: bool = True
    # Classifier options (finetune.TrainConfig) for continued training, merged over config.yml's.
    continued_overrides: Dict[str, Any] = field(default_factory=lambda: {"epochs": 4, "learning_rate": 5e-5, "head_learning_rate": 5e-4})
    # Classifier options applied in both modes (tests use a tiny schedule).
    classifier_overrides: Dict[str, Any] = field(default_factory=dict)
    # Rasa's graph cache, kept between nights so unchanged parts (policies) are reused.
    cache_dir: str = "var/retrain/cache"
    timeout_minutes: float = 90

    def validate(self) -> None:
        if self.timeout_minutes <= 0:
            raise RetrainError("training.timeout_minutes must be positive")


@dataclass
class GateConfig:
    heldout_nlu: str = "tests/data/nlu.yml"
    stories: Optional[str] = "tests/test_stories.yml"
    # Largest drop allowed from champion to challenger, per metric (absolute).
    tolerance: Dict[str, float] = field(default_factory=lambda: {
        "intent_accuracy": 0.005, "intent_macro_f1": 0.01, "story_accuracy": 0.0, "action_accuracy": 0.005})
    timeout_minutes: float = 30

    def validate(self) -> None:
        known = {"intent_accuracy", "intent_macro_f1", "story_accuracy", "action_accuracy"}
        unknown = set(self.tolerance) - known
        if unknown:
            raise RetrainError(f"gate.tolerance: unknown metric(s) {sorted(unknown)}; known: {sorted(known)}")


@dataclass
class ServerConfig:
    # A running Rasa server (started with --enable-api) told to load the new champion.
    url: Optional[str] = "http://127.0.0.1:5005"
    token_env: str = "KEFU_API_TOKEN"
    timeout_s: float = 300

    def validate(self) -> None:
        pass


@dataclass
class RetrainConfig:
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
    def from_dict(cls, values: Dict[str, Any], base: Optional[Path] = None) -> "RetrainConfig":
        values = dict(values or {})
        built: Dict[str, Any] = {
            "intake": _opts(IntakeConfig, values.pop("intake", None), "intake"),
            "signals": SignalsConfig.from_dict(values.pop("signals", None)),
            "training": _opts(TrainingConfig, values.pop("training", None), "training"),
            "gate": _opts(GateConfig, values.pop("gate", None), "gate"),
            "server": _opts(ServerConfig, values.pop("server", None), "server"),
        }
        config = _opts(cls, {**values, **built}, "retrain")
        if base is not None and not Path(config.project).is_absolute():
            config.project = str((base / config.project).resolve())
        return config

    @classmethod
    def load(cls, path: str | Path) -> "RetrainConfig":
        import yaml

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
        if self.keep_models < 2:
            raise RetrainError("keep_models must be at least 2 (the champion and one to roll back to)")

    def path(self, value: str | Path) -> Path:
        value = Path(value)
        return value if value.is_absolute() else Path(self.project).resolve() / value

    @property
    def state(self) -> Path:
        return self.path(self.state_dir)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)
