"""A second vector per entry from a multilingual sentence encoder, for queries the main model cannot read.

The packaged MiniLM (the main embedding model, adapted to the Q&A) reads 244
Chinese characters. USE multilingual v3 (`kefu.core.sentence_encoder`) reads
Chinese, Traditional included, at about 1 ms per message. Built when the Q&A
needs it (IndexConfig.multilingual), the view keeps one such vector per entry
in its own faiss index; a query's score for an entry is
w * main cosine + (1 - w) * view score, with w from how much of the query the
main tokenizer reads (1.0 for English: unchanged).

The view score is (1 - h) * multilingual cosine + h * P(the entry's answer topic),
P from a logistic-regression head over the view's vectors (`AnswerHead`): a
nearest neighbour sees one stored question at a time, the head learns each
answer from all of its questions, and, since USE puts languages in one space,
from the questions of the same answer in other languages too (a topic is the
answer's source article when that names one answer per language). Held-out
Chinese paraphrases (tests/data/qa_paraphrases_zh.csv), USE alone on the shipped
Q&A: nearest neighbour 0.706 top-1, head 0.810, h=0.7 0.802. The head's share
goes only to entries answered in the query's language: the topic comes from all
languages, the answer in the customer's own.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from kefu.core import sklearn_io
from kefu.core.linear_probabilities import LinearProbabilities
from kefu.core.sentence_encoder import SentenceEncoder
from kefu.core.text import detect_language
from retrieval.config import IndexConfig
from retrieval.encoded_entries import INTENT_CLASS, EncodedEntries, load_intent_examples, save_intent_examples
from retrieval.qa import QAPair, normalize_text
from retrieval.vectors import VectorIndex

INDEX_FILE = "multilingual.faiss"
HEAD_FILE = "multilingual_head.skops"
INTENTS_FILE = "multilingual_intents.npz"
# A source link shared by at most this many distinct answers names one answer per language.
MAX_ANSWERS_PER_SOURCE = 4
# Entries of this many most probable topics join the candidates of a query.
HEAD_TOPICS = 3


def answer_languages(pairs: Mapping[int, QAPair]) -> Dict[int, Optional[str]]:
    return {i: detect_language(p.answer) for i, p in pairs.items()}


def answer_topics(pairs: Mapping[int, QAPair]) -> Dict[int, str]:
    """Entry id -> topic: the answer's source when it names one answer per language, else the answer itself."""
    answers = defaultdict(set)
    for pair in pairs.values():
        if pair.source:
            answers[pair.source].add(normalize_text(pair.answer))
    return {i: (f"source:{p.source}" if p.source and len(answers[p.source]) <= MAX_ANSWERS_PER_SOURCE
                else f"answer:{normalize_text(p.answer)}") for i, p in pairs.items()}


class AnswerHead:
    """P(topic | multilingual vector): logistic regression over every entry's vector."""

    def __init__(self, model):
        self.model = model
        self._probabilities = LinearProbabilities(model)

    @classmethod
    def fit(cls, vectors: np.ndarray, topics: Sequence[str]) -> Optional["AnswerHead"]:
        if len(set(topics)) < 2:
            return None
        from sklearn.linear_model import LogisticRegression

        return cls(LogisticRegression(C=10.0, max_iter=2000).fit(vectors, np.asarray(topics, dtype=object)))

    def probabilities(self, vector: np.ndarray) -> Dict[str, float]:
        return dict(zip(self.model.classes_.tolist(), self._probabilities.probabilities(vector[None, :])[0].tolist()))

    def save(self, path: Path) -> None:
        sklearn_io.save(path, self.model)

    @classmethod
    def load(cls, path: Path) -> "AnswerHead":
        return cls(sklearn_io.load(path))


class MultilingualView(EncodedEntries):
    def __init__(self, encoder: SentenceEncoder, vectors: VectorIndex, head: Optional[AnswerHead] = None, head_share: float = 0.0):
        super().__init__(encoder, vectors)
        self.head = head
        self.head_share = head_share
        # Entry id -> answer topic and answer language; set by the index that owns the view (`set_entries`).
        self.topics: Dict[int, str] = {}
        self.languages: Dict[int, Optional[str]] = {}
        self._members: Dict[str, list] = {}
        # Intent examples the head learns besides the entries: (vectors, intent names).
        self.intent_vectors = np.zeros((0, vectors.dimension), dtype=np.float32)
        self.intent_names: list = []

    @classmethod
    def build(cls, encoder: SentenceEncoder, ids: np.ndarray, texts: Sequence[str], config: IndexConfig) -> "MultilingualView":
        return cls(encoder, cls.entry_vectors(encoder, ids, texts, config), head_share=config.multilingual_head)

    def set_intent_examples(self, texts: Sequence[str], intents: Sequence[str]) -> None:
        """Messages of the bot's intents, learnt by the head as classes of their own.

        Without them the head must spread every message over the answers, so a
        Chinese "has my parcel left yet" (an order-status message) got a confident
        shipping answer, and the knowledge base took 8 of 316 held-out Chinese
        intent messages; with them that probability goes to the intent.
        """
        self.intent_vectors = self.encode(texts) if len(texts) else np.zeros((0, self.vectors.dimension), dtype=np.float32)
        self.intent_names = [INTENT_CLASS + name for name in intents]

    def set_entries(self, pairs: Mapping[int, QAPair], refit: bool) -> None:
        """The entries' answer topics and languages; `refit` trains the head again on the current entries (after a build or a change)."""
        self.topics, self.languages = answer_topics(pairs), answer_languages(pairs)
        self._members: Dict[str, list] = defaultdict(list)
        for entry, topic in self.topics.items():
            self._members[topic].append(entry)
        if refit:
            ids = np.asarray(sorted(self.topics), dtype=np.int64)
            vectors = np.vstack([self.vectors.reconstruct(ids), self.intent_vectors])
            labels = [self.topics[i] for i in ids.tolist()] + self.intent_names
            self.head = AnswerHead.fit(vectors, labels) if self.head_share > 0 and self.topics else None

    def scores(self, vector: np.ndarray, k: int, also: Sequence[int] = (), language: Optional[str] = None) -> Tuple[Dict[int, float], Dict[int, float]]:
        """({entry id: view score} of the k nearest entries and the head's likeliest topics, the scores of the entries in `also`).

        `language`: the query's; the head's share goes to entries answered in it (to all when None).
        """
        found, ids = self.vectors.search(vector[None, :], k)
        cosines = {int(i): float(s) for s, i in zip(found[0], ids[0]) if i >= 0}
        best = list(cosines)
        probabilities = self.head.probabilities(vector) if self.head is not None else None
        if probabilities is not None:
            likely = sorted(probabilities, key=probabilities.get, reverse=True)[:HEAD_TOPICS]
            best += [i for topic in likely for i in self._members.get(topic, ()) if i not in cosines and self._speaks(i, language)]
        missing = [i for i in dict.fromkeys([*best, *(int(i) for i in also)]) if i not in cosines]
        if missing:
            cosines.update(zip(missing, (self.vectors.reconstruct(np.asarray(missing)) @ vector).tolist()))
        if probabilities is not None:
            h = self.head_share
            scored = {i: (1.0 - h) * c + (h * probabilities.get(self.topics.get(i, ""), 0.0) if self._speaks(i, language) else 0.0)
                      for i, c in cosines.items()}
        else:
            scored = cosines
        return {i: scored[i] for i in best}, {int(i): scored[int(i)] for i in also}

    def _speaks(self, entry: int, language: Optional[str]) -> bool:
        return language is None or self.languages.get(entry) in (None, language)

    def save(self, directory: Path) -> None:
        self.save_vectors(Path(directory) / INDEX_FILE)
        if self.head is not None:
            self.head.save(Path(directory) / HEAD_FILE)
        if self.intent_names:
            save_intent_examples(Path(directory) / INTENTS_FILE, self.intent_vectors, self.intent_names)

    @classmethod
    def load(cls, directory: Path, encoder_name: str, head_share: float = 0.0, head: bool = False) -> "MultilingualView":
        """`head`: the index was saved with an answer head (its manifest says so)."""
        encoder, vectors = cls.read_vectors(Path(directory) / INDEX_FILE, encoder_name)
        loaded = AnswerHead.load(Path(directory) / HEAD_FILE) if head else None
        view = cls(encoder, vectors, loaded, head_share if loaded is not None else 0.0)
        intents = Path(directory) / INTENTS_FILE
        if intents.exists():
            view.intent_vectors, view.intent_names = load_intent_examples(intents, vectors.dimension)
        return view


