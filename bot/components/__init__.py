"""Rasa graph components, named in config.yml as `bot.components.<Class>`."""

from bot.components.intent_classifier import TransformerIntentClassifier

__all__ = ["TransformerIntentClassifier"]
