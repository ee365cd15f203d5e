"""Rasa graph components, named in config.yml as `bot.components.<Class>`.

Rasa imports this package before it loads a kefu model's policies: the model-loading saving of
bot.speedups is installed here, so every Rasa command gets it, not only kefu's server.
"""

from bot import speedups
from bot.components.answer_retriever import FaissAnswerRetriever
from bot.components.intent_classifier import TransformerIntentClassifier

speedups.install_model_loading()

__all__ = ["FaissAnswerRetriever", "TransformerIntentClassifier"]
