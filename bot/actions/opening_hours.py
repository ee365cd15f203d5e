"""When people answer: the `hours` and presence settings of desk.yml, read by the handoff action and the desk.

The action tells a customer what happens next (a person live, or leave a
message) from these settings and the agents' presence, so both processes must
read them the same way; this module is that one reading. The file is
`KEFU_DESK_CONFIG` or `desk.yml` in the project root; without it the desk is
always open.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = PROJECT_ROOT / "desk.yml"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class HoursError(ValueError):
    """desk.yml's `hours` section is malformed."""


def config_path() -> Path:
    return Path(os.environ.get("KEFU_DESK_CONFIG") or DEFAULT_CONFIG)


def read_config(path: Union[str, Path, None] = None) -> Dict[str, Any]:
    """The whole desk.yml as a mapping ({} when the file does not exist)."""
    path = Path(path) if path else config_path()
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise HoursError(f"{path}: expected a mapping at the top level")
    return data


def _clock(value: Any, what: str) -> time:
    try:
        hours, minutes = str(value).strip().split(":")
        return time(int(hours), int(minutes))
    except (ValueError, TypeError):
        raise HoursError(f"hours.{what}: expected HH:MM, got {value!r}") from None


@dataclass(frozen=True)
class OpeningHours:
    """Open on `days` from `opens` to `closes` (local time in `timezone`); `always` ignores the rest."""

    always: bool = True
    timezone: str = "UTC"
    days: Tuple[str, ...] = DAYS[:5]
    opens: time = time(8, 0)
    closes: time = time(20, 0)
    # What the customer is told, per language ("Mon-Fri 8:00-20:00").
    text: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, section: Optional[Mapping[str, Any]]) -> "OpeningHours":
        if not section or section.get("always"):
            return cls(always=True, text=dict((section or {}).get("text") or {}))
        days = tuple(str(d).lower()[:3] for d in section.get("days", DAYS[:5]))
        unknown = [d for d in days if d not in DAYS]
        if unknown:
            raise HoursError(f"hours.days: unknown day(s) {unknown}; use {', '.join(DAYS)}")
        zone = str(section.get("timezone", "UTC"))
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise HoursError(f"hours.timezone: unknown time zone {zone!r}") from None
        return cls(always=False, timezone=zone, days=days, opens=_clock(section.get("open", "08:00"), "open"),
                   closes=_clock(section.get("close", "20:00"), "close"), text=dict(section.get("text") or {}))

    def is_open(self, now: Optional[datetime] = None) -> bool:
        if self.always:
            return True
        local = (now or datetime.now(ZoneInfo("UTC"))).astimezone(ZoneInfo(self.timezone))
        return DAYS[local.weekday()] in self.days and self.opens <= local.time() < self.closes

    def describe(self, language: str) -> str:
        if language in self.text:
            return self.text[language]
        if self.always:
            return "24/7"
        return f"{'/'.join(d.capitalize() for d in self.days)} {self.opens:%H:%M}-{self.closes:%H:%M} ({self.timezone})"


@dataclass(frozen=True)
class HandoffSettings:
    hours: OpeningHours
    # An agent counts as online while the desk has heard from them within this many seconds.
    presence_timeout_s: float = 45.0

    @classmethod
    def load(cls, path: Union[str, Path, None] = None) -> "HandoffSettings":
        data = read_config(path)
        return cls(OpeningHours.from_config(data.get("hours")), float(data.get("presence_timeout_s", 45)))
