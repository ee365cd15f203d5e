"""One base for kefu's option classes: built from user-written dicts, validated when built.

Subclasses are dataclasses that set `error` (the library's error class) and
`what` (how messages name them), and check their values in `validate`, which
runs on every construction, `dataclasses.replace` included: an invalid option
object cannot exist.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Dict, Type, TypeVar

from kefu.core.errors import OptionsError

T = TypeVar("T", bound="Options")


@dataclasses.dataclass
class Options:
    error: ClassVar[Type[Exception]] = OptionsError
    what: ClassVar[str] = "option"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raises `self.error` for a value out of range; subclasses add their checks."""

    @classmethod
    def from_dict(cls: Type[T], values: Dict[str, Any] | None) -> T:
        """`cls(**values)` that names unknown keys: a typo must not be silently ignored."""
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise cls.error(f"Unknown {cls.what} option(s): {', '.join(unknown)}. Known: {', '.join(sorted(known))}")
        try:
            return cls(**values)
        except TypeError as exc:  # e.g. a nested mapping where a number belongs
            raise cls.error(f"Invalid {cls.what} options: {exc}") from exc

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def fail(self, message: str) -> None:
        raise self.error(message)

    def require(self, condition: bool, message: str) -> None:
        if not condition:
            raise self.error(message)
