"""Retrieval over historical Q&A: embed past questions, find the nearest ones, answer with theirs.

Public API::

    from retrieval import IndexConfig, QAIndex, adapt, build, evaluate, load_qa

    pairs = load_qa(["data/qa/history.csv", "data/nlu", "domain.yml"])
    index = build(pairs, IndexConfig(kind="auto"))
    index.save("models/kb")
    index = QAIndex.load("models/kb")
    best = index.search("where is my parcel?", k=5)[0].answers[0]
    best.answer, best.score, best.pair.question
    index.add(more_pairs); index.delete(["faq/ask_shipping"]); index.save("models/kb")
    evaluate(index, load_qa(["data/qa/test.csv"]))["top1_accuracy"]
    result = adapt(pairs)          # fine-tuned model, kept only if it retrieves better
    build(pairs, embedder=result.embedder)

Nothing here imports Rasa except the loader of Rasa retrieval-intent data.
"""

import kefu.base_model  # noqa: F401  (sets offline / no-TF defaults before sentence-transformers loads)
from retrieval.adapt import AdaptConfig, AdaptResult, adapt
from retrieval.config import IndexConfig
from retrieval.dedupe import Merge
from retrieval.embedder import Embedder
from retrieval.errors import ModelLoadError, QADataError, RetrievalError
from retrieval.evaluate import evaluate
from retrieval.index import AddResult, QAIndex, build
from retrieval.loaders import load_qa
from retrieval.qa import QAPair
from retrieval.ranking import AnswerHit, Hit, SearchResult

__all__ = [
    "AdaptConfig",
    "AdaptResult",
    "AddResult",
    "AnswerHit",
    "Embedder",
    "Hit",
    "IndexConfig",
    "Merge",
    "ModelLoadError",
    "QADataError",
    "QAIndex",
    "QAPair",
    "RetrievalError",
    "SearchResult",
    "adapt",
    "build",
    "evaluate",
    "load_qa",
]
