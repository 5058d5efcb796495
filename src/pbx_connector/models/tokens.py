"""API tokens and who a request acts as."""

from __future__ import annotations

from typing import Literal

from pbx_connector.models.base import Model

#: admin: everything; viewer: every read; lookup: only what a PBX or a phone asks
#: (caller-name lookup, desk-phone directories, password checks); phone: one user's desk
#: phone (the directories and caller-name lookup, with that user's private phonebook and
#: nobody else's).
Role = Literal["admin", "viewer", "lookup", "phone"]


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
    """Who a request acts as, and what it may do. A client that may look up without a
    token (its address is in `lookup_clients`) acts as nobody: username "", role
    `lookup`, no token. A `phone` token acts as the user whose phone it is."""

    username: str
    role: Role
    #: The token's id, or None for a web session (or a client let in by its address).
    token_id: int | None = None

    @property
    def can_write(self) -> bool:
        return self.role == "admin"

    @property
    def can_read(self) -> bool:
        """Whether it may read the API's records, profiles and runs (a lookup or phone
        token may not)."""
        return self.role in ("admin", "viewer")
