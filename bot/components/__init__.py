"""Rasa graph components, named in config.yml as `bot.components.<Class>`."""

from bot.components.answer_retriever import FaissAnswerRetriever
from bot.components.intent_classifier import TransformerIntentClassifier

__all__ = ["FaissAnswerRetriever", "TransformerIntentClassifier"]
