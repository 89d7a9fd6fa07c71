"""Where the client finds its server and key when it is not told: TRAINLAB_URL and
TRAINLAB_API_KEY, read here and nowhere else. (The server's own settings are not used: the
client runs where no server is installed.)"""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_URL = "http://127.0.0.1:8000"
URL_ENV = "TRAINLAB_URL"
KEY_ENV = "TRAINLAB_API_KEY"


@dataclass(frozen=True)
class ClientConfig:
    base_url: str
    api_key: str | None

    @classmethod
    def resolve(cls, base_url: str | None, api_key: str | None) -> ClientConfig:
        """What was given, else the environment, else the default of `trainlab serve`."""
        url = base_url or os.environ.get(URL_ENV) or DEFAULT_URL
        key = api_key if api_key is not None else os.environ.get(KEY_ENV) or None
        return cls(base_url=url.rstrip("/"), api_key=key or None)
