"""Learning signals from redacted transcripts: review queue, pseudo-labels, handoff Q&A, new-intent candidates."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

from kefu.core.payloads import ACCEPTED_QA_TAG, HANDOFF_ACTION, NLU_FALLBACK, OUT_OF_SCOPE
from kefu.core.text import is_question, normalize_text
from retrain.config import HandoffQAConfig, NewIntentConfig, PseudoLabelConfig, ReviewConfig
from retrain.intake import Conversation
from retrain.review import CANDIDATE, MESSAGE, ReviewRow
from retrieval import QAPair, find_duplicates


@dataclass
class MessageStat:
    """One distinct (normalised) customer message of this run, with the champion's view of it."""

    text: str
    count: int = 0
    live_intents: Counter = field(default_factory=Counter)
    predicted: Optional[str] = None
    confidence: float = 0.0
    margin: float = 1.0
    # Times the customer left the conversation to a person after sending it (a handoff before the bot
    # took the conversation back): the bot's reading of it settled nothing, so it vouches for no label.
    handed_off: int = 0

    @property
    def live_intent(self) -> Optional[str]:
        return self.live_intents.most_common(1)[0][0] if self.live_intents else None

    @property
    def disagrees(self) -> bool:
        live = self.live_intent
        return live is not None and live != NLU_FALLBACK and live != self.predicted


def message_stats(conversations: Sequence[Conversation], model) -> List[MessageStat]:
    """Counts new customer messages (already redacted) and asks the champion's classifier about each."""
    stats: Dict[str, MessageStat] = {}
    for conversation in conversations:
        waiting: List[MessageStat] = []  # this conversation's messages since the bot last had it to itself
        for turn in conversation.turns:
            if turn.kind == "resume":
                waiting = []
            elif (turn.kind == "action" and turn.action == HANDOFF_ACTION) or turn.kind == "agent":
                for stat in waiting:
                    stat.handed_off += 1
                waiting = []
            if not (turn.kind == "user" and turn.new and turn.text) or turn.text.startswith("/"):  # buttons: not language
                continue
            key = normalize_text(turn.text)
            if not key:
                continue
            stat = stats.setdefault(key, MessageStat(turn.text))
            stat.count += 1
            waiting.append(stat)
            if turn.intent:
                stat.live_intents[turn.intent] += 1
    items = list(stats.values())
    if items and model is not None:
        for stat, p in zip(items, model.predict([s.text for s in items])):
            stat.predicted, stat.confidence = p.intent, p.confidence
            stat.margin = p.ranking[0][1] - p.ranking[1][1] if len(p.ranking) > 1 else 1.0
    return items


def review_queue(stats: Sequence[MessageStat], config: ReviewConfig, known_texts: Set[str]) -> List[ReviewRow]:
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rows = []
    for s in stats:
        if normalize_text(s.text) in known_texts:
            continue
        unsure = s.confidence < config.confidence_below
        close_call = s.margin < 0.1
        if not (unsure or s.disagrees or close_call):
            continue
        disagreement = 1.0 if s.disagrees else (0.5 if close_call else 0.0)
        reasons = [r for r, on in (("low confidence", unsure), ("live bot disagreed", s.disagrees), ("close call", close_call)) if on]
        rows.append(ReviewRow(
            kind=MESSAGE, text=s.text, predicted=s.predicted or "", confidence=round(s.confidence, 4), count=s.count,
            priority=round(s.count * (1.0 - s.confidence + 0.05) * (1.0 + disagreement), 4),
            reason=", ".join(reasons), first_seen=now, last_seen=now))
    return sorted(rows, key=lambda r: -r.priority)


def pseudo_labels(stats: Sequence[MessageStat], config: PseudoLabelConfig, labels: Set[str], known_texts: Set[str],
                  already: Counter) -> List[Tuple[str, str]]:
    """Confident, agreed predictions not yet in the training data; at most `cap_per_intent` new per intent
    (and `max_total_per_intent` over all runs), most frequent messages first, so no intent swamps the rest.

    A message the customer then took to a person is no label, however sure the bot was: in the learning
    round "can I return something after 30 days" (return_item 0.99, the return flow, then a person who
    answered the 30-day policy) became a return_item example, and the next day's "is there any flexibility
    on the 30 day return policy" went to the return flow at 0.93 instead of the answer a lead had accepted."""
    by_intent: Dict[str, List[MessageStat]] = defaultdict(list)
    for s in stats:
        if (s.predicted in labels and s.confidence >= config.threshold and s.live_intent in (None, s.predicted)
                and not s.handed_off and normalize_text(s.text) not in known_texts):
            by_intent[s.predicted].append(s)
    chosen = []
    for intent, group in sorted(by_intent.items()):
        room = min(config.cap_per_intent, max(0, config.max_total_per_intent - already[intent]))
        group.sort(key=lambda s: (-s.count, -s.confidence, s.text))
        chosen += [(s.text, intent) for s in group[:room]]
    return chosen


def without_kb_questions(labels: Sequence[Tuple[str, str]], pairs: Sequence[QAPair]) -> List[Tuple[str, str]]:
    """The (text, intent) labels whose text is no question of the knowledge base's rows: what the knowledge base
    answers is no scripted intent's (a pseudo-label kept from a night before a lead accepted the answer included)."""
    asked = {normalize_text(p.question) for p in pairs}
    return [(text, intent) for text, intent in labels if normalize_text(text) not in asked]


def accepted_questions(pairs: Sequence[QAPair], retrieval_intent: str, labelled: Set[str]) -> List[Tuple[str, str]]:
    """(question, retrieval intent) for the questions of rows a lead accepted in the desk, each once, except texts
    already labelled (`labelled`, normalised: the NLU data, reviewed labels).

    The classifier then reads the next customers' paraphrases as the knowledge base's, not as the scripted intent
    it was sure of before a person answered (learning round, day 2 of 75 questions about withheld answers:
    routed to a scripted intent 53 without this, 16 with it)."""
    found: Dict[str, str] = {}
    for pair in pairs:
        key = normalize_text(pair.question)
        if ACCEPTED_QA_TAG in pair.tags and key not in labelled:
            found.setdefault(key, pair.question)
    return [(question, retrieval_intent) for question in found.values()]


# What a customer message needs to be the question an agent answers: kefu.core.text.is_question, the rule the
# desk uses too (desk/transcript.py `questions_for_answer`; tests/desk/test_proposals.py checks that both pair
# the same questions on the same conversation).
UNANSWERED_INTENTS = frozenset({NLU_FALLBACK, OUT_OF_SCOPE})
MAX_QUESTIONS_BEFORE = 3


def handoff_pairs(conversations: Sequence[Conversation], config: HandoffQAConfig) -> List[QAPair]:
    """A human agent's answer paired with each customer question it answers (one pair per question, all under
    one id): the questions asked just before the handoff (the last one, and those right before it the bot could
    not answer either) and those sent while waiting; after an agent's reply, the customer's next questions.
    Texts must already be redacted.

    Replies sent through the agent desk are left out: the desk proposes them to a lead, and only the
    entries a lead accepts (or edits) reach the knowledge base, as curated Q&A data (retrain/intake.py)."""
    pairs = []
    for conversation in conversations:
        before: List[str] = []
        current: List[str] = []
        open_run = handed_off = answered = False
        for turn in conversation.turns:
            if turn.kind == "user":
                if not is_question(turn.text, turn.intent, config.skip_intents):
                    continue
                if answered:
                    before, current, answered = [], [], False
                if handed_off:
                    current.append(turn.text.strip())
                else:
                    before = (before if open_run else [])[-(MAX_QUESTIONS_BEFORE - 1):] + [turn.text.strip()]
                    open_run = turn.intent in UNANSWERED_INTENTS or turn.kb_match == "low"
            elif turn.kind == "action" and turn.action == HANDOFF_ACTION:
                handed_off = True
            elif turn.kind == "resume":
                before, current, open_run, handed_off, answered = [], [], False, False, False
            elif turn.kind == "agent" and turn.text:
                answered = True
                found: Dict[str, str] = {}
                for q in before + current:
                    found.setdefault(normalize_text(q), q)
                questions = list(found.values())
                if turn.new and not turn.via_desk and questions and len(turn.text.strip()) >= config.min_answer_chars:
                    digest = hashlib.sha256(f"{conversation.id}\n{turn.timestamp}".encode()).hexdigest()[:12]
                    when = datetime.fromtimestamp(turn.timestamp, timezone.utc).isoformat(timespec="seconds")
                    pairs += [QAPair(f"handoff-{digest}", q, turn.text.strip(), source="human agent", tags=["handoff"],
                                     timestamp=when) for q in questions]
    return pairs


def dedupe_pairs(new: List[QAPair], existing: List[QAPair], embedder, threshold: float) -> Tuple[List[QAPair], int]:
    """New pairs that add something: exact and near duplicates of each other or of existing pairs are dropped
    (retrieval's de-duplication; existing pairs are locked, a newer answer to the same question wins)."""
    if not new:
        return [], 0
    pairs = list(existing) + list(new)
    vectors = embedder.encode([p.question for p in pairs])
    result = find_duplicates(pairs, vectors, threshold=threshold, locked=[True] * len(existing) + [False] * len(new))
    kept = [pairs[i] for i in result.keep if i >= len(existing)]
    return kept, len(new) - len(kept)


def candidate_intents(stats: Sequence[MessageStat], config: NewIntentConfig, embedder) -> List[ReviewRow]:
    """Clusters of messages that fit no intent (by sentence embedding, average-linkage cosine);
    each cluster of at least `min_cluster_size` messages becomes a proposal with its most central messages."""
    pool = [s for s in stats if (s.live_intent in config.fallback_intents) or s.confidence < config.confidence_below]
    if sum(s.count for s in pool) < config.min_cluster_size or len(pool) < 2:
        return []
    vectors = embedder.encode([s.text for s in pool])
    clusters = fcluster(linkage(vectors, method="average", metric="cosine"), t=config.distance_threshold, criterion="distance")
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rows = []
    for cluster in set(clusters):
        members = [i for i, c in enumerate(clusters) if c == cluster]
        size = sum(pool[i].count for i in members)
        if size < config.min_cluster_size:
            continue
        centre = vectors[members].mean(0)
        order = sorted(members, key=lambda i: -float(vectors[i] @ centre))
        shown = [pool[i].text for i in order[: config.examples_shown]]
        rows.append(ReviewRow(
            kind=CANDIDATE, text=shown[0], count=size, priority=float(size),
            confidence=round(float(np.mean([pool[i].confidence for i in members])), 4),
            predicted=Counter(pool[i].live_intent or "" for i in members).most_common(1)[0][0],
            reason=f"{size} messages ({len(members)} distinct) fit no intent",
            examples=" | ".join(shown), first_seen=now, last_seen=now))
    return sorted(rows, key=lambda r: -r.priority)
