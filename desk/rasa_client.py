"""The Rasa server's HTTP API, as the desk uses it: read a tracker, append events (with the token).

Appending goes through `POST /conversations/{id}/tracker/events`, which takes the
conversation's lock, so an agent's reply never interleaves with a message the
bot is processing. With `output_channel=latest&execute_side_effects=true` Rasa
also sends appended `bot` events through the output channel of the customer's
latest input channel (rasa/server.py `append_events`, `_get_output_channel`).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional
from urllib.parse import quote

import aiohttp


class RasaError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(f"Rasa server: HTTP {status}: {message}")
        self.status = status


class RasaClient:
    def __init__(self, url: str, token: Optional[str], timeout_s: float = 10.0):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: Optional[aiohttp.ClientSession] = None

    def _params(self, **extra: str) -> Dict[str, str]:
        params = dict(extra)
        if self.token:
            params["token"] = self.token
        return params

    async def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _conversation(self, conversation_id: str) -> str:
        return f"{self.url}/conversations/{quote(conversation_id, safe='')}/tracker"

    async def tracker(self, conversation_id: str) -> Dict[str, Any]:
        session = await self.session()
        async with session.get(self._conversation(conversation_id),
                               params=self._params(include_events="ALL")) as response:
            return await self._answer(response)

    async def append(self, conversation_id: str, events: List[Dict[str, Any]], deliver: bool) -> Dict[str, Any]:
        """Appends `events`; `deliver`: Rasa sends the `bot` events through the latest input channel's output."""
        params = self._params(output_channel="latest", execute_side_effects="true") if deliver else self._params()
        session = await self.session()
        async with session.post(self._conversation(conversation_id) + "/events", params=params,
                                json=events) as response:
            return await self._answer(response)

    @staticmethod
    async def _answer(response: aiohttp.ClientResponse) -> Dict[str, Any]:
        if response.status != 200:
            raise RasaError(response.status, (await response.text())[:300])
        return await response.json()
