"""Errors of the intent classifier library."""

from kefu.core.errors import KefuError, ModelLoadError


class FinetuneError(KefuError):
    """Base class for errors raised by the intent classifier library."""


class DataError(FinetuneError):
    """Training or evaluation data that cannot be used (broken YAML, no intents...)."""


__all__ = ["DataError", "FinetuneError", "ModelLoadError"]
