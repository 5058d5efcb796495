"""Signed-in sessions of the admin pages, as the core hands them to the web face."""

from __future__ import annotations

from datetime import datetime

from pbx_connector.models.base import Model
from pbx_connector.models.tokens import Principal, Role


class WebSession(Model):
    """Who a browser is signed in as. The session id itself is not part of it: the core
    keeps only its hash, and the face knows the id from the cookie."""

    username: str
    #: `admin` when the user holds it, else `viewer`; looked up again on every request,
    #: so a user who loses a role or is disabled loses the session's rights at once.
    role: Role
    #: Forms and htmx requests send this back; a request without it changes nothing.
    csrf_token: str
    created: datetime
    last_seen: datetime
    #: When the session ends if not used again: the earlier of the idle and the absolute
    #: limit.
    expires: datetime

    @property
    def can_write(self) -> bool:
        return self.role == "admin"

    @property
    def principal(self) -> Principal:
        return Principal(username=self.username, role=self.role)


class NewSession(Model):
    """A session just begun: the only time its id is known outside the browser."""

    session_id: str
    session: WebSession
