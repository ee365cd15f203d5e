"""Errors of the retrieval library."""

from kefu.core.errors import KefuError, ModelLoadError


class RetrievalError(KefuError):
    """Base class for errors raised by the retrieval library."""


class QADataError(RetrievalError):
    """Q&A data that cannot be used: unreadable file, missing column, empty question..."""


__all__ = ["ModelLoadError", "QADataError", "RetrievalError"]
