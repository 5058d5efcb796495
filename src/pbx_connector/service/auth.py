"""Authentication of phone-system users: its settings, checking a password, "Test
Authentication", and the audit log.

The rules of checking a password live in `pbx_connector.authentication`; this is where a
face reaches them, with the store's transactions owned here. Secrets are write-only: the
service account's password is taken by `update_settings` (and by `test`, for unsaved
settings) and never returned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, desc, func, select

from pbx_connector import authentication
from pbx_connector.directory.connection import SECURITY_CHOICES
from pbx_connector.domain.usernames import fold_username
from pbx_connector.errors import PermissionDenied, UsageError
from pbx_connector.models.auth import (
    AUTH_OUTCOMES,
    AuthAttempt,
    AuthCheckResult,
    AuthSettingsView,
    AuthTestResult,
)
from pbx_connector.models.base import Page
from pbx_connector.models.tokens import Principal
from pbx_connector.store import auth_store
from pbx_connector.store.auth_store import AuthSettings
from pbx_connector.store.tables import auth_attempts
from pbx_connector.store.timestamps import aware

if TYPE_CHECKING:
    from pbx_connector.service.app import App

#: Settings whose value is a secret: write-only, and best not typed on a command line.
SECRET_SETTINGS: tuple[str, ...] = auth_store.SECRETS
#: What each setting means, in the order `auth settings` shows them (help text for forms).
SETTING_HELP: dict[str, str] = {
    name: meaning for name, (_default, meaning) in auth_store.AUTH_SETTINGS.items()
}
#: The values a setting may take, where it takes only a few (a form offers them as a
#: choice); any other setting takes text that its checks accept.
SETTING_CHOICES: dict[str, tuple[str, ...]] = {
    "security": tuple(SECURITY_CHOICES),
    "verify": ("yes", "no"),
}
#: Where the service account's password goes and how it is protected on the way. A test
#: of unsaved settings sends the stored password only while all of these are as saved:
#: otherwise anyone allowed to run a test could point it at a server of their own (or
#: turn off TLS or the certificate check) and collect the password.
PASSWORD_DESTINATION = ("uri", "security", "ca_file", "verify", "bind_dn")
#: The lockout and the answer delay. A test is an attempt that counts toward the real
#: username's lockout, so it always runs under the saved ones.
POLICY = ("lockout_failures", "lockout_seconds", "failure_delay_ms")
#: The audit log keeps an origin of at most this many characters.
ORIGIN_MAX = 32
#: The origin the audit log records for a check asked over HTTP, by the role asking: an
#: administrator's token (`api`), or a PBX's `lookup` token (`pbx`).
CHECK_ORIGINS: dict[str, str] = {"admin": "api", "lookup": "pbx"}
#: The largest limit or offset the stores take (a signed 64-bit integer).
_MAX_INT = 2**63 - 1

_SECRET = auth_store.SECRET


class AuthService:
    """Authentication settings, password checks, tests and the audit log."""

    def __init__(self, app: App) -> None:
        self.app = app

    def settings(self) -> AuthSettingsView:
        """Every setting with its value; the service password only as whether it is set."""
        with self.app.reading() as conn:
            return settings_view(auth_store.load(conn))

    def update_settings(self, values: Mapping[str, str]) -> AuthSettingsView:
        """Set some settings. Each value is validated, then the whole; on any error
        nothing is saved. A `bind_password` is stored encrypted and never shown again."""
        if not values:
            return self.settings()
        with self.app.transaction() as conn:
            return settings_view(auth_store.save(conn, values))

    def check(self, username: str, password: str, *, origin: str = "cli") -> AuthCheckResult:
        """Is `password` the user's? Every rule applies (lockout, the answer delay, the
        audit log, which records `origin`). Raises `StoreError` and gives no answer when
        the store cannot be used."""
        _check_origin(origin)
        result = authentication.authenticate(
            self.app.engine,
            username,
            password,
            origin=origin,
            transaction=self.app.transaction,
        )
        return AuthCheckResult(
            accepted=result.accepted, outcome=result.outcome, reason=result.reason
        )

    def check_for(self, who: Principal, username: str, password: str) -> AuthCheckResult:
        """A check asked over HTTP, with every rule of `check`: by an administrator
        (audit origin `api`) or by a PBX with a `lookup` token (origin `pbx`). A viewer
        may not ask (a check counts toward the user's lockout), nor a client let in
        without a token by its address."""
        origin = CHECK_ORIGINS.get(who.role)
        if origin is None or (who.role == "lookup" and who.token_id is None):
            raise PermissionDenied("checking a password needs an admin or a lookup token")
        return self.check(username, password, origin=origin)

    def test(
        self,
        username: str,
        password: str,
        *,
        settings: Mapping[str, str] | None = None,
        on_step: Callable[[str], None] | None = None,
    ) -> AuthTestResult:
        """Check a password step by step, saying where and why it stops ("Test
        Authentication"). A test is an attempt like any other: it is logged (origin
        `test`) and a failure counts toward the lockout.

        `settings` are unsaved values to test instead of the saved ones (see
        `unsaved_settings`); nothing is saved. `on_step` receives each step as it is
        taken, for a face that shows progress while a slow directory answers."""
        notes: list[str] = []
        cfg: AuthSettings | None = None
        if settings is not None:
            with self.app.reading() as conn:
                saved = auth_store.load(conn)
            cfg, notes = unsaved_settings(saved, settings)
        if on_step is not None:
            for note in notes:
                on_step(note)
        result = authentication.authenticate(
            self.app.engine,
            username,
            password,
            origin="test",
            log=on_step,
            settings=cfg,
            transaction=self.app.transaction,
        )
        return AuthTestResult(
            accepted=result.accepted,
            outcome=result.outcome,
            reason=result.reason,
            method=result.method or None,
            steps=[*notes, *result.steps],
        )

    def log(
        self,
        username: str | None = None,
        limit: int = 50,
        offset: int = 0,
        *,
        outcome: str | None = None,
        origin: str | None = None,
    ) -> Page[AuthAttempt]:
        """The audit log, newest first, one page of it; only `username`'s attempts when
        given (spelt any way the user may type it: it is folded as at login), only those
        with this `outcome` (accepted, rejected, refused) or from this `origin` (cli,
        api, web, test…) when given."""
        _check_window(limit, offset)
        if outcome is not None and outcome not in AUTH_OUTCOMES:
            raise UsageError(
                f"outcome must be one of {', '.join(AUTH_OUTCOMES)}, not {outcome!r}",
                field="outcome",
            )
        if origin is not None and (not origin or len(origin) > ORIGIN_MAX):
            raise UsageError(f"origin must be 1 to {ORIGIN_MAX} characters", field="origin")
        name = fold_username(username.strip()) if username else None
        with self.app.reading() as conn:
            if outcome is None and origin is None:
                rows = auth_store.list_attempts(conn, name, limit, offset)
                total = auth_store.count_attempts(conn, name)
            else:
                rows, total = _filtered_attempts(conn, name, outcome, origin, limit, offset)
        return Page[AuthAttempt](items=[AuthAttempt(**row) for row in rows], total=total)


def _filtered_attempts(
    conn: Connection,
    username: str | None,
    outcome: str | None,
    origin: str | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the audit log rows that match every filter given, and their count."""
    c = auth_attempts.c
    where = [
        clause
        for clause in (
            c.username == username if username is not None else None,
            c.outcome == outcome if outcome is not None else None,
            c.origin == origin if origin is not None else None,
        )
        if clause is not None
    ]
    query = select(auth_attempts).where(*where).order_by(desc(c.id)).limit(limit).offset(offset)
    rows = [
        {
            "at": aware(row.at).astimezone(UTC),
            "username": row.username,
            "method": row.method,
            "outcome": row.outcome,
            "reason": row.reason,
            "origin": row.origin,
        }
        for row in conn.execute(query)
    ]
    total = conn.execute(select(func.count()).select_from(auth_attempts).where(*where))
    return rows, int(total.scalar_one())


def settings_view(cfg: AuthSettings) -> AuthSettingsView:
    """The settings as shown: every value but the secret, which is only "set" or not."""
    shown: dict[str, object] = {
        name: cfg.get(name) for name in auth_store.AUTH_SETTINGS if name not in SECRET_SETTINGS
    }
    shown["bind_password_set"] = bool(cfg.bind_password)
    shown["mode"] = cfg.mode
    return AuthSettingsView.model_validate(shown)


def unsaved_settings(
    saved: AuthSettings, values: Mapping[str, str]
) -> tuple[AuthSettings, list[str]]:
    """The settings a test of unsaved `values` runs with, and the steps that say so.

    `values` are validated as by a save (a bad one is a `ConfigError`). The lockout and
    the answer delay stay as saved (`POLICY`). The stored service password is used only
    while every setting of `PASSWORD_DESTINATION` is as saved; when one differs and no
    `bind_password` is given with the values, the test has no service password at all,
    so the search-then-bind is refused before any server is contacted."""
    merged = auth_store.merge(saved, values)
    kept = {k: v for k, v in merged.values.items() if k not in POLICY}
    kept |= {k: v for k, v in saved.values.items() if k in POLICY}
    cfg = replace(merged, values=kept)
    changed = [
        name
        for name in auth_store.AUTH_SETTINGS
        if name not in SECRET_SETTINGS and merged.get(name) != saved.get(name)
    ]
    ignored = [name for name in changed if name in POLICY]
    tested = [name for name in changed if name not in POLICY]
    if _SECRET in values:
        tested.append(_SECRET)
    notes = [
        "testing unsaved settings"
        + (f" (changed: {', '.join(tested)})" if tested else " (the same as the saved ones)")
    ]
    if ignored:
        notes.append(
            f"{', '.join(ignored)}: not used by a test; the lockout and the answer delay "
            "stay as saved"
        )
    moved = [name for name in PASSWORD_DESTINATION if merged.get(name) != saved.get(name)]
    if moved and _SECRET not in values:
        cfg = replace(cfg, bind_password="")
        if saved.bind_password and cfg.mode == "search":
            notes.append(
                f"the saved bind_password is not used: {', '.join(moved)} "
                f"{'differs' if len(moved) == 1 else 'differ'} from the saved settings "
                "(give bind_password with the settings to test them)"
            )
    return cfg, notes


def _check_origin(origin: str) -> None:
    """The audit log names where an attempt came from in a short word (cli, api, web,
    pbx)."""
    if not origin or len(origin) > ORIGIN_MAX or not origin.isprintable():
        raise UsageError(f"origin must be 1 to {ORIGIN_MAX} printable characters", field="origin")


def _check_window(limit: int, offset: int) -> None:
    """A page the stores can be asked for: a negative limit means "all" to some."""
    if not 1 <= limit <= _MAX_INT:
        raise UsageError(f"limit must be from 1 to {_MAX_INT}", field="limit")
    if not 0 <= offset <= _MAX_INT:
        raise UsageError(f"offset must be from 0 to {_MAX_INT}", field="offset")
