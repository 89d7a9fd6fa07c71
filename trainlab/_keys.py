"""client.keys: API keys, for an admin's key. `Keys` is Client's, `AsyncKeys` AsyncClient's."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

import trainlab._calls as _calls
import trainlab.models as models

if TYPE_CHECKING:
    from trainlab._async import AsyncClient
    from trainlab._sync import Client


class Keys:
    """API keys, for an admin's key: issue (the secret is in this answer only), list, revoke."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(self, name: str, role: models.Role = "member") -> models.IssuedKey:
        return self._c.send(_calls.create_key(name, role))

    def list(self, *, include_revoked: bool = False) -> builtins.list[models.Key]:
        return self._c.send(_calls.list_keys(include_revoked))

    def revoke(self, prefix: str) -> models.Key:
        return self._c.send(_calls.revoke_key(prefix))


class AsyncKeys:
    """API keys, for an admin's key: issue (the secret is in this answer only), list, revoke."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, name: str, role: models.Role = "member") -> models.IssuedKey:
        return await self._c.send(_calls.create_key(name, role))

    async def list(self, *, include_revoked: bool = False) -> builtins.list[models.Key]:
        return await self._c.send(_calls.list_keys(include_revoked))

    async def revoke(self, prefix: str) -> models.Key:
        return await self._c.send(_calls.revoke_key(prefix))
