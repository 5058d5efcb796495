"""API tokens and who a request acts as."""

from __future__ import annotations

from typing import Literal

from pbx_connector.models.base import Model

Role = Literal["admin", "viewer"]


class TokenView(Model):
    """A token as listed: never the token itself, only its first characters."""

    id: int
    name: str
    prefix: str
    role: Role
    owner: str
    created: str
    expires: str | None
    last_used: str | None
    revoked: str | None
    #: Whether it would be accepted now (not revoked or expired, owner enabled with
    #: the role).
    active: bool


class NewToken(Model):
    """A token just created: the only time its secret is shown."""

    token: str
    view: TokenView


class Principal(Model):
    """Who a request acts as, and what it may do."""

    username: str
    role: Role
    #: The token's id, or None for a web session.
    token_id: int | None = None

    @property
    def can_write(self) -> bool:
        return self.role == "admin"
