"""API tokens: created for a user and a role, shown once, stored hashed, listed with
their last use, revocable. A token stops working when it is revoked or expires, when its
owner is disabled or deleted, or when its owner no longer holds its role."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, get_args

from pbx_connector.domain.targets import ADMIN_USERNAME
from pbx_connector.domain.usernames import fold_username
from pbx_connector.errors import NotFoundError, PermissionDenied, Unauthenticated, UsageError
from pbx_connector.models.tokens import NewToken, Principal, Role, TokenView
from pbx_connector.store import tokens as token_store
from pbx_connector.store.timestamps import aware, iso

if TYPE_CHECKING:
    from pbx_connector.service.app import App

ROLES: tuple[str, ...] = get_args(Role)
#: Tokens start with this, so that a leaked one is recognisable (secret scanners).
TOKEN_PREFIX = "pbxc_"
MAX_DAYS = 3650


def _now() -> datetime:
    return datetime.now(UTC)


#: What a `lookup` token may do, for the refusal of anything else.
LOOKUP_ALLOWS = "look up callers' names, read the desk-phone directories and check passwords"


def holds_role(owner: Any, role: str) -> bool:
    """Whether a user (a row with enabled, builtin, roles) holds a role: the built-in
    admin holds every role; `admin` includes `viewer`, and `viewer` includes `lookup`
    (which no user is given by itself: it only makes a token that can do less)."""
    if owner is None or not owner.enabled:
        return False
    if owner.builtin and owner.username == ADMIN_USERNAME:
        return True
    roles = set(owner.roles or [])
    if role == "lookup":
        return bool(roles & {"admin", "viewer"})
    return role in roles or (role == "viewer" and "admin" in roles)


class TokensService:
    def __init__(self, app: App) -> None:
        self.app = app

    def create(
        self, name: str, *, role: str, owner: str = ADMIN_USERNAME, expires_days: int | None = None
    ) -> NewToken:
        name = name.strip()
        if not name or len(name) > 100:
            raise UsageError("a token needs a name of 1 to 100 characters", field="name")
        if role not in ROLES:
            raise UsageError(f"role must be one of {', '.join(ROLES)}, not {role!r}", field="role")
        if expires_days is not None and not 1 <= expires_days <= MAX_DAYS:
            raise UsageError(f"expires must be from 1 to {MAX_DAYS} days", field="expires")
        username = fold_username(owner.strip())
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = _now()
        with self.app.transaction() as conn:
            row = token_store.owner_row(conn, username)
            if row is None:
                raise NotFoundError(f"no user {owner!r}", field="owner")
            if not holds_role(row, role):
                raise UsageError(
                    f"user {username!r} does not hold the role {role!r} (or is disabled)",
                    field="role",
                )
            token_id = token_store.insert_token(
                conn,
                name=name,
                token=token,
                role=role,
                owner=username,
                now=now,
                expires_at=now + timedelta(days=expires_days) if expires_days else None,
            )
            view = self._view(conn, token_store.get_token(conn, token_id), now)
        return NewToken(token=token, view=view)

    def list(self) -> list[TokenView]:
        now = _now()
        with self.app.reading() as conn:
            return [self._view(conn, row, now) for row in token_store.list_tokens(conn)]

    def get(self, token_id: int) -> TokenView:
        """One token as listed (never the token itself); `NotFoundError` when there is
        no token with this id."""
        if not 0 < token_id < 2**63:
            raise NotFoundError(f"no API token with id {token_id}")
        now = _now()
        with self.app.reading() as conn:
            return self._view(conn, token_store.get_token(conn, token_id), now)

    def revoke(self, token_id: int) -> TokenView:
        if not 0 < token_id < 2**63:
            raise NotFoundError(f"no API token with id {token_id}")
        now = _now()
        with self.app.transaction() as conn:
            token_store.revoke_token(conn, token_id, now)
            return self._view(conn, token_store.get_token(conn, token_id), now)

    def authenticate(self, token: str) -> Principal:
        """Who a bearer token acts as; Unauthenticated when it is not (or no longer)
        valid. Its last use is recorded (to the minute, and never making the request
        wait behind a sync that holds the store's write lock)."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            raise Unauthenticated("not a valid API token")
        now = _now()
        with self.app.reading() as conn:
            row = token_store.find_token(conn, token)
            if row is None or not self._active(conn, row, now):
                raise Unauthenticated("not a valid API token (unknown, revoked or expired)")
        token_store.record_use(self.app.engine, row.id, aware(row.last_used_at), now)
        return Principal(username=row.owner, role=row.role, token_id=row.id)

    def require_admin(self, principal: Principal) -> None:
        if not principal.can_write:
            raise PermissionDenied(f"this needs the admin role; the token has {principal.role}")

    def require_reader(self, principal: Principal) -> None:
        """Reads of the API need the viewer or admin role: a `lookup` token is refused
        everything but what a PBX asks."""
        if not principal.can_read:
            raise PermissionDenied(f"a lookup token may only {LOOKUP_ALLOWS}")

    def _active(self, conn: Any, row: Any, now: datetime) -> bool:
        expires = aware(row.expires_at)
        if row.revoked_at is not None or (expires is not None and expires <= now):
            return False
        return holds_role(token_store.owner_row(conn, row.owner), row.role)

    def _view(self, conn: Any, row: Any, now: datetime) -> TokenView:
        return TokenView(
            id=row.id,
            name=row.name,
            prefix=row.prefix,
            role=row.role,
            owner=row.owner,
            created=iso(row.created_at) or "",
            expires=iso(row.expires_at),
            last_used=iso(row.last_used_at),
            revoked=iso(row.revoked_at),
            active=self._active(conn, row, now),
        )
