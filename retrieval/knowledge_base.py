"""The knowledge base as the bot uses it: a Q&A index plus the decision fitted for it.

`KnowledgeBase.build` is the one way to make it - `rasa train` (through
bot.components.FaissAnswerRetriever) and `kefu kb build` both call it with the
same `KBConfig` defaults - so the shell builds exactly what the bot serves:
optionally adapted embeddings, the index, and the answer/clarify decision
fitted on k-fold held-out questions (retrieval.calibration). Both live in one
directory (the decision as an extra JSON file of the index).
"""

from __future__ import annotations

import dataclasses
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple, Type, Union

import numpy as np

from kefu.core.options import Options
from kefu.core.payloads import KB_NONE, RETRIEVAL_INTENT, ROUTE_CLARIFY, ROUTE_NONE, KBCandidate, KBResult, no_scripted_intent
from retrieval.adapt import AdaptConfig, adapt
from retrieval.calibration import Ranking, calibration_set, calibration_sets, held_out_top1
from retrieval.config import IndexConfig
from retrieval.decision import OVERRIDE_INTENT_BELOW, DecisionModel, fit_intent_gap_cut, margins, right_answer_gaps
from retrieval.embedder import Embedder
from retrieval.errors import ModelLoadError, RetrievalError
from retrieval.index import QAIndex, QueryVectors, fold_query
from retrieval.intent_neighbours import FILE as INTENTS_FILE
from retrieval.intent_neighbours import IntentNeighbours
from retrieval.qa import QAPair
from retrieval.ranking import SearchResult

logger = logging.getLogger(__name__)

DECISION_FILE = "decision.json"


@dataclass
class KBConfig(Options):
    """How the knowledge base is built and how it decides; the defaults of both the component and the CLI."""

    # The intent the component sets when the knowledge base should handle the message.
    retrieval_intent: str = RETRIEVAL_INTENT
    top_k: int = 5
    # Precision the answers given must reach on held-out messages, and the lower
    # precision at which asking "did you mean ..." is still worth it.
    answer_precision: float = 0.9
    clarify_precision: float = 0.5
    # Where the bot does not answer from the knowledge base (asks to rephrase, has no answer, reads the
    # message as out of scope or not understood), it still offers the top `suggest_count` stored questions
    # as "did you mean" buttons when the best one's calibrated probability of being right is at least
    # this (1.0: never). A wrong suggestion costs the customer a glance, a right one saves a handoff.
    suggest_from: float = 0.2
    suggest_count: int = 3
    # A scripted intent keeps the message when the answer's probability does not beat
    # its confidence, or when its confidence is at least this: a scripted flow can act
    # (forms, look-ups, handoff), a stored answer cannot (1.0: compare the two only; 0.5
    # sent "Is your merino mulesing-free?" to product_availability at 0.78).
    override_intent_below: float = OVERRIDE_INTENT_BELOW
    # Intent examples that must never get a knowledge-base answer (calibration negatives).
    # Other intents' examples are not negatives: many are fair KB questions too, and the
    # route between a scripted intent and the KB is decided on their confidences.
    negative_intents: List[str] = field(default_factory=lambda: ["out_of_scope"])
    max_calibration_negatives: int = 1000
    # The answer heads (the multilingual view's, and the joint one with up to IndexConfig.answer_head_intent_examples
    # per intent) also learn the intents' examples (NLU data given to the build), so a message of a scripted intent
    # does not look like a confident answer.
    head_learns_intents: bool = True
    # Answer-text weights (IndexConfig.answer_text_weight) tried on the calibration's held-out questions at
    # build: the index's own weight is kept unless another puts the right answer first for at least
    # `answer_text_weight_gain` more of them. Answer texts that read like the questions' answers (a shop's
    # FAQ: 1.0 chosen on development sets, see IndexConfig) help; terse ones (BANKING77's category names
    # standing in for answers) pull the ranking away from ~100 questions per answer: held-out top-1 0.910 at
    # 1.0, 0.924 at 0.5, 0.928 at 0 (test 0.8974 -> 0.9276). Empty: the index's weight, untried.
    answer_text_weights: List[float] = field(default_factory=lambda: [0.0, 0.5, 1.0])
    # Shares of the joint answer head (IndexConfig.answer_head, retrieval/joint_head.py) tried with each answer-text
    # weight, the same way: the index's own ranking is kept unless another puts the right answer first for at least
    # `answer_text_weight_gain` more held-out questions. BANKING77 as Q&A, development split of its training
    # questions: 0.911 at 0, 0.933 at 0.3, 0.930 at 0.5. Empty: the index's share, untried.
    answer_head_weights: List[float] = field(default_factory=lambda: [0.0, 0.3, 0.5])
    answer_text_weight_gain: float = 0.01
    # A message the classifier did not leave to the knowledge base (any intent but `retrieval_intent`), nearer to
    # the bot's intent examples than to its best answer by more than the gap under which this share of the
    # held-out questions answered right lie, gets no answer and no "did you mean it?" (retrieval.intent_neighbours):
    # a shop's FAQ answered or asked about 63-77 of BANKING77's 3,080 test messages, most of them nearer their own
    # intent's examples (gap median 0.30; the shop's right answers: 0.95 quantile 0.14, 0.99 quantile 0.33, a
    # few payment questions worded like banking ones). 0: off. Needs the NLU data (`rasa train`, `kefu kb build --nlu`).
    intent_gap_keep: float = 0.95
    # Examples per intent embedded for it (a seeded sample of those the main model reads): the max cosine hardly
    # moves past a few dozen, and all of BANKING77's 10k took 35 s of the 15-minute `rasa train nlu` budget.
    intent_gap_examples: int = 30
    # Each answer's questions are split into this many folds for calibration.
    calibration_folds: int = 3
    # Share of answers left out of each calibration probe index, whose questions
    # then stand for on-topic questions the knowledge base cannot answer.
    calibration_unanswerable: float = 0.15
    # Fine-tune the embedding model on the Q&A (MultipleNegativesRankingLoss); kept
    # only if it retrieves better on held-out questions than the frozen model.
    # On by default: `kefu kb build` and the Rasa component build the same knowledge base.
    adapt: bool = True
    # retrieval.AdaptConfig options (epochs, batch_size, time_budget_minutes, ...).
    adapt_options: Dict[str, Any] = field(default_factory=dict)
    seed: int = 42
    # retrieval.IndexConfig options (model, kind, flat_max, ...).
    index: Dict[str, Any] = field(default_factory=dict)

    error: ClassVar[Type[Exception]] = RetrievalError
    what: ClassVar[str] = "knowledge-base"

    def validate(self) -> None:
        for key in ("answer_precision", "clarify_precision"):
            self.require(0.0 < float(getattr(self, key)) <= 1.0, f"{key} must be in (0, 1]")
        self.require(0.0 <= self.override_intent_below <= 1.0, "override_intent_below must be in [0, 1]")
        self.require(0.0 <= self.suggest_from <= 1.0 and self.suggest_count >= 1, "suggest_from must be in [0, 1] and suggest_count >= 1")
        self.require(self.top_k >= 1 and self.calibration_folds >= 2, "top_k must be >= 1 and calibration_folds >= 2")
        self.require(0.0 <= self.calibration_unanswerable < 1.0, "calibration_unanswerable must be in [0, 1)")
        self.require(0.0 <= float(self.intent_gap_keep) <= 1.0 and self.intent_gap_examples >= 1,
                     "intent_gap_keep must be in [0, 1] and intent_gap_examples >= 1")
        self.require(all(float(w) >= 0.0 for w in self.answer_text_weights) and 0.0 <= self.answer_text_weight_gain < 1.0,
                     "answer_text_weights must be >= 0 and answer_text_weight_gain in [0, 1)")
        self.require(all(0.0 <= float(w) < 1.0 for w in self.answer_head_weights), "answer_head_weights must be in [0, 1)")
        self.index_config()
        self.adapt_config()

    def index_config(self) -> IndexConfig:
        return IndexConfig.from_dict(self.index or {})

    def adapt_config(self) -> AdaptConfig:
        return AdaptConfig.from_dict({"base_model": self.index_config().model, **(self.adapt_options or {})})


class KnowledgeBase:
    """A searchable index and the decision that turns a search into answer / clarify / intent / none."""

    def __init__(self, index: QAIndex, decision: DecisionModel, config: Optional[KBConfig] = None,
                 intents: Optional[IntentNeighbours] = None):
        self.index = index
        self.decision = decision
        self.config = config or KBConfig()
        # The bot's intent examples, when the decision has a cut for messages nearer to them (DecisionModel.intent_gap_cut).
        self.intents = intents if decision.intent_gap_cut is not None else None
        self._no_scripted = no_scripted_intent(self.config.retrieval_intent)
        self._negative = frozenset(self.config.negative_intents)

    # -------------------------------------------------------------------- build
    @classmethod
    def build(cls, pairs: Sequence[QAPair], config: Optional[KBConfig] = None, negatives: Sequence[str] = (),
              progress: bool = True, intent_examples: Sequence[Tuple[str, str]] = ()) -> "KnowledgeBase":
        """Adapts (if configured), fits the decision on held-out questions and `negatives`, and indexes `pairs`.

        `intent_examples`: (text, intent) of the bot's NLU data; the answer heads learn them
        (`KBConfig.head_learns_intents`), except the retrieval intent's, and messages nearer to them than to the
        stored questions are left to their intent (`KBConfig.intent_gap_keep`).
        """
        config = config or KBConfig()
        index_config = config.index_config()
        embedder = Embedder.load(index_config.model, index_config.device)
        split, adaptation, frozen = None, None, None
        if config.adapt:
            base = embedder
            adaptation = adapt(pairs, config.adapt_config(), frozen=base, progress=progress)
            embedder = adaptation.embedder
            if adaptation.adapted:
                # Calibrate only on questions the adapted model never saw.
                split = (adaptation.train_pairs_used, adaptation.held_out_pairs)
                frozen = base  # the second view's calibration (fit_decision)
        intent_examples = [(t, i) for t, i in intent_examples if i != config.retrieval_intent]
        intents = (IntentNeighbours.build(embedder, [(fold_query(t, index_config), i) for t, i in intent_examples],
                                          config.intent_gap_examples, config.seed, index_config.batch_size,
                                          min_coverage=index_config.lexical_min_coverage)
                   if config.intent_gap_keep > 0 else None)
        intent_examples = intent_examples if config.head_learns_intents else []
        ranking, tried, decision = fit_ranking_and_decision(pairs, negatives, config, index_config, embedder, split, intent_examples,
                                                            frozen=frozen, intents=intents)
        index_config = dataclasses.replace(index_config, answer_text_weight=ranking.answer_text_weight, answer_head=ranking.answer_head)
        index = QAIndex.build(pairs, index_config, embedder=embedder, progress=progress, intent_examples=intent_examples)
        if adaptation is not None:
            index.stats["adaptation"] = adaptation.to_dict()
        if len(tried) > 1:
            index.stats["ranking"] = {"chosen": {**ranking._asdict(), "top1": round(tried[ranking], 4)},
                                      "tried": [{**r._asdict(), "top1": round(t, 4)} for r, t in tried.items()]}
            logger.info("Ranking chosen on held-out questions: %s (top-1 %.4f of %d tried)", ranking, tried[ranking], len(tried))
        index.stats["decision"] = decision.stats
        logger.info("Knowledge base: %s (%s); decision: %s", index.describe(), index.kind, decision.to_dict())
        return cls(index, decision, config, intents)

    # ------------------------------------------------------------- persistence
    def save(self, directory: Union[str, Path]) -> Path:
        extras = {DECISION_FILE: {"decision": self.decision.to_dict(), "config": self.config.to_dict()}}
        if self.intents is not None:
            extras[INTENTS_FILE] = self.intents.to_array()
        return self.index.save(directory, extras=extras)

    @classmethod
    def load(cls, directory: Union[str, Path], model: Optional[str] = None, device: str = "auto",
             config: Optional[KBConfig] = None) -> "KnowledgeBase":
        """Loads index and decision; `config` overrides the decision options stored with them (not the fitted values)."""
        stored = QAIndex.read(directory, model=model, device=device)
        saved = stored.extras.get(DECISION_FILE)
        if not isinstance(saved, dict) or "decision" not in saved:
            raise ModelLoadError(f"{directory} is a Q&A index without a decision; build it with `kefu kb build` or `rasa train`")
        try:
            decision = DecisionModel.from_dict(saved["decision"])
            config = config or KBConfig.from_dict(saved.get("config") or {})
        except (TypeError, RetrievalError) as exc:
            raise ModelLoadError(f"{directory}/{DECISION_FILE} is corrupt: {exc}") from exc
        intents = stored.extras.get(INTENTS_FILE)
        if decision.intent_gap_cut is not None and intents is None:
            raise ModelLoadError(f"{directory} has a decision with an intent-gap cut but no {INTENTS_FILE}; rebuild it")
        intents = IntentNeighbours.from_array(intents, stored.vectors.dimension) if intents is not None else None
        return cls(QAIndex.from_stored(stored), decision, config, intents)

    # ------------------------------------------------------------------ answer
    def encode_queries(self, texts: Sequence[str]) -> QueryVectors:
        """The query encoder's pass over `texts` ahead of `respond` (which takes it as `encoded`)."""
        return self.index.encode_queries([t for t in texts if t and t.strip()])

    def respond(self, texts: Sequence[str], intents: Sequence[Optional[str]], confidences: Sequence[float],
                vectors: Optional[Sequence[Optional[Tuple[str, np.ndarray]]]] = None,
                encoded: Optional[QueryVectors] = None) -> List[KBResult]:
        """Per message: search, then decide between the answer and the classifier's intent (one batched search).

        `vectors`: per message, (encoder name, vector) from the intent classifier's multilingual view;
        reused when the index's view uses the same encoder. `encoded`: `encode_queries(texts)`, made
        earlier; used only if made from these texts.
        """
        searchable = [i for i, t in enumerate(texts) if t and t.strip()]
        queries = [texts[i] for i in searchable]
        if encoded is not None and list(encoded.texts) == queries:
            queries = encoded
        nearest: Dict[int, float] = {}
        if self.intents is not None and searchable:
            if not isinstance(queries, QueryVectors):
                queries = self.index.encode_queries(queries)
            nearest = dict(zip(searchable, self.intents.nearest(queries.vectors).tolist()))
        given = None
        view = self.index.query_view_encoder
        if searchable and vectors is not None and view is not None:
            found = [vectors[i] for i in searchable]
            if all(v is not None and v[0] == view for v in found):
                given = np.stack([v[1] for v in found])
        results: Dict[int, SearchResult] = dict(zip(searchable, self.index.search(queries, k=self.config.top_k,
                                                                                    multilingual_vectors=given))) if searchable else {}
        return [self.decide(results.get(i), intents[i], confidences[i], nearest.get(i)) for i in range(len(texts))]

    def decide(self, result: Optional[SearchResult], intent: Optional[str], confidence: float,
               intent_similarity: Optional[float] = None) -> KBResult:
        """`intent_similarity`: the message's nearest intent example's cosine (main view; see `IntentNeighbours`)."""
        if result is None or not result.answers:
            return KBResult(match=KB_NONE, route=ROUTE_NONE, intent_before=intent)
        scores = [a.score for a in result.answers]
        measured = intent_similarity is not None and not result.second_view and intent != self.config.retrieval_intent
        # Cosine against cosine: the best answer's main-view score before the joint answer head (AnswerHit.main_cosine).
        gap = intent_similarity - result.answers[0].main_cosine if measured else None
        decision = self.decision.for_view(result.second_view).decide(intent, float(confidence or 0.0), scores[0], float(margins([scores])[0]),
                                                                     self.config.override_intent_below, self._no_scripted, self._negative,
                                                                     intent_gap=gap)
        best = result.answers[0]
        return KBResult(
            match=decision.match, route=decision.route, p_answer=round(decision.p_answer, 4), intent_before=intent,
            answer=best.answer, question=best.pair.question, source=best.pair.source, id=best.pair.id, score=round(best.score, 4),
            top_k=[KBCandidate(a.answer, a.pair.question, a.pair.source, a.pair.id, round(a.score, 4)) for a in result.answers],
            suggest=min(self.config.suggest_count, len(result.answers))
            if decision.route in (ROUTE_CLARIFY, ROUTE_NONE) and decision.p_answer >= self.config.suggest_from else 0,
        )


def fit_decision(pairs: Sequence[QAPair], negatives: Sequence[str], config: KBConfig, index_config: IndexConfig,
                 embedder: Embedder, split=None, intent_examples: Sequence[Tuple[str, str]] = (),
                 frozen: Optional[Embedder] = None, intents: Optional[IntentNeighbours] = None) -> DecisionModel:
    """The decision for `index_config` as it is (no other ranking tried; see `fit_ranking_and_decision`)."""
    config = dataclasses.replace(config, answer_text_weights=[], answer_head_weights=[])
    return fit_ranking_and_decision(pairs, negatives, config, index_config, embedder, split, intent_examples, frozen, intents)[2]


def fit_ranking_and_decision(pairs: Sequence[QAPair], negatives: Sequence[str], config: KBConfig, index_config: IndexConfig,
                             embedder: Embedder, split=None, intent_examples: Sequence[Tuple[str, str]] = (),
                             frozen: Optional[Embedder] = None,
                             intents: Optional[IntentNeighbours] = None) -> Tuple[Ranking, Dict[Ranking, float], DecisionModel]:
    """(ranking, held-out top-1 per ranking tried, decision fitted for that ranking).

    The ranking: `index_config`'s unless one of `config.answer_text_weights` x `config.answer_head_weights` beats
    its held-out top-1 by `config.answer_text_weight_gain` (the best such). The decision is fitted on held-out questions
    (k-fold, see retrieval.calibration) and negative messages.

    A held-out question is a positive when its best answer is the right one
    and a negative otherwise (a wrong answer is what the threshold prevents).
    `split` (an adapted model's own held-out questions) replaces the folds for
    the main view. The second view's evidence then still comes from the folds,
    every question held out once: its encoder is frozen, and the main model's
    small share of its scores (coverage**2) is taken from `frozen`, the model
    before adaptation, which has seen none of them.
    """
    rng = random.Random(config.seed)
    negatives = rng.sample(list(negatives), min(len(negatives), config.max_calibration_negatives))
    configured = Ranking.of(index_config)
    text_weights = [float(w) for w in config.answer_text_weights] if index_config.index_answers else []
    candidates = [Ranking(t, float(h)) for t in (text_weights or [configured.answer_text_weight])
                  for h in (config.answer_head_weights or [configured.answer_head])]
    by_ranking = calibration_sets(pairs, negatives, index_config, embedder, folds=config.calibration_folds, top_k=config.top_k,
                                  seed=config.seed, unanswerable_fraction=config.calibration_unanswerable, intent_examples=intent_examples,
                                  split=split, rankings=candidates, intents=intents)
    tried = {r: held_out_top1(e) for r, e in by_ranking.items()}
    best = max(tried, key=lambda r: (tried[r], r == configured))
    ranking = best if tried[best] >= tried[configured] + config.answer_text_weight_gain else configured
    evidence = by_ranking[ranking]
    if not evidence.answerable.any():
        logger.warning("Too little Q&A data to calibrate the knowledge-base decision (no answer has two questions); "
                       "using conservative defaults.")
        return configured, tried, DecisionModel()
    second = None
    if split is not None and frozen is not None and evidence.second_view.any():
        # Only the second view's rows are kept, and the joint head scores none of them (QAIndex.search): its probes
        # are built without it (CLINC150's intents as NLU data: 3 fits of ~15 s each saved).
        folds = calibration_set(pairs, negatives, dataclasses.replace(index_config, answer_text_weight=ranking.answer_text_weight,
                                                                     answer_head=0.0), frozen,
                                folds=config.calibration_folds, top_k=config.top_k, seed=config.seed,
                                unanswerable_fraction=config.calibration_unanswerable, intent_examples=intent_examples)
        rows = folds.second_view.astype(bool)
        second = (folds.best[rows], folds.margin[rows], folds.correct[rows], folds.answerable[rows])
    decision = DecisionModel.fit_by_view(evidence.best, evidence.margin, evidence.correct, evidence.second_view,
                                         evidence.answerable, config.answer_precision, config.clarify_precision, second_evidence=second)
    decision.intent_gap_cut = fit_intent_gap_cut(evidence.best_cosine, evidence.intent_similarity, evidence.correct, config.intent_gap_keep)
    if decision.intent_gap_cut is not None:
        measured = len(right_answer_gaps(evidence.best_cosine, evidence.intent_similarity, evidence.correct))
        decision.stats = {**decision.stats, "intent_gap": {"cut": round(decision.intent_gap_cut, 4), "right_answers_measured": measured}}
    return ranking, tried, decision
