"""Errors shared by kefu's libraries; messages are meant for the person running kefu."""


class KefuError(Exception):
    """Base class of errors a CLI reports as `error: ...` without a traceback."""


class ModelLoadError(KefuError):
    """A model or index directory that is missing, incomplete, corrupt or incompatible."""


class OptionsError(KefuError):
    """An option that is unknown or out of range (config.yml, retrain.yml, --config JSON)."""
