"""`QAIndex`: historical questions embedded in a faiss index, searched by meaning, ranked by answer."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

import numpy as np

from kefu.core import runtime, sentence_encoder
from kefu.core.text import clean_text, detect_language, needs_lexical, normalize_text, to_simplified, transformer_weight
from retrieval.config import IndexConfig
from retrieval.dedupe import Merge, find_duplicates
from retrieval.embedder import Embedder
from retrieval.errors import QADataError, RetrievalError
from retrieval.intent_neighbours import sample_at_most, sample_per_intent
from retrieval.joint_head import JointHead, answer_key
from retrieval.lexical import LexicalScorer
from retrieval.multilingual import MultilingualView
from retrieval.qa import QAPair, answer_text_entries, is_answer_text
from retrieval.ranking import Hit, SearchResult, group_by_answer
from retrieval.store import StoredIndex, load_index, save_index
from retrieval.vectors import VectorIndex, choose_kind

logger = logging.getLogger(__name__)


@dataclass
class QueryVectors:
    """Query texts embedded ahead of their search (`QAIndex.encode_queries`), e.g. on another thread while the intent
    classifier runs: the texts as given, their normalised vectors and their tokenizer coverage."""

    texts: List[Optional[str]]
    vectors: np.ndarray
    coverage: Optional[np.ndarray]


Queries = Union[str, Sequence[str], np.ndarray, QueryVectors]
# Up to this many query texts are embedded in one forward pass with their tokenizer coverage.
QUERY_BATCH = 64


@dataclass
class AddResult:
    added: int
    # Existing entries removed because a newer pair answers their question differently.
    replaced: int
    merges: List[Merge] = field(default_factory=list)


class QAIndex:
    """Q&A pairs, their question embeddings in a `VectorIndex`, and the model that embeds queries.

    Entries have int64 vector ids (sequential, never reused); the pair's own
    `id` may be shared by several questions (`faq/<name>`), and `delete` by id
    removes them all.
    """

    def __init__(
        self,
        embedder: Embedder,
        vectors: VectorIndex,
        pairs: Dict[int, QAPair],
        config: IndexConfig,
        next_id: int,
        stats: Optional[dict] = None,
        created_at: Optional[str] = None,
        lexical: Optional[LexicalScorer] = None,
        multilingual: Optional[MultilingualView] = None,
        joint: Optional[JointHead] = None,
    ):
        self.embedder = embedder
        self.vectors = vectors
        self.pairs = pairs
        self.config = config
        self.next_id = next_id
        self.stats = dict(stats or {})
        self.created_at = created_at
        self.lexical = lexical
        self.multilingual = multilingual
        self.joint = joint
        # What the last build merged (not stored; `add` returns its own merges).
        self.merges: List[Merge] = []
        self.vectors.set_search_params(config.hnsw_ef_search, config.ivf_nprobe)
        self._by_id: Dict[str, Set[int]] = defaultdict(set)
        for vector_id, pair in pairs.items():
            self._by_id[pair.id].add(vector_id)
        self._answer_texts = sum(1 for pair in pairs.values() if is_answer_text(pair))
        # Normalised answer -> the vector id of its answer-text entry (scored for every candidate answer).
        self._answer_entry: Dict[str, int] = {normalize_text(p.answer): v for v, p in pairs.items() if is_answer_text(p)}
        # Normalised question / answer -> vector ids; built on the first `add`.
        self._by_text: Optional[Dict[str, Set[int]]] = None
        if multilingual is not None and not multilingual.topics:
            multilingual.set_entries(pairs, refit=False)

    # ------------------------------------------------------------------- build
    @classmethod
    def build(cls, pairs: Sequence[QAPair], config: Optional[IndexConfig] = None, embedder: Optional[Embedder] = None, progress: bool = True,
              intent_examples: Sequence[Tuple[str, str]] = (), known_vectors: Optional[Dict[str, np.ndarray]] = None) -> "QAIndex":
        """Embeds the questions, merges duplicates and indexes the rest (kind chosen by size unless set).

        `intent_examples`: (text, intent) of the bot's intents, learnt by the multilingual view's answer head.
        `known_vectors`: questions (as embedded, see `question_vectors`) already embedded by this same `embedder`,
        e.g. a stored index's: only the other questions go through the model.
        """
        config = config or IndexConfig()
        if not pairs:
            raise QADataError("No Q&A pairs to index")
        pairs = [p for p in pairs if not is_answer_text(p)]
        loaded = len(pairs)
        if config.index_answers:
            pairs = pairs + answer_text_entries(pairs)
        embedder = embedder or Embedder.load(config.model, config.device)
        config = dataclasses.replace(config, model=embedder.name)
        fold = to_simplified if config.fold_traditional else (lambda text: text)
        started = time.perf_counter()
        vectors = _embedded(embedder, [fold(p.question) for p in pairs], known_vectors or {}, config.batch_size, progress)
        embedded = time.perf_counter()
        readable = embedder.coverage([fold(p.question) for p in pairs]) >= config.lexical_min_coverage
        deduped = find_duplicates(pairs, vectors, config.dedupe_threshold, readable=readable)
        kept = [pairs[i] for i in deduped.keep]
        ids = np.arange(len(kept), dtype=np.int64)
        index_vectors = VectorIndex.build(vectors[deduped.keep], ids, config, progress=progress)
        stats = {
            "loaded": loaded,
            "merged": deduped.counts(),
            "indexed": len(kept),
            "answer_texts": sum(1 for p in kept if is_answer_text(p)),
            "embed_seconds": round(embedded - started, 2),
            "index_seconds": round(time.perf_counter() - embedded, 2),
            "device": embedder.device,
        }
        coverage = np.where(readable[deduped.keep], 1.0, 0.0) if len(kept) else np.zeros(0)
        poorly_read = needs_lexical(coverage, config.lexical_min_coverage, config.lexical_min_share)
        multilingual = None
        if config.multilingual == "on" or (config.multilingual == "auto" and poorly_read):
            encoder = sentence_encoder.load(config.multilingual_encoder)
            if encoder is not None:
                multilingual = MultilingualView.build(encoder, ids, [fold(p.question) for p in kept], config)
                sample = sample_at_most(intent_examples, config.head_intent_examples_max)
                multilingual.set_intent_examples([fold(t) for t, _ in sample], [i for _, i in sample])
                multilingual.set_entries(dict(zip(ids.tolist(), kept)), refit=True)
        lexical = None
        if config.lexical == "on" or (config.lexical == "auto" and poorly_read and multilingual is None):
            lexical = LexicalScorer.build(ids, [fold(p.question) for p in kept])
        joint = None
        if config.answer_head > 0:
            encoder = sentence_encoder.load(config.multilingual_encoder)
            if encoder is not None:
                joint = JointHead.build(encoder, ids, [fold(p.question) for p in kept], config)
                sample = sample_at_most(sample_per_intent([(fold(t), i) for t, i in intent_examples if t and t.strip()],
                                                          config.answer_head_intent_examples), config.head_intent_examples_max)
                if sample:
                    texts = [t for t, _ in sample]
                    joint.set_intent_examples(embedder.encode(texts, config.batch_size, progress=False), texts, [i for _, i in sample])
                joint.fit(index_vectors, dict(zip(ids.tolist(), kept)))
        stats["joint_head"] = joint.name if joint is not None and joint.head is not None else None
        stats["lexical"] = lexical is not None
        stats["multilingual"] = multilingual.name if multilingual is not None else None
        stats["multilingual_head"] = multilingual is not None and multilingual.head is not None
        stats["questions_poorly_read"] = round(float((coverage < config.lexical_min_coverage).mean()), 4)
        index = cls(embedder, index_vectors, dict(zip(ids.tolist(), kept)), config, next_id=len(kept), stats=stats, lexical=lexical,
                    multilingual=multilingual, joint=joint)
        index.merges = deduped.merges
        logger.info("Built %s index of %d Q&A pairs (%d merged)", index.kind, len(index), len(deduped.merges))
        return index

    # ----------------------------------------------------------------- changes
    def add(self, pairs: Sequence[QAPair], progress: bool = True) -> AddResult:
        """Adds pairs without rebuilding, de-duplicated against each other and against the index."""
        pairs = [p for p in pairs if not is_answer_text(p)]
        if not pairs:
            return AddResult(0, 0)
        if self.config.index_answers:
            indexed = {normalize_text(p.answer) for p in self.pairs.values() if is_answer_text(p)}
            pairs = pairs + [e for e in answer_text_entries(pairs) if normalize_text(e.answer) not in indexed]
        new_vectors = self.embedder.encode([self._fold(p.question) for p in pairs], self.config.batch_size, progress=None if progress else False)
        related = self._related_entries(pairs)
        candidates = [self.pairs[v] for v in related] + list(pairs)
        deduped = find_duplicates(
            candidates,
            np.vstack([self.vectors.reconstruct(np.asarray(related, dtype=np.int64)), new_vectors]),
            self.config.dedupe_threshold,
            locked=[True] * len(related) + [False] * len(pairs),
            readable=self.embedder.coverage([self._fold(p.question) for p in candidates]) >= self.config.lexical_min_coverage,
        )
        keep = set(deduped.keep)
        replaced = [related[i] for i in range(len(related)) if i not in keep]
        replaced_pairs = [self.pairs[v] for v in replaced]
        self._remove(replaced)
        new_rows = [i - len(related) for i in deduped.keep if i >= len(related)]
        ids = np.arange(self.next_id, self.next_id + len(new_rows), dtype=np.int64)
        self.vectors.add(new_vectors[new_rows], ids, progress=progress)
        if self.lexical is not None:
            self.lexical.add(ids, [self._fold(pairs[row].question) for row in new_rows])
        if self.multilingual is not None:
            self.multilingual.add(ids, [self._fold(pairs[row].question) for row in new_rows])
        if self.joint is not None:
            self.joint.add(ids, [self._fold(pairs[row].question) for row in new_rows])
        self.next_id += len(new_rows)
        for vector_id, row in zip(ids.tolist(), new_rows):
            self._insert(vector_id, pairs[row])
        kind = choose_kind(self.config, self.entries)
        if self.config.kind == "auto" and kind != self.vectors.kind:
            logger.info("Index has %d entries: moving it from %s to %s", self.entries, self.vectors.kind, kind)
            self.vectors = self.vectors.rebuilt(kind, self.config, progress=progress)
        self._reindex_orphaned_answers()
        self._refit_head()
        return AddResult(
            added=sum(1 for row in new_rows if not is_answer_text(pairs[row])),
            replaced=sum(1 for pair in replaced_pairs if not is_answer_text(pair)),
            merges=deduped.merges,
        )

    def delete(self, ids: Iterable[str]) -> int:
        """Removes every entry filed under these pair ids; returns how many. Unknown ids change nothing."""
        ids = list(dict.fromkeys(ids))
        unknown = [i for i in ids if not self._by_id.get(i)]
        if unknown:
            raise RetrievalError(f"No entry with id {', '.join(map(repr, unknown))} in the index")
        vector_ids = [v for i in ids for v in self._by_id[i]]
        removed = sum(1 for v in vector_ids if not is_answer_text(self.pairs[v]))
        self._remove(vector_ids)
        self._reindex_orphaned_answers()
        self._refit_head()
        return removed

    def _refit_head(self) -> None:
        """The answer heads (the multilingual view's, the joint one) learn the entries as they are now."""
        if self.multilingual is not None:
            self.multilingual.set_entries(self.pairs, refit=True)
            self.stats["multilingual_head"] = self.multilingual.head is not None
        if self.joint is not None:
            self.joint.fit(self.vectors, self.pairs)
            self.stats["joint_head"] = self.joint.name if self.joint.head is not None else None

    def _reindex_orphaned_answers(self) -> None:
        """Keeps answer-text entries in step with the questions: one per answer that still has questions."""
        if not self.config.index_answers:
            return
        questions = {normalize_text(p.answer): p for p in self.pairs.values() if not is_answer_text(p)}
        entries = {normalize_text(p.answer): v for v, p in self.pairs.items() if is_answer_text(p)}
        self._remove([v for key, v in entries.items() if key not in questions])
        missing = answer_text_entries([p for key, p in questions.items() if key not in entries])
        if missing:
            ids = np.arange(self.next_id, self.next_id + len(missing), dtype=np.int64)
            self.vectors.add(self.embedder.encode([self._fold(p.question) for p in missing], self.config.batch_size, progress=False), ids, progress=False)
            if self.lexical is not None:
                self.lexical.add(ids, [self._fold(p.question) for p in missing])
            if self.multilingual is not None:
                self.multilingual.add(ids, [self._fold(p.question) for p in missing])
            if self.joint is not None:
                self.joint.add(ids, [self._fold(p.question) for p in missing])
            self.next_id += len(missing)
            for vector_id, pair in zip(ids.tolist(), missing):
                self._insert(vector_id, pair)

    # ------------------------------------------------------------------ search
    def search(self, queries: Queries, k: int = 5, multilingual_vectors: Optional[np.ndarray] = None) -> List[SearchResult]:
        """Per query: the k best matched questions (`hits`) and the k best answers (`answers`).

        Takes texts, query vectors (normalised here; their `query` is None) or
        `QueryVectors` from `encode_queries`.
        A blank question gets no results. `multilingual_vectors`: the queries'
        vectors from the multilingual encoder when the caller has them already
        (the intent classifier computed them: one encoder pass per message); the
        joint answer head (retrieval/joint_head.py) takes them too.
        """
        texts, vectors, coverage = self._query_vectors(queries)
        if not len(vectors) or not self.pairs:
            return [SearchResult(t, [], []) for t in texts]
        candidates = max(k, self.config.candidates)
        scores, ids = self.vectors.search(vectors, candidates)
        # Weight of the main embedding's score per query: 1.0 unless a second view exists and the tokenizer reads the query poorly.
        second_view = self.multilingual is not None or self.lexical is not None
        weights = transformer_weight(coverage) if second_view and coverage is not None else np.ones(len(texts))
        # Share of the joint answer head in the scores of queries the main model reads; it needs their multilingual vectors.
        head_share = self.config.answer_head if self.joint is not None and self.joint.head is not None else 0.0
        if multilingual_vectors is None and all(t is not None for t in texts):
            if self.multilingual is not None and (weights < 1.0).any():
                multilingual_vectors = self.multilingual.encode([self._fold(t) for t in texts])
            elif head_share > 0 and (weights >= 1.0).any():
                multilingual_vectors = self.joint.encode([self._fold(t) for t in texts])
        if multilingual_vectors is None:
            head_share = 0.0
        results = []
        for row, (text, row_scores, row_ids) in enumerate(zip(texts, scores, ids)):
            if text is not None and not text.strip():
                results.append(SearchResult(text, [], []))
                continue
            dense = {int(i): float(s) for s, i in zip(row_scores, row_ids) if i >= 0}
            # Answer texts weigh in on the main view's cosines only: the second view's blended scores (its answer head)
            # are no cosine of the answer's words (Chinese held-out top-1 0.810 -> 0.770 when they did).
            answer_text_weight = self.config.answer_text_weight if weights[row] >= 1.0 and self._answer_entry else 0.0
            if answer_text_weight > 0:
                dense = self._with_answer_texts(vectors[row], dense)
            headed = weights[row] >= 1.0 and head_share > 0
            if weights[row] >= 1.0:
                scored = self._with_head(vectors[row], multilingual_vectors[row], dense, head_share) if headed else dense
            elif self.multilingual is not None:
                other = self.multilingual.scores(multilingual_vectors[row], candidates, also=list(dense),
                                                 language=detect_language(text) if text is not None else None)
                scored = self._blend(vectors[row], dense, weights[row], other)
            else:
                scored = self._blend(vectors[row], dense, weights[row], self.lexical.scores(self._fold(text), candidates, also=list(dense)))
            hits = [Hit(score, self.pairs[i]) for i, score in sorted(scored.items(), key=lambda item: -item[1])]
            answers = group_by_answer(hits, self.config.answer_bonus, answer_text_weight)[:k]
            if headed:
                cosines = group_by_answer([Hit(score, self.pairs[i]) for i, score in dense.items()], self.config.answer_bonus, answer_text_weight)
                by_answer = {normalize_text(a.answer): a.score for a in cosines}
                for answer in answers:
                    answer.cosine = by_answer.get(normalize_text(answer.answer))
            results.append(SearchResult(text, hits[:k], answers, second_view=bool(weights[row] < 1.0)))
        return results

    def _fold(self, text: Optional[str]) -> Optional[str]:
        return fold_query(text, self.config)

    def _with_answer_texts(self, vector: np.ndarray, dense: Dict[int, float]) -> Dict[int, float]:
        """`dense` plus the answer-text entries of the answers its questions have (see IndexConfig.answer_text_weight)."""
        wanted = {self._answer_entry.get(normalize_text(self.pairs[i].answer)) for i in dense}
        missing = [i for i in wanted if i is not None and i not in dense]
        if not missing:
            return dense
        scores = self.vectors.reconstruct(np.asarray(missing, dtype=np.int64)) @ vector
        return {**dense, **dict(zip(missing, scores.tolist()))}

    def _with_head(self, vector: np.ndarray, view_vector: np.ndarray, dense: Dict[int, float], share: float) -> Dict[int, float]:
        """(1 - share) * cosine + share * P(the entry's answer) from the joint head (see retrieval/joint_head.py)."""
        probabilities = self.joint.probabilities(vector, view_vector)
        return {i: (1.0 - share) * score + share * probabilities.get(answer_key(self.pairs[i]), 0.0) for i, score in dense.items()}

    def _blend(self, vector: np.ndarray, dense: Dict[int, float], weight: float,
               other_scores: Tuple[Dict[int, float], Dict[int, float]]) -> Dict[int, float]:
        """w * main cosine + (1 - w) * the second view's cosine (multilingual or n-gram) over both candidate lists.

        `other_scores`: the second view's (best entries, scores of the main view's candidates).
        """
        best, of_dense = other_scores
        other = {**of_dense, **best}
        missing_dense = [i for i in other if i not in dense]
        if missing_dense:
            dense = {**dense, **dict(zip(missing_dense, (self.vectors.reconstruct(np.asarray(missing_dense)) @ vector).tolist()))}
        return {i: weight * dense[i] + (1.0 - weight) * other.get(i, 0.0) for i in dense}

    # ------------------------------------------------------------- persistence
    def save(self, directory: Union[str, Path], extras: Optional[Dict[str, object]] = None) -> Path:
        """Writes the index directory atomically (HNSW tombstones compacted first); `extras`: JSON files kept with it."""
        self.vectors = self.vectors.compacted(self.config)
        stored = StoredIndex(self.embedder, self.vectors, self.pairs, self.config, self.next_id, self.stats,
                             self.created_at, self.lexical, self.multilingual, dict(extras or {}), self.joint)
        self.created_at = save_index(stored, Path(directory))
        return Path(directory)

    @classmethod
    def load(cls, directory: Union[str, Path], model: Optional[str] = None, embedder: Optional[Embedder] = None, device: str = "auto") -> "QAIndex":
        """Loads a saved index to serve; `model` or `embedder` must be the model it was built with."""
        return cls.from_stored(cls.read(directory, model, embedder, device))

    @staticmethod
    def read(directory: Union[str, Path], model: Optional[str] = None, embedder: Optional[Embedder] = None, device: str = "auto") -> StoredIndex:
        """The directory's parts, extras included (threads set once for serving here, never per query)."""
        runtime.configure()
        stored = load_index(Path(directory), model=model, embedder=embedder, device=device)
        runtime.set_threads(runtime.inference_threads())
        return stored

    @classmethod
    def from_stored(cls, stored: StoredIndex) -> "QAIndex":
        return cls(stored.embedder, stored.vectors, stored.pairs, stored.config, stored.next_id, stored.stats,
                   stored.created_at, lexical=stored.lexical, multilingual=stored.multilingual, joint=stored.joint)

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        """Stored questions (answer-text entries not counted; see `entries`)."""
        return len(self.pairs) - self._answer_texts

    @property
    def entries(self) -> int:
        """Vectors in the index: questions plus answer-text entries."""
        return len(self.pairs)

    def describe(self) -> str:
        extra = f" + {self._answer_texts} answer texts" if self._answer_texts else ""
        return f"{len(self)} questions{extra}"

    @property
    def query_view_encoder(self) -> Optional[str]:
        """The encoder whose query vectors `search` takes as `multilingual_vectors` (None: it takes none)."""
        view = self.multilingual if self.multilingual is not None else self.joint
        return view.name if view is not None else None

    @property
    def kind(self) -> str:
        return self.vectors.kind

    # --------------------------------------------------------------- internals
    def encode_queries(self, texts: Sequence[str]) -> QueryVectors:
        """The query side of `search` alone (one encoder pass): `search` takes the result as its queries."""
        return QueryVectors(*self._query_vectors(list(texts)))

    def _query_vectors(self, queries: Queries):
        if isinstance(queries, QueryVectors):
            return list(queries.texts), queries.vectors, queries.coverage
        if isinstance(queries, np.ndarray):
            vectors = np.atleast_2d(queries).astype(np.float32)
            if vectors.shape[1] != self.vectors.dimension:
                raise RetrievalError(f"Query vectors have dimension {vectors.shape[1]}, the index {self.vectors.dimension}")
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            return [None] * len(vectors), vectors, None
        texts = [queries] if isinstance(queries, str) else list(queries)
        folded = [self._fold(t) for t in texts]
        if len(texts) <= QUERY_BATCH:
            # The per-message path: one tokenization gives the vectors and the coverage.
            vectors, coverage = self.embedder.encode_queries(folded)
            return texts, vectors, coverage
        vectors = self.embedder.encode(folded, self.config.batch_size, progress=False)
        second_view = self.lexical is not None or self.multilingual is not None
        return texts, vectors, self.embedder.coverage(folded) if second_view else None

    def _related_entries(self, pairs: Sequence[QAPair]) -> List[int]:
        """Entries that can be duplicates of `pairs`: same normalised question or answer."""
        if self._by_text is None:
            self._by_text = defaultdict(set)
            for vector_id, pair in self.pairs.items():
                for key in _text_keys(pair):
                    self._by_text[key].add(vector_id)
        return sorted({v for pair in pairs for key in _text_keys(pair) for v in self._by_text.get(key, ())})

    def _insert(self, vector_id: int, pair: QAPair) -> None:
        self.pairs[vector_id] = pair
        self._answer_texts += is_answer_text(pair)
        if is_answer_text(pair):
            self._answer_entry[normalize_text(pair.answer)] = vector_id
        self._by_id[pair.id].add(vector_id)
        if self._by_text is not None:
            for key in _text_keys(pair):
                self._by_text[key].add(vector_id)

    def _remove(self, vector_ids: Sequence[int]) -> None:
        if not vector_ids:
            return
        self.vectors.remove(vector_ids)
        if self.lexical is not None:
            self.lexical.remove(vector_ids)
        if self.multilingual is not None:
            self.multilingual.remove(vector_ids)
        if self.joint is not None:
            self.joint.remove(vector_ids)
        removed = [self.pairs.pop(v) for v in vector_ids]
        for vector_id, pair in zip(vector_ids, removed):
            self._answer_texts -= is_answer_text(pair)
            if is_answer_text(pair) and self._answer_entry.get(normalize_text(pair.answer)) == vector_id:
                del self._answer_entry[normalize_text(pair.answer)]
            self._by_id[pair.id].discard(vector_id)
            if not self._by_id[pair.id]:
                del self._by_id[pair.id]
            if self._by_text is not None:
                for key in _text_keys(pair):
                    self._by_text[key].discard(vector_id)


def question_vectors(stored: StoredIndex) -> Dict[str, np.ndarray]:
    """A stored index's vectors by the question text they embed (folded as its config folds): `QAIndex.build`'s
    `known_vectors` for an index over the same rows and more, with the same model (every index kind keeps the vectors
    themselves, so they come back exactly)."""
    ids = np.fromiter(stored.pairs, dtype=np.int64, count=len(stored.pairs))
    fold = to_simplified if stored.config.fold_traditional else (lambda text: text)
    return {fold(pair.question): vector for pair, vector in zip(stored.pairs.values(), stored.vectors.reconstruct(ids))}


def _embedded(embedder: Embedder, texts: List[str], known: Dict[str, np.ndarray], batch_size: int, progress: bool) -> np.ndarray:
    """`embedder.encode(texts)`, taking the vectors of texts in `known` from there."""
    missing = list(dict.fromkeys(t for t in texts if t not in known))
    if len(missing) == len(texts):
        return embedder.encode(texts, batch_size, progress=None if progress else False)
    found = dict(zip(missing, embedder.encode(missing, batch_size, progress=None if progress else False)))
    return np.ascontiguousarray(np.stack([known[t] if t in known else found[t] for t in texts]), dtype=np.float32)


def _text_keys(pair: QAPair):
    return ("q:" + normalize_text(pair.question), "a:" + normalize_text(pair.answer))


def fold_query(text: Optional[str], config: IndexConfig) -> Optional[str]:
    """What is embedded of a query: undecodable characters replaced, Traditional folded to Simplified."""
    if not text:
        return text
    text = clean_text(text)
    return to_simplified(text) if config.fold_traditional else text


def build(pairs: Sequence[QAPair], config: Optional[IndexConfig] = None, embedder: Optional[Embedder] = None, progress: bool = True,
          intent_examples: Sequence[Tuple[str, str]] = ()) -> QAIndex:
    return QAIndex.build(pairs, config, embedder=embedder, progress=progress, intent_examples=intent_examples)
