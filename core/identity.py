"""Who is asking: the caller of any entry point (an HTTP request, a CLI command), as the
services see it. How a caller proves who it is (API keys over HTTP) is the entry point's
business (api/auth.py); what follows from it (ownership, quotas) is the services'."""

from __future__ import annotations

from dataclasses import dataclass

from core.keys import Role

__all__ = ["ANYONE", "Principal", "Role"]


@dataclass(frozen=True)
class Principal:
    """The caller: an account with a role, or anyone on an open server."""

    name: str | None
    role: Role
    key_id: str | None

    @property
    def anonymous(self) -> bool:
        return self.key_id is None

    def can_change(self, owner: str | None) -> bool:
        """Members change their own things; admins, and anyone on an open server, all."""
        if self.role is Role.admin:
            return True
        return self.role is Role.member and owner is not None and owner == self.name


ANYONE = Principal(name=None, role=Role.admin, key_id=None)
