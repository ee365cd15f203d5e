"""Errors with messages meant for the person running kefu."""


class FinetuneError(Exception):
    """Base class for errors raised by the intent classifier library."""


class DataError(FinetuneError):
    """Training or evaluation data that cannot be used (broken YAML, no intents...)."""


class ModelLoadError(FinetuneError):
    """A model directory that is missing, incomplete, corrupt or incompatible."""
