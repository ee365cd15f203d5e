"""Building option dataclasses from user-written dicts (config.yml, --config JSON)."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Type, TypeVar

T = TypeVar("T")


def options_from_dict(cls: Type[T], values: Dict[str, Any], error: Type[Exception], what: str) -> T:
    """`cls(**values)` that names unknown keys (a typo must not be silently ignored), then validates."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise error(f"Unknown {what} option(s): {', '.join(unknown)}. Known: {', '.join(sorted(known))}")
    options = cls(**values)
    options.validate()
    return options
