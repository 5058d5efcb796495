"""Web sessions: signing in to the admin pages with the product's own users, staying
signed in for a while, signing out.

Signing in goes through `AuthService.check` (origin `web`), so the lockout, the answer
delay, the audit log and users checked against LDAP all apply as they do elsewhere. Only
users holding the admin or viewer role may sign in. A session id is random, shown to the
browser once (as its cookie) and stored only as a hash; a session ends after `IDLE` without
a request, after `ABSOLUTE` in any case, or when its user signs out.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pbx_connector.domain.usernames import fold_username
from pbx_connector.errors import PermissionDenied, Unauthenticated
from pbx_connector.models.sessions import NewSession, WebSession
from pbx_connector.models.tokens import Role
from pbx_connector.service.tokens import holds_role
from pbx_connector.store import sessions as session_store
from pbx_connector.store import tokens as token_store
from pbx_connector.store.timestamps import aware

if TYPE_CHECKING:
    from pbx_connector.service.app import App

#: A session unused for this long has ended.
IDLE = timedelta(minutes=30)
#: A session ends this long after sign-in, used or not.
ABSOLUTE = timedelta(hours=12)
#: `last_seen` is written at most this often, so that reading pages is not a stream of
#: writes; the idle limit is therefore exact to within this.
TOUCH_EVERY = timedelta(seconds=60)
#: The longest session id or username taken; anything longer is not ours.
_MAX_ID = 200
_MAX_USERNAME = 255


def _now() -> datetime:
    return datetime.now(UTC)


class SessionsService:
    def __init__(self, app: App) -> None:
        self.app = app

    def login(self, username: str, password: str, *, replaces: str | None = None) -> NewSession:
        """Check the password (every rule of `AuthService.check` applies) and begin a new
        session. `replaces` is the session id the browser had, ended here so that an id
        known before sign-in never becomes a signed-in one."""
        username = username.strip()
        if not username or len(username) > _MAX_USERNAME:
            raise Unauthenticated("enter your username", field="username")
        if not password:
            raise Unauthenticated("enter your password", field="password")
        result = self.app.auth.check(username, password, origin="web")
        if not result.accepted:
            if result.outcome == "refused":
                raise Unauthenticated(
                    "too many failed attempts: this account is locked for a while",
                    field="password",
                )
            raise Unauthenticated("wrong username or password", field="password")
        name = fold_username(username)
        session_id = secrets.token_urlsafe(32)
        now = _now()
        with self.app.transaction() as conn:
            role = _role(token_store.owner_row(conn, name))
            if role is None:
                raise PermissionDenied(
                    f"user {name!r} may not sign in here: the admin pages need the admin "
                    "or viewer role",
                    field="username",
                )
            if replaces:
                session_store.delete_session(conn, replaces[:_MAX_ID])
            session_store.delete_expired(
                conn, idle_before=now - IDLE, created_before=now - ABSOLUTE
            )
            session_store.insert_session(
                conn,
                session_id=session_id,
                username=name,
                csrf_token=secrets.token_urlsafe(32),
                now=now,
            )
            row = session_store.find_session(conn, session_id)
            assert row is not None
        return NewSession(session_id=session_id, session=_view(row, role))

    def resume(self, session_id: str) -> WebSession:
        """The session a browser's cookie names; Unauthenticated when it is unknown, has
        ended, or its user may no longer sign in (disabled, deleted, role taken away)."""
        if not session_id or len(session_id) > _MAX_ID:
            raise Unauthenticated("sign in first")
        now = _now()
        with self.app.transaction() as conn:
            row = session_store.find_session(conn, session_id)
            if row is None:
                raise Unauthenticated("sign in first")
            role = _role(token_store.owner_row(conn, row.username))
            if role is None or _ends(row) <= now:
                session_store.delete_session(conn, session_id)
                raise Unauthenticated("your session has ended: sign in again")
            if now - aware(row.last_seen_at) >= TOUCH_EVERY:
                session_store.touch_session(conn, row.id, now)
                row = session_store.find_session(conn, session_id)
                assert row is not None
        return _view(row, role)

    def logout(self, session_id: str) -> bool:
        """End a session; whether there was one to end."""
        if not session_id or len(session_id) > _MAX_ID:
            return False
        with self.app.transaction() as conn:
            return session_store.delete_session(conn, session_id) > 0


def _role(owner: Any) -> Role | None:
    if holds_role(owner, "admin"):
        return "admin"
    if holds_role(owner, "viewer"):
        return "viewer"
    return None


def _ends(row: Any) -> datetime:
    last_seen: datetime = aware(row.last_seen_at)
    created: datetime = aware(row.created_at)
    return min(last_seen + IDLE, created + ABSOLUTE)


def _view(row: Any, role: Role) -> WebSession:
    return WebSession(
        username=row.username,
        role=role,
        csrf_token=row.csrf_token,
        created=aware(row.created_at),
        last_seen=aware(row.last_seen_at),
        expires=_ends(row),
    )
