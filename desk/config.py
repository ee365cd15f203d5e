"""desk.yml as one validated object: where the desk listens, how it reaches Rasa, limits and texts.

Read once at start-up; the handoff action reads the `hours` section of the same
file through bot.actions.opening_hours, so both agree on when people answer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

from bot.actions.opening_hours import PROJECT_ROOT, HandoffSettings, config_path, read_config
from kefu.core.errors import KefuError


class DeskConfigError(KefuError):
    """desk.yml is malformed."""


def _section(data: Mapping[str, Any], name: str) -> Dict[str, Any]:
    value = data.get(name) or {}
    if not isinstance(value, dict):
        raise DeskConfigError(f"desk.yml: `{name}` must be a mapping")
    return dict(value)


@dataclass
class DeskConfig:
    root: Path = PROJECT_ROOT
    host: str = "127.0.0.1"
    port: int = 8090
    secure_cookies: bool = False
    session_max_age_s: int = 43200
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_token_env: str = "KEFU_API_TOKEN"
    rasa_token_file: str = "var/secrets/api-token"
    rasa_timeout_s: float = 10.0
    db: str = "var/desk.db"
    orders_db: Optional[str] = None
    secret_file: str = "var/secrets/desk-secret"
    max_reply_chars: int = 2000
    login_attempts: int = 5
    login_window_s: float = 300.0
    socketio_redis_url: Optional[str] = None
    socketio_channel: str = "socketio"
    socketio_event: str = "bot_uttered"
    poll_interval_s: float = 0.5
    texts: Dict[str, Dict[str, str]] = field(default_factory=dict)
    review_file: str = "var/retrain/review.csv"
    kb_file: str = "data/qa/desk_answers.csv"
    domain: str = "domain.yml"
    handoff: HandoffSettings = field(default_factory=lambda: HandoffSettings.load(Path("/nonexistent")))

    def path(self, value: Union[str, Path]) -> Path:
        path = Path(value)
        return path if path.is_absolute() else self.root / path

    def text(self, name: str, language: Optional[str]) -> str:
        options = self.texts.get(name) or {}
        return options.get(language or "en") or options.get("en") or ""

    def rasa_token(self) -> Optional[str]:
        """The Rasa HTTP API token: the environment variable, else the file `kefu run` writes."""
        token = os.environ.get(self.rasa_token_env)
        if token:
            return token.strip()
        path = self.path(self.rasa_token_file)
        if path.exists():
            return path.read_text(encoding="utf-8").strip() or None
        return None

    @classmethod
    def load(cls, path: Union[str, Path, None] = None, root: Union[str, Path, None] = None,
             **overrides: Any) -> "DeskConfig":
        path = Path(path) if path else config_path()
        data = read_config(path)
        server, rasa, limits = _section(data, "server"), _section(data, "rasa"), _section(data, "limits")
        sio, review = _section(data, "socketio"), _section(data, "review")
        try:
            config = cls(
                root=Path(root) if root else PROJECT_ROOT,
                host=str(server.get("host", cls.host)),
                port=int(server.get("port", cls.port)),
                secure_cookies=bool(server.get("secure_cookies", False)),
                session_max_age_s=int(server.get("session_max_age_s", cls.session_max_age_s)),
                rasa_url=str(rasa.get("url", cls.rasa_url)).rstrip("/"),
                rasa_token_env=str(rasa.get("token_env", cls.rasa_token_env)),
                rasa_token_file=str(rasa.get("token_file", cls.rasa_token_file)),
                rasa_timeout_s=float(rasa.get("timeout_s", cls.rasa_timeout_s)),
                db=str(data.get("db", cls.db)),
                orders_db=data.get("orders_db"),
                max_reply_chars=int(limits.get("max_reply_chars", cls.max_reply_chars)),
                login_attempts=int(limits.get("login_attempts", cls.login_attempts)),
                login_window_s=float(limits.get("login_window_s", cls.login_window_s)),
                socketio_redis_url=sio.get("redis_url"),
                socketio_channel=str(sio.get("channel", cls.socketio_channel)),
                socketio_event=str(sio.get("event", cls.socketio_event)),
                poll_interval_s=float(data.get("poll_interval_s", cls.poll_interval_s)),
                texts={k: dict(v or {}) for k, v in _section(data, "texts").items()},
                review_file=str(review.get("file", cls.review_file)),
                kb_file=str(review.get("kb_file", cls.kb_file)),
                domain=str(review.get("domain", cls.domain)),
                handoff=HandoffSettings.load(path),
            )
        except (TypeError, ValueError) as exc:
            raise DeskConfigError(f"{path}: {exc}") from exc
        for key, value in overrides.items():
            if value is not None:
                setattr(config, key, value)
        if config.max_reply_chars < 1 or config.poll_interval_s <= 0:
            raise DeskConfigError(f"{path}: limits.max_reply_chars and poll_interval_s must be positive")
        return config
