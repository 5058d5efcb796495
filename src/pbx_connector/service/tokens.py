"""API tokens: created for a user and a role, shown once, stored hashed, listed with
their last use, revocable. A token stops working when it is revoked or expires, when its
owner is disabled or deleted, or when its owner no longer holds its role.

A `phone` token is the secret of one user's desk phone, put in the URL of its directory
(`/directory/yealink.xml?token=…`): it opens the global phonebook and that user's
private phonebook, never another user's (`directory_user`), and nothing else."""

from __future__ import annotations

import contextlib
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, get_args

from pbx_connector.domain.targets import ADMIN_USERNAME
from pbx_connector.domain.usernames import fold_username
from pbx_connector.errors import NotFoundError, PermissionDenied, Unauthenticated, UsageError
from pbx_connector.models.tokens import NewToken, Principal, Role, TokenView
from pbx_connector.service.app import WouldWait
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


#: What a `lookup` or `phone` token may do, for the refusal of anything else.
ALLOWS = {
    "lookup": "look up callers' names, read the desk-phone directories and check passwords",
    "phone": "read its user's desk-phone directories and look up callers' names",
}


def holds_role(owner: Any, role: str) -> bool:
    """Whether a user (a row with enabled, builtin, roles) holds a role: the built-in
    admin holds every role; `admin` includes `viewer`, and `viewer` includes `lookup`
    (which no user is given by itself: it only makes a token that can do less). Every
    enabled user holds `phone`: the token of their own desk phone."""
    if owner is None or not owner.enabled:
        return False
    if role == "phone":
        return True
    if owner.builtin and owner.username == ADMIN_USERNAME:
        return True
    roles = set(owner.roles or [])
    if role == "lookup":
        return bool(roles & {"admin", "viewer"})
    return role in roles or (role == "viewer" and "admin" in roles)


#: A token found valid is taken as valid again for this long without reading the store
#: (`cached`): a PBX sends it with every call. Any write committed by this process (a
#: revocation, a disabled owner, a sync) drops what was cached at once; a write of
#: another process (the CLI, another worker of `serve`) is seen within this time.
VALID_FOR = 1.0
#: A check older than this is made again in the background (`App.refresher`) when the
#: token is used, while the cached one still answers: a token in steady use (a PBX's)
#: never waits for its check.
RECHECK_AFTER = 0.5
#: How many valid tokens are remembered: only valid tokens are, so this bounds memory
#: against nothing but an instance with more tokens than this.
CACHED_TOKENS = 1000


class TokensService:
    def __init__(self, app: App) -> None:
        self.app = app
        #: Token hash -> (when it was checked, `app.commits` then, when it expires, who
        #: it acts as).
        self._valid: dict[str, tuple[float, int, datetime | None, Principal]] = {}

    def create(
        self,
        name: str,
        *,
        role: str,
        owner: str | None = None,
        expires_days: int | None = None,
    ) -> NewToken:
        """A new token acting as `owner` (default: the built-in admin) with `role`. A
        `phone` token needs its user named: it is that user's phone's."""
        name = name.strip()
        if not name or len(name) > 100:
            raise UsageError("a token needs a name of 1 to 100 characters", field="name")
        if role not in ROLES:
            raise UsageError(f"role must be one of {', '.join(ROLES)}, not {role!r}", field="role")
        if role == "phone" and not (owner or "").strip():
            raise UsageError(
                "a phone token is for one user's desk phone: name that user as its owner",
                field="owner",
            )
        owner = owner if owner is not None and owner.strip() else ADMIN_USERNAME
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
        # Taken before the read: a write committed after it drops what is cached.
        commits, checked = self.app.commits, time.monotonic()
        with self.app.reading(one_snapshot=False) as conn:
            row = token_store.find_token(conn, token)
            if row is None or not self._active(conn, row, now):
                self._valid.pop(token_store.token_hash(token), None)
                raise Unauthenticated("not a valid API token (unknown, revoked or expired)")
        wrote = token_store.record_use(self.app.engine, row.id, aware(row.last_used_at), now)
        principal = Principal(username=row.owner, role=row.role, token_id=row.id)
        if self.app.commits != commits + wrote:
            return principal  # another write came between: it may concern this token
        if len(self._valid) >= CACHED_TOKENS:
            self._valid.clear()
        expires = aware(row.expires_at)
        self._valid[token_store.token_hash(token)] = (checked, commits + wrote, expires, principal)
        return principal

    def cached(self, token: str) -> Principal | None:
        """Who `token` acts as, when `authenticate` found it valid less than `VALID_FOR`
        seconds ago and this process has committed no write since; None otherwise (then
        `authenticate` it). Reads nothing from the store: for the checks of every request."""
        key = token_store.token_hash(token)
        hit = self._valid.get(key)
        if hit is None or hit[1] != self.app.commits:
            return None
        age = time.monotonic() - hit[0]
        if age >= VALID_FOR or (hit[2] is not None and hit[2] <= _now()):
            return None
        if age >= RECHECK_AFTER:
            self.app.refresher.soon(f"token:{key}", lambda: self._recheck(token))
        return hit[3]

    def _recheck(self, token: str) -> None:
        """`authenticate` for the cache alone: a token found invalid is dropped from it."""
        with contextlib.suppress(Unauthenticated):
            self.authenticate(token)

    def require_admin(self, principal: Principal) -> None:
        if not principal.can_write:
            raise PermissionDenied(f"this needs the admin role; the token has {principal.role}")

    def require_reader(self, principal: Principal) -> None:
        """Reads of the API need the viewer or admin role: a `lookup` token is refused
        everything but what a PBX asks, a `phone` token everything but what a phone asks."""
        if not principal.can_read:
            raise PermissionDenied(f"a {principal.role} token may only {ALLOWS[principal.role]}")

    def directory_user(
        self, caller: Principal | None, user: str | None, *, wait: bool = True
    ) -> str | None:
        """Whose private phonebook a lookup or a directory asked by `caller` opens, given
        the `user` it asked for: for a `phone` token always its own user's (asking for
        no user, or for them by username, id or extension, is the same), and asking
        for another user is refused (`PermissionDenied`); for anyone else (None: the
        CLI) the `user` asked for. With `wait` False, `WouldWait` where the store must
        be read."""
        if caller is None or caller.role != "phone":
            return user
        if user is None or not user.strip() or fold_username(user.strip()) == caller.username:
            return caller.username
        if not wait:
            raise WouldWait("the phone's user is named by id or extension")
        with self.app.reading() as conn:
            row = token_store.user_numbers(conn, caller.username)
        if row is not None and user.strip() in (str(row.id), row.extension or ""):
            return caller.username
        raise PermissionDenied(
            "a phone token opens only its own user's private phonebook; leave out user="
        )

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
