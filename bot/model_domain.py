"""Does a model archive fit the action server? Its domain's custom actions against what the action server serves.

A model trained with another domain (another project's, an older or newer
version of this one) names custom actions the running action server may not
have: loaded, it would answer "I could not do that" in the middle of forms.
`check(archive, action_url)` reads only the archive's domain
(`components/domain_provider/domain.yml`, no weights) and the action server's
`GET /actions` (rasa-sdk), and says what is missing. Used where a model enters:
the Rasa server before it swaps models (bot/durability.py: PUT /model and
model-server pulls), `kefu cluster rollout`, and the retrain's promotion.

Light on purpose (tarfile, yaml, urllib; no Rasa): the CLI imports it.
"""

from __future__ import annotations

import json
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Set
from urllib.parse import urlsplit, urlunsplit

import yaml

DOMAIN_MEMBER = "components/domain_provider/domain.yml"


class ModelDomainMismatch(RuntimeError):
    """The archive needs custom actions the action server does not serve."""


@dataclass
class DomainCheck:
    """`missing`: the archive's custom actions the action server lacks; `checked` False when it could not be asked."""

    archive: str
    action_url: Optional[str]
    checked: bool
    missing: List[str] = field(default_factory=list)
    note: str = ""

    @property
    def ok(self) -> bool:
        return not self.missing

    def reason(self) -> str:
        if self.missing:
            return (f"the model {Path(self.archive).name} was trained with another domain: it needs custom action(s) "
                    f"{', '.join(self.missing)} that the action server at {self.action_url} does not serve; "
                    "deploy the matching action server first, or roll out a model trained with this project's domain")
        return self.note or "ok"


def archive_actions(archive: Path) -> Set[str]:
    """The custom actions (`actions:` of the domain) of a Rasa model archive; ValueError when it has no readable domain."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            # Streamed: the domain comes first in Rasa's archives, the weights need not be decompressed.
            member = next((m for m in tar if m.name.lstrip("./").lstrip("/") == DOMAIN_MEMBER), None)
            if member is None:
                raise ValueError(f"{archive} holds no {DOMAIN_MEMBER}: not a Rasa 3 model archive")
            handle = tar.extractfile(member)
            domain = yaml.safe_load(handle.read().decode("utf-8")) if handle else None
    except (OSError, tarfile.TarError, EOFError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the domain of {archive}: {exc}") from exc
    actions = (domain or {}).get("actions") or []
    # Domain files list actions as names, or as {name: {send_domain: ...}}.
    return {next(iter(a)) if isinstance(a, dict) else str(a) for a in actions}


def actions_url(action_endpoint_url: str) -> str:
    """rasa-sdk's action list next to its webhook: http://host:5055/webhook -> http://host:5055/actions."""
    parts = urlsplit(action_endpoint_url)
    path = parts.path.rstrip("/")
    base = path[: -len("/webhook")] if path.endswith("/webhook") else path
    return urlunsplit(parts._replace(path=base + "/actions", query="", fragment=""))


def served_actions(action_endpoint_url: str, timeout_s: float = 5.0) -> Set[str]:
    """The action names the action server serves; OSError/ValueError when it cannot be asked."""
    with urllib.request.urlopen(actions_url(action_endpoint_url), timeout=timeout_s) as response:
        body = json.loads(response.read().decode("utf-8"))
    if not isinstance(body, list):
        raise ValueError("the action server's /actions is not a list")
    return {str(item.get("name")) for item in body if isinstance(item, dict)}


def check(archive: Path, action_endpoint_url: Optional[str], timeout_s: float = 5.0) -> DomainCheck:
    """Compares the archive's custom actions with the action server's.

    Not an error (checked=False, with a note): an unreachable action server, and an
    archive whose domain cannot be read (a corrupt archive is Rasa's loading to refuse).
    """
    try:
        needed = archive_actions(Path(archive))
    except ValueError as exc:
        return DomainCheck(str(archive), action_endpoint_url, False, note=f"{exc}: not checked")
    if not needed:
        return DomainCheck(str(archive), action_endpoint_url, True, note="the model needs no custom action")
    if not action_endpoint_url:
        return DomainCheck(str(archive), None, False, note="no action endpoint configured: not checked")
    try:
        served = served_actions(action_endpoint_url, timeout_s)
    except (OSError, ValueError, urllib.error.URLError) as exc:
        return DomainCheck(str(archive), action_endpoint_url, False,
                           note=f"the action server at {action_endpoint_url} did not answer ({exc}): not checked")
    return DomainCheck(str(archive), action_endpoint_url, True, sorted(needed - served))


def require_match(archive: Path, action_endpoint_url: Optional[str], timeout_s: float = 5.0) -> DomainCheck:
    """`check`, raising ModelDomainMismatch (with the one-line reason) when actions are missing."""
    result = check(archive, action_endpoint_url, timeout_s)
    if result.missing:
        raise ModelDomainMismatch(result.reason())
    return result
