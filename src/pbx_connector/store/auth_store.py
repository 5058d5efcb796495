"""What authentication keeps: its settings, the audit log, and per-username lockouts.

Settings live in the instance settings table under `auth.`; the service password is
encrypted with the instance key like a profile's secrets, and never read back out except
to bind.

A lockout row counts the attempts for one username that were let through to a password
check since the last success: the failures, and those still being checked. An attempt
takes its place in that count in one statement before anything is checked
(`claim_attempt`), so however many processes try one username at once, no more than
`lockout_failures` of them get through.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    case,
    delete,
    desc,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from pbx_connector.directory.connection import SECURITY_CHOICES, parse_uris
from pbx_connector.directory.search import check_filter
from pbx_connector.errors import ConfigError, PbxConnectorError
from pbx_connector.store import secrets as secret_box
from pbx_connector.store.bulk import insert_rows
from pbx_connector.store.tables import auth_attempts, auth_lockouts, settings

PREFIX = "auth."
SECRET = "bind_password"
#: Settings whose value is a secret: write-only, and best not typed on a command line.
SECRETS = (SECRET,)

#: name → (default, description); the order is the order `auth settings` shows.
AUTH_SETTINGS: dict[str, tuple[str, str]] = {
    "uri": ("", "ldap:// or ldaps:// URI(s) of the directory; several are tried in order"),
    "security": ("starttls", "ldaps, starttls or none"),
    "ca_file": ("", "PEM file of the CA that signed the server certificate"),
    "verify": ("yes", "check the server certificate"),
    "timeout": ("5", "seconds to wait for a server before trying the next"),
    "bind_user": (
        "",
        "bind template: a DN or UPN in which % stands for the username, e.g. "
        "uid=%,cn=users,dc=example,dc=test or %@example.test",
    ),
    "bind_dn": ("", "search-then-bind: the service account that searches for the user"),
    SECRET: ("", "search-then-bind: the service account's password"),
    "search_base": ("", "search-then-bind: where users are searched"),
    "user_attribute": ("uid", "search-then-bind: the attribute holding the username"),
    "user_filter": ("", "search-then-bind: an extra filter users must match (optional)"),
    "lockout_failures": ("5", "failed attempts in a row that lock a username"),
    "lockout_seconds": ("60", "how long the first lock lasts; each further lock doubles"),
    "failure_delay_ms": (
        "250",
        "a rejected attempt is answered no sooner than this (and, with a directory, no "
        "sooner than timeout per server), so that unknown users, wrong passwords and slow "
        "directories all take the same time; 0 turns the delay off",
    ),
}


@dataclass(frozen=True)
class NumberRule:
    """The values a numeric setting takes."""

    minimum: Decimal
    maximum: Decimal
    whole: bool
    unit: str

    def describe(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        return f"{kind} of {self.unit} from {self.minimum} to {self.maximum}"


#: Numeric settings: finite, in range, and whole where a fraction makes no sense. The
#: upper bounds keep every derived value (a lock doubled 16 times, a column of 32-bit
#: integers, a sleep) far from overflow.
NUMBERS: dict[str, NumberRule] = {
    "timeout": NumberRule(Decimal("0.1"), Decimal(60), False, "seconds"),
    "lockout_failures": NumberRule(Decimal(1), Decimal(1000), True, "attempts"),
    "lockout_seconds": NumberRule(Decimal(1), Decimal(86400), True, "seconds"),
    "failure_delay_ms": NumberRule(Decimal(0), Decimal(10000), True, "milliseconds"),
}
_WHOLE = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


#: Bumped whenever this process saves settings, so that cached copies are dropped.
_generation = 0


def generation() -> int:
    return _generation


@dataclass(frozen=True)
class AuthSettings:
    values: dict[str, str]
    bind_password: str = ""
    generation: int = 0

    def get(self, name: str) -> str:
        return self.values.get(name, AUTH_SETTINGS[name][0])

    def number(self, name: str) -> float:
        """A numeric setting. Values are checked when they are set; one stored before
        that (`nan`, `inf`, out of range) is brought into range, and the default stands
        in for one that is not a number at all."""
        rule = NUMBERS[name]
        try:
            value = float(self.get(name))
        except ValueError:
            value = float("nan")
        if value != value:  # nan
            value = float(AUTH_SETTINGS[name][0])
        return min(max(value, float(rule.minimum)), float(rule.maximum))

    def integer(self, name: str) -> int:
        return int(self.number(name))

    @property
    def mode(self) -> str:
        """`template`, `search`, or `none` when the directory is not configured."""
        if not self.get("uri").strip():
            return "none"
        if "%" in self.get("bind_user"):
            return "template"
        if self.get("search_base").strip():
            return "search"
        return "none"

    def public_dict(self) -> dict[str, str]:
        shown = {k: self.get(k) for k in AUTH_SETTINGS if k != SECRET}
        shown[SECRET] = "(set)" if self.bind_password else "(not set)"
        return shown


def _number(name: str, value: str) -> str:
    rule = NUMBERS[name]
    shown = value if len(value) <= 40 else value[:40] + "…"
    if not (_WHOLE if rule.whole else _DECIMAL).fullmatch(value):
        raise ConfigError(f"{name} must be {rule.describe()}, not {shown!r}", field=name)
    try:
        number = Decimal(value)
    except InvalidOperation:  # cannot happen after the pattern; kept as a guard
        raise ConfigError(f"{name} must be {rule.describe()}, not {shown!r}", field=name) from None
    if number < rule.minimum:
        raise ConfigError(f"{name} must be at least {rule.minimum}, not {shown}", field=name)
    if number > rule.maximum:
        raise ConfigError(f"{name} must be at most {rule.maximum}, not {shown}", field=name)
    return value


#: Characters no setting may hold (and PostgreSQL cannot store: NUL).
_UNSTORABLE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")


def validate(name: str, value: str) -> str:
    if name not in AUTH_SETTINGS:
        known = ", ".join(AUTH_SETTINGS)
        raise ConfigError(f"unknown authentication setting {name!r}; settings: {known}", field=name)
    if _UNSTORABLE.search(value):
        # A control character or NUL: no store keeps it (PostgreSQL refuses NUL).
        raise ConfigError(f"{name} holds a control character", field=name)
    if name in SECRETS:
        return value  # a password is kept as given: spaces may be part of it
    value = value.strip()
    if name == "security" and value not in SECURITY_CHOICES:
        raise ConfigError(
            f"security must be one of {', '.join(SECURITY_CHOICES)}, not {value!r}", field=name
        )
    if name == "verify" and value not in ("yes", "no"):
        raise ConfigError("verify must be yes or no", field=name)
    if name == "bind_user" and value and "%" not in value:
        raise ConfigError(
            "bind_user must contain % where the username goes (e.g. %@example.test)",
            field=name,
        )
    if name == "user_filter" and value:
        try:
            check_filter(value)
        except ConfigError as exc:
            raise ConfigError(exc.message, field=name) from None
    if name in NUMBERS:
        _number(name, value)
    return value


def load(conn: Connection) -> AuthSettings:
    values: dict[str, str] = {}
    password = ""
    rows = conn.execute(select(settings).where(settings.c.key.startswith(PREFIX)))
    for row in rows:
        name = row.key[len(PREFIX) :]
        if name == SECRET:
            password = secret_box.decrypt_json(row.value).get(SECRET, "")
        elif name in AUTH_SETTINGS:
            values[name] = row.value
    return AuthSettings(values, password, _generation)


def merge(current: AuthSettings, assignments: Mapping[str, str]) -> AuthSettings:
    """`current` with `assignments` applied: every assignment validated, then the whole.
    Nothing is stored: `save` stores the result, a test of unsaved settings uses it."""
    values = dict(current.values)
    password = current.bind_password
    for name, raw in assignments.items():
        value = validate(name, raw)
        if name == SECRET:
            password = value
        else:
            values[name] = value
    merged = AuthSettings(values, password)
    if merged.get("uri"):
        parse_uris(merged.get("uri"), merged.get("security"))
    return merged


def save(conn: Connection, assignments: Mapping[str, str]) -> AuthSettings:
    """Validate every assignment, then the whole, then store; nothing is kept on error."""
    merged = merge(load(conn), assignments)
    values, password = merged.values, merged.bind_password
    for name, value in values.items():
        conn.execute(delete(settings).where(settings.c.key == PREFIX + name))
        conn.execute(insert(settings).values(key=PREFIX + name, value=value))
    conn.execute(delete(settings).where(settings.c.key == PREFIX + SECRET))
    if password:
        token = secret_box.encrypt_json({SECRET: password})
        conn.execute(insert(settings).values(key=PREFIX + SECRET, value=token))
    global _generation
    _generation += 1
    return merged


# --- audit log and lockouts ---------------------------------------------------------------


def record_attempt(
    conn: Connection,
    at: datetime,
    username: str,
    method: str,
    outcome: str,
    reason: str,
    origin: str,
) -> None:
    row = {
        "at": at,
        "username": username[:255],
        "method": method,
        "outcome": outcome,
        "reason": reason,
        "origin": origin,
    }
    insert_rows(conn, auth_attempts, [row])


def list_attempts(
    conn: Connection, username: str | None = None, limit: int = 50, offset: int = 0
) -> list[dict[str, Any]]:
    """Audit-log rows, newest first; only `username`'s when given. `at` is in UTC on
    every store (SQLite hands back naive UTC, PostgreSQL the session's time zone)."""
    query = select(auth_attempts).order_by(desc(auth_attempts.c.id)).limit(limit).offset(offset)
    if username is not None:
        query = query.where(auth_attempts.c.username == username)
    out = []
    for row in conn.execute(query):
        at = row.at
        out.append(
            {
                "at": at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC),
                "username": row.username,
                "method": row.method,
                "outcome": row.outcome,
                "reason": row.reason,
                "origin": row.origin,
            }
        )
    return out


def count_attempts(conn: Connection, username: str | None = None) -> int:
    """How many rows `list_attempts` pages through."""
    query = select(func.count()).select_from(auth_attempts)
    if username is not None:
        query = query.where(auth_attempts.c.username == username)
    return int(conn.execute(query).scalar_one())


@dataclass
class Lockout:
    #: Attempts let through since the last success: failures, and those being checked.
    failures: int = 0
    #: How many locks this username has earned since the last success.
    level: int = 0
    locked_until: datetime | None = None


@dataclass(frozen=True)
class Claim:
    """The answer to "may this attempt be checked?" and the lockout it saw."""

    granted: bool
    lockout: Lockout


def get_lockout(conn: Connection, username: str) -> Lockout:
    row = conn.execute(select(auth_lockouts).where(auth_lockouts.c.username == username)).first()
    if row is None:
        return Lockout()
    return Lockout(row.failures, row.level, row.locked_until)


# Statements are built once: building one costs more than SQLite takes to run it, and a
# login server checks many passwords a second.
_t = auth_lockouts.c
#: A row with nothing counted, unless the username has one (never a duplicate-key error
#: when another process adds it at the same moment).
_ENSURE = {
    name: dialect.insert(auth_lockouts)
    .values(username=bindparam("name"), failures=0, level=0, locked_until=None)
    .on_conflict_do_nothing()
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
#: Count an attempt, only while the username is not locked and fewer than `limit` are
#: counted; a lock that has run out starts the count afresh.
_CLAIM = (
    update(auth_lockouts)
    .where(
        _t.username == bindparam("name"),
        or_(
            and_(_t.locked_until.is_(None), _t.failures < bindparam("limit")),
            and_(_t.locked_until.is_not(None), _t.locked_until <= bindparam("now")),
        ),
    )
    .values(failures=case((_t.locked_until.is_(None), _t.failures + 1), else_=1), locked_until=None)
    .returning(_t.failures, _t.level)
)
_CURRENT = select(_t.failures, _t.level, _t.locked_until).where(_t.username == bindparam("name"))
_LOCK = (
    update(auth_lockouts)
    .where(
        _t.username == bindparam("name"),
        _t.locked_until.is_(None),
        _t.failures >= bindparam("limit"),
        _t.level == bindparam("seen_level"),
    )
    .values(level=bindparam("new_level"), locked_until=bindparam("until"))
)
_RELEASE = (
    update(auth_lockouts)
    .where(_t.username == bindparam("name"), _t.failures > 0)
    .values(failures=_t.failures - 1)
)
_CLEAR = delete(auth_lockouts).where(_t.username == bindparam("name"))


def _ensure_lockout_row(conn: Connection, username: str) -> None:
    statement = _ENSURE.get(conn.dialect.name)
    if statement is not None:
        conn.execute(statement, {"name": username})
    elif conn.execute(_CURRENT, {"name": username}).first() is None:
        # Another database: the store promises parallel use on SQLite and PostgreSQL only.
        conn.execute(
            insert(auth_lockouts).values(username=username, failures=0, level=0, locked_until=None)
        )


def claim_attempt(
    conn: Connection,
    username: str,
    now: datetime,
    limit: int,
    lock_until: Callable[[int], datetime],
) -> Claim:
    """Count an attempt for `username` before its password is checked, or refuse it.

    One UPDATE counts the attempt only if the username is not locked and fewer than
    `limit` attempts are counted; a lock that has run out starts the count afresh. A
    refusal while no lock is set means `limit` attempts are still being checked: the
    username is locked now (until `lock_until(level)`), so that attempts lost to a crash
    cannot hold it for ever. Commit before checking the password.
    """
    for _ in range(3):  # a success may delete the row between the two statements
        _ensure_lockout_row(conn, username)
        row = conn.execute(_CLAIM, {"name": username, "limit": limit, "now": now}).first()
        if row is not None:
            return Claim(True, Lockout(row.failures, row.level, None))
        current = conn.execute(_CURRENT, {"name": username}).first()
        if current is None:
            continue
        lock = Lockout(current.failures, current.level, current.locked_until)
        if lock.locked_until is None:
            until = lock_until(lock.level)
            if lock_if_due(conn, username, lock.level, until, limit):
                lock = Lockout(lock.failures, lock.level + 1, until)
        return Claim(False, lock)
    return Claim(False, Lockout())


def lock_if_due(conn: Connection, username: str, level: int, until: datetime, limit: int) -> bool:
    """Lock `username` until `until` if `limit` attempts are counted and no lock is set
    yet (and nobody else locked it since `level` was read). Whether it did."""
    done = conn.execute(
        _LOCK,
        {
            "name": username,
            "limit": limit,
            "seen_level": level,
            "new_level": level + 1,
            "until": until,
        },
    )
    return bool(done.rowcount)


def release_attempt(conn: Connection, username: str) -> None:
    """Give back an attempt's place in the count: it turned out not to be the user's
    failure (the directory could not be reached)."""
    conn.execute(_RELEASE, {"name": username})


def put_lockout(conn: Connection, username: str, lock: Lockout) -> None:
    """Set a username's lockout as a whole (for administration and tests; attempts use
    `claim_attempt`)."""
    _ensure_lockout_row(conn, username)
    values = {"failures": lock.failures, "level": lock.level, "locked_until": lock.locked_until}
    conn.execute(update(auth_lockouts).where(_t.username == username).values(**values))


def clear_lockout(conn: Connection, username: str) -> None:
    conn.execute(_CLEAR, {"name": username})


# --- errors of the store -------------------------------------------------------------------


@contextmanager
def store_errors() -> Iterator[None]:
    """Turn the store's operational failures (SQLite's "database is locked" after the busy
    timeout, a PostgreSQL server that went away) into the product's error, so that the
    edges show one line instead of a traceback."""
    try:
        yield
    except OperationalError as exc:
        detail = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else ""
        if "locked" in detail.lower() or "busy" in detail.lower():
            raise PbxConnectorError(
                "the store is busy: another process has held its write lock for longer "
                f"than the busy timeout ({detail})"
            ) from None
        raise PbxConnectorError(
            f"the store cannot be used: {detail or type(exc).__name__}"
        ) from None
