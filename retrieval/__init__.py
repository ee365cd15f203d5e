"""Retrieval over historical Q&A: embed past questions, find the nearest ones, answer with theirs.

Public API::

    from retrieval import KBConfig, KnowledgeBase, QAIndex, IndexConfig, adapt, build, evaluate, load_qa

    pairs = load_qa(["data/qa/history.csv", "data/nlu", "domain.yml"])
    kb = KnowledgeBase.build(pairs, KBConfig(adapt=True))    # index + fitted answer decision
    kb.save("models/kb"); kb = KnowledgeBase.load("models/kb")
    kb.respond(["where is my parcel?"], intents=[None], confidences=[0.0])[0].match   # high / low / none

    index = build(pairs, IndexConfig(kind="auto"))            # the index alone
    index.search("where is my parcel?", k=5)[0].answers[0].answer
    index.add(more_pairs); index.delete(["faq/ask_shipping"]); index.save("models/kb")
    evaluate(index, load_qa(["data/qa/test.csv"]))["top1_accuracy"]

Library entry points set up the process themselves (`kefu.core.runtime`).
Nothing here imports Rasa except the loaders of Rasa NLU / retrieval-intent data.
"""

from retrieval.adapt import AdaptConfig, AdaptResult, adapt
from retrieval.config import IndexConfig
from retrieval.dedupe import Merge, find_duplicates
from retrieval.embedder import Embedder
from retrieval.errors import ModelLoadError, QADataError, RetrievalError
from retrieval.evaluate import evaluate
from retrieval.index import AddResult, QAIndex, build
from retrieval.knowledge_base import KBConfig, KnowledgeBase, fit_decision
from retrieval.loaders import load_intent_examples, load_qa
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
    "KBConfig",
    "KnowledgeBase",
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
    "find_duplicates",
    "fit_decision",
    "load_intent_examples",
    "load_qa",
]
