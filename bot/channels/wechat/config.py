"""Settings of the WeChat and WeCom channels: credentials.yml keys, else environment variables.

A channel is on when its token is set (WECHAT_TOKEN / WECOM_TOKEN); then the
other required settings must be there too, or startup fails saying which.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any, Dict, Mapping, Optional, Text

from rasa.shared.exceptions import InvalidConfigException

UNSUPPORTED_TEXT = "Sorry, I can only read text messages for now. Please type your question."
ERROR_TEXT = "Sorry, something went wrong on our side. Please try again in a moment."
TOO_FAST_TEXT = "You are sending messages very quickly; please wait a moment and try again."
TOO_LONG_TEXT = "That message is too long for me; please send a shorter one."


@dataclass
class ChannelSettings:
    token: Text
    secret: Text
    api_url: Text
    app_id: Text = ""  # Official Account AppID, or WeCom CorpID
    aes_key: Optional[Text] = None
    agent_id: Optional[int] = None  # WeCom only
    passive_timeout_s: float = 4.0  # WeChat waits 5 s for the answer, then retries
    dedupe_ttl_s: float = 300.0
    max_clock_skew_s: float = 300.0  # 0: accept any timestamp
    welcome_message: Text = "/greet"  # sent to the bot when someone follows the account
    unsupported_text: Text = UNSUPPORTED_TEXT
    error_text: Text = ERROR_TEXT
    too_fast_text: Text = TOO_FAST_TEXT  # over the sender's rate (bot/channels/limits.py)
    too_long_text: Text = TOO_LONG_TEXT


OFFICIAL_ACCOUNT_ENV = {
    "token": "WECHAT_TOKEN",
    "app_id": "WECHAT_APPID",
    "secret": "WECHAT_SECRET",
    "aes_key": "WECHAT_AES_KEY",
    "api_url": "WECHAT_API_URL",
    "passive_timeout_s": "WECHAT_PASSIVE_TIMEOUT_S",
}
WECOM_ENV = {
    "token": "WECOM_TOKEN",
    "app_id": "WECOM_CORPID",
    "secret": "WECOM_SECRET",
    "agent_id": "WECOM_AGENTID",
    "aes_key": "WECOM_AES_KEY",
    "api_url": "WECOM_API_URL",
    "passive_timeout_s": "WECOM_PASSIVE_TIMEOUT_S",
}
ALIASES = {"corp_id": "app_id", "appid": "app_id", "corpid": "app_id", "encoding_aes_key": "aes_key", "agentid": "agent_id"}


def load(credentials: Optional[Dict[Text, Any]], env_names: Mapping[Text, Text], required: tuple,
         default_api_url: Text, environ: Mapping[Text, Text] = os.environ) -> Optional[ChannelSettings]:
    """None when the channel is off (no token); raises InvalidConfigException when half configured."""
    values: Dict[Text, Any] = {key: environ.get(var) for key, var in env_names.items() if environ.get(var)}
    known = {f.name for f in fields(ChannelSettings)}
    for key, value in (credentials or {}).items():
        key = ALIASES.get(key, key)
        if key not in known:
            raise InvalidConfigException(f"unknown WeChat channel setting '{key}' (known: {', '.join(sorted(known))})")
        if value not in (None, ""):
            values[key] = value
    if not values.get("token"):
        return None
    missing = [f"{key} ({env_names.get(key, '-')})" for key in required if not values.get(key)]
    if missing:
        raise InvalidConfigException(f"WeChat channel half configured, missing: {', '.join(missing)}")
    values.setdefault("api_url", default_api_url)
    try:
        for key in ("passive_timeout_s", "dedupe_ttl_s", "max_clock_skew_s"):
            if key in values:
                values[key] = float(values[key])
        if values.get("agent_id") is not None:
            values["agent_id"] = int(values["agent_id"])
    except ValueError as e:
        raise InvalidConfigException(f"WeChat channel setting is not a number: {e}") from None
    if values.get("aes_key") and len(values["aes_key"]) != 43:
        raise InvalidConfigException("EncodingAESKey must be the 43 characters shown in the WeChat admin console")
    if not 0 < values.get("passive_timeout_s", 4.0) < 5:
        raise InvalidConfigException("passive_timeout_s must be between 0 and 5 seconds (WeChat waits 5 s)")
    return ChannelSettings(**values)
