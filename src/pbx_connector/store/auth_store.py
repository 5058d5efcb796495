"""What authentication keeps: its settings, the audit log, and per-username lockouts.

Settings live in the instance settings table under `auth.`; the service password is
encrypted with the instance key like a profile's secrets, and never read back out except
to bind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, desc, insert, select, update

from pbx_connector.directory.connection import SECURITY_CHOICES, parse_uris
from pbx_connector.directory.search import check_filter
from pbx_connector.errors import ConfigError
from pbx_connector.store import secrets as secret_box
from pbx_connector.store.bulk import insert_rows
from pbx_connector.store.tables import auth_attempts, auth_lockouts, settings

PREFIX = "auth."
SECRET = "bind_password"

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
        "a rejected attempt is answered no sooner than this, so that unknown users, wrong "
        "passwords and slow directories all take about the same time",
    ),
}


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
        return float(self.get(name))

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


def _number(name: str, value: str, minimum: float) -> None:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {value!r}", field=name) from None
    if number < minimum:
        raise ConfigError(f"{name} must be at least {minimum:g}", field=name)


def validate(name: str, value: str) -> str:
    if name not in AUTH_SETTINGS:
        known = ", ".join(AUTH_SETTINGS)
        raise ConfigError(f"unknown authentication setting {name!r}; settings: {known}", field=name)
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
        check_filter(value)
    if name == "timeout":
        _number(name, value, 0.1)
    if name in ("lockout_failures", "lockout_seconds"):
        _number(name, value, 1)
    if name == "failure_delay_ms":
        _number(name, value, 0)
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


def save(conn: Connection, assignments: dict[str, str]) -> AuthSettings:
    """Validate every assignment, then the whole, then store; nothing is kept on error."""
    current = load(conn)
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
    conn: Connection, username: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    query = select(auth_attempts).order_by(desc(auth_attempts.c.id)).limit(limit)
    if username is not None:
        query = query.where(auth_attempts.c.username == username)
    out = []
    for row in conn.execute(query):
        at = row.at
        out.append(
            {
                "at": at.isoformat(timespec="seconds") if at is not None else None,
                "username": row.username,
                "method": row.method,
                "outcome": row.outcome,
                "reason": row.reason,
                "origin": row.origin,
            }
        )
    return out


@dataclass
class Lockout:
    failures: int = 0
    level: int = 0
    locked_until: datetime | None = None


def get_lockout(conn: Connection, username: str) -> Lockout:
    row = conn.execute(select(auth_lockouts).where(auth_lockouts.c.username == username)).first()
    if row is None:
        return Lockout()
    return Lockout(row.failures, row.level, row.locked_until)


def put_lockout(conn: Connection, username: str, lock: Lockout) -> None:
    values = {"failures": lock.failures, "level": lock.level, "locked_until": lock.locked_until}
    done = conn.execute(
        update(auth_lockouts).where(auth_lockouts.c.username == username).values(**values)
    )
    if done.rowcount == 0:
        conn.execute(insert(auth_lockouts).values(username=username, **values))


def clear_lockout(conn: Connection, username: str) -> None:
    conn.execute(delete(auth_lockouts).where(auth_lockouts.c.username == username))
