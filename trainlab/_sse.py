"""Server-Sent Events, read line by line: what GET /experiments/{id}/events sends."""

from __future__ import annotations

import json

from trainlab.models import Event


class EventParser:
    """Feed it lines; it gives back each complete event. `last_id` is the id to resume from
    (Last-Event-ID), `retry_s` the reconnect delay the server asked for."""

    def __init__(self) -> None:
        self.last_id: int | None = None
        self.retry_s: float | None = None
        self._kind = ""
        self._data: list[str] = []
        self._id: int | None = None

    def feed(self, line: str) -> Event | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: the server's keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._kind = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and value.isdigit():
            self._id = int(value)
        elif name == "retry" and value.isdigit():
            self.retry_s = int(value) / 1000
        return None

    def _dispatch(self) -> Event | None:
        kind, data, event_id = self._kind or "message", self._data, self._id
        self._kind, self._data, self._id = "", [], None
        if event_id is not None:
            self.last_id = event_id
        if not data:
            return None
        payload = json.loads("\n".join(data))
        return Event(kind=kind, data=payload if isinstance(payload, dict) else {}, id=event_id)
