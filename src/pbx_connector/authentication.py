"""Checking a phone-system user's username and password, as the PBX does on a client login.

The rules, in order (each is tested):

1. An empty password is rejected before anything else; no directory ever sees it (AD
   takes an empty-password bind as anonymous and "accepts" it).
2. A username locked by repeated failures is refused without checking the password, so
   the answer reveals nothing about it.
3. Only a user that exists in the store and is enabled is checked at all. `internal`
   checks the argon2 hash, `ldap` binds to the directory, `none` always fails. The
   built-in `admin` always authenticates locally.
4. The username is escaped for a DN (RFC 4514) in a bind template, and for a filter
   (RFC 4515) in search-then-bind; a search must find exactly one entry.
5. Every rejection is answered no sooner than `failure_delay_ms` after the attempt began,
   and unknown users cost one argon2 verification like known ones, so timing does not
   tell them apart. Accepted logins are not delayed.
6. Every attempt is written to the audit log (username, method, outcome, reason; never
   the password). Failures in a row lock the username for `lockout_seconds`, doubling
   with each further lock; a success clears the count. A directory that cannot be
   reached is not the user's failure and does not count.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import ldap
from sqlalchemy import Connection, Engine, bindparam, or_, select

from pbx_connector.directory.connection import (
    LdapSettings,
    StepLog,
    connection,
    describe_ldap_error,
    parse_uris,
)
from pbx_connector.directory.escape import escape_dn_value, escape_filter_value
from pbx_connector.domain.passwords import hash_secret, verify_secret
from pbx_connector.domain.targets import ADMIN_USERNAME
from pbx_connector.errors import BindRefused, ConfigError, SourceError
from pbx_connector.sources.ldap import connection_settings as directory_connection
from pbx_connector.sources.ldap import query_settings as directory_query
from pbx_connector.store import auth_store
from pbx_connector.store.auth_store import AuthSettings, Lockout
from pbx_connector.store.tables import auth_lockouts, users

#: Characters that would change which account a UPN or down-level name means.
_NOT_IN_NAMES = frozenset('\\/,=*()"<>;#%@ \t\r\n\x00')
#: Reasons that are the user's failure (a directory outage is not).
_NOT_COUNTED = frozenset({"directory_unavailable", "not_configured", "locked"})


@dataclass
class AuthResult:
    accepted: bool
    #: `accepted`, `rejected` or `refused` (locked).
    outcome: str
    #: A short code for the audit log: accepted, empty_password, unknown_user, disabled,
    #: method_none, no_password, bad_password, not_in_directory, ambiguous_user,
    #: bad_username, directory_unavailable, not_configured, locked.
    reason: str
    method: str = ""
    steps: list[str] = field(default_factory=list)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_secret("unknown users cost one verification too")


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:  # SQLite hands back naive UTC
        return value.replace(tzinfo=UTC)
    return value


def authenticate(
    engine: Engine,
    username: str,
    password: str,
    *,
    origin: str = "api",
    log: StepLog | None = None,
    clock: Callable[[], datetime] = _now,
) -> AuthResult:
    """Check a username and password. `log` receives each step (for `auth test`)."""
    started = time.monotonic()
    steps: list[str] = []

    def step(text: str) -> None:
        steps.append(text)
        if log is not None:
            log(text)

    name = username.strip().lower()
    with engine.connect() as conn:
        cfg = _settings(engine, conn)
        user, lock = _user_and_lock(conn, name)
    now = clock()
    locked_until = _aware(lock.locked_until)
    if locked_until is not None and locked_until > now:
        step(
            f"username {name!r} is locked after repeated failures until "
            f"{locked_until.isoformat(timespec='seconds')}"
        )
        result = AuthResult(False, "refused", "locked")
    elif not password:
        step("empty password: rejected before any check")
        result = AuthResult(False, "rejected", "empty_password")
    else:
        result = _check(cfg, name, password, user, step)
    result.steps = steps
    _remember(engine, cfg, name, result, lock, now, origin)
    if not result.accepted:
        delay = cfg.number("failure_delay_ms") / 1000 - (time.monotonic() - started)
        if delay > 0:
            time.sleep(delay)
    step(f"result: {result.outcome} ({result.reason})")
    return result


#: Settings read within this many seconds are used again: a login server checks many
#: passwords a second, and settings change rarely. Saving them in this process, or a
#: different store, starts afresh.
SETTINGS_TTL = 2.0
_cache: dict[str, tuple[float, AuthSettings]] = {}


def _settings(engine: Engine, conn: Connection) -> AuthSettings:
    key = str(engine.url)
    hit = _cache.get(key)
    now = time.monotonic()
    if hit and now - hit[0] < SETTINGS_TTL and hit[1].generation == auth_store.generation():
        return hit[1]
    cfg = auth_store.load(conn)
    _cache[key] = (now, cfg)
    return cfg


#: Built once: constructing a statement costs more than SQLite takes to run it.
_USER_AND_LOCK = (
    select(
        users.c.username,
        users.c.enabled,
        users.c.auth,
        users.c.password_hash,
        auth_lockouts.c.failures,
        auth_lockouts.c.level,
        auth_lockouts.c.locked_until,
    )
    .select_from(users.join(auth_lockouts, users.c.username == auth_lockouts.c.username, full=True))
    .where(
        or_(users.c.username == bindparam("name"), auth_lockouts.c.username == bindparam("name"))
    )
)


def _user_and_lock(conn: Connection, name: str) -> tuple[Any, Lockout]:
    """The user and its lockout in one query (an unknown name may be locked too)."""
    row = conn.execute(_USER_AND_LOCK, {"name": name}).first()
    if row is None:
        return None, Lockout()
    lock = Lockout() if row.failures is None else Lockout(row.failures, row.level, row.locked_until)
    return (row if row.username is not None else None), lock


def _check(cfg: AuthSettings, name: str, password: str, user: Any, step: StepLog) -> AuthResult:
    if user is None:
        verify_secret(_dummy_hash(), password)
        step(f"no user {name!r} in the store")
        return AuthResult(False, "rejected", "unknown_user")
    method = "internal" if user.username == ADMIN_USERNAME else (user.auth or "internal")
    step(
        f"user {name!r} found; authentication method: {method}"
        + (
            " (the built-in admin always authenticates locally)"
            if user.username == ADMIN_USERNAME
            else ""
        )
    )
    if not user.enabled:
        verify_secret(_dummy_hash(), password)
        step("the user is disabled")
        return AuthResult(False, "rejected", "disabled", method)
    if method == "none":
        verify_secret(_dummy_hash(), password)
        step("the method is 'none': this user cannot log in")
        return AuthResult(False, "rejected", "method_none", method)
    if method == "internal":
        if not user.password_hash:
            verify_secret(_dummy_hash(), password)
            step("the user has no local password")
            return AuthResult(False, "rejected", "no_password", method)
        ok = verify_secret(user.password_hash, password)
        step("local password " + ("matches" if ok else "does not match"))
        return AuthResult(
            ok, "accepted" if ok else "rejected", "accepted" if ok else "bad_password", method
        )
    reason = check_directory(cfg, name, password, step)
    ok = reason == "accepted"
    return AuthResult(ok, "accepted" if ok else "rejected", reason, method)


def _remember(
    engine: Engine,
    cfg: AuthSettings,
    name: str,
    result: AuthResult,
    lock: Lockout,
    now: datetime,
    origin: str,
) -> None:
    with engine.begin() as conn:
        auth_store.record_attempt(
            conn, now, name, result.method or "-", result.outcome, result.reason, origin
        )
        if result.accepted:
            if lock.failures or lock.level:
                auth_store.clear_lockout(conn, name)
            return
        if result.reason in _NOT_COUNTED:
            return
        _count_failure(conn, cfg, name, lock, now)


def _count_failure(
    conn: Connection, cfg: AuthSettings, name: str, lock: Lockout, now: datetime
) -> None:
    failures = lock.failures + 1
    if failures >= int(cfg.number("lockout_failures")):
        seconds = cfg.number("lockout_seconds") * 2 ** min(lock.level, 16)
        lock = Lockout(0, lock.level + 1, now + timedelta(seconds=seconds))
    else:
        lock = Lockout(failures, lock.level, _aware(lock.locked_until))
    auth_store.put_lockout(conn, name, lock)


# --- the directory ------------------------------------------------------------------------


def connection_settings(cfg: AuthSettings) -> LdapSettings:
    security = cfg.get("security")
    return LdapSettings(
        uris=parse_uris(cfg.get("uri"), security),
        security=security,
        ca_file=cfg.get("ca_file"),
        verify=cfg.get("verify") != "no",
        timeout=cfg.number("timeout"),
    )


def bind_name(template: str, username: str) -> str | None:
    """The bind DN or UPN for a username, or None when the username cannot be put into
    this kind of template safely."""
    if "=" in template:  # a DN: escape the value (RFC 4514)
        return template.replace("%", escape_dn_value(username))
    if any(ch in _NOT_IN_NAMES or ord(ch) < 32 for ch in username):
        return None
    return template.replace("%", username)


def user_filter(attribute: str, username: str, extra: str = "") -> str:
    """The search for one user (RFC 4515 escaping of the username)."""
    own = f"({attribute}={escape_filter_value(username)})"
    return f"(&{own}{extra})" if extra else own


def check_directory(cfg: AuthSettings, username: str, password: str, log: StepLog) -> str:
    """Bind as the user; the reason code ("accepted" when the password is right)."""
    mode = cfg.mode
    if mode == "none":
        log("the directory is not configured (auth settings uri=… and bind_user or search_base)")
        return "not_configured"
    try:
        base = connection_settings(cfg)
    except ConfigError as exc:
        log(f"the directory settings are invalid: {exc}")
        return "not_configured"
    if mode == "template":
        who = bind_name(cfg.get("bind_user"), username)
        if who is None:
            log(f"the username {username!r} cannot be used in {cfg.get('bind_user')!r}")
            return "bad_username"
        log(f"binding as {who}")
        try:
            with connection(replace(base, bind_dn=who, bind_password=password), log):
                return "accepted"
        except BindRefused:
            log("the directory refused the password")
            return "bad_password"
        except (SourceError, ConfigError) as exc:
            log(str(exc))
            return "directory_unavailable"
    return _search_then_bind(cfg, base, username, password, log)


def _search_then_bind(
    cfg: AuthSettings, base: LdapSettings, username: str, password: str, log: StepLog
) -> str:
    service = replace(base, bind_dn=cfg.get("bind_dn"), bind_password=cfg.bind_password)
    filterstr = user_filter(cfg.get("user_attribute"), username, cfg.get("user_filter"))
    search_base = cfg.get("search_base")
    try:
        with connection(service, log) as conn:
            log(f"searching {search_base} for {filterstr}")
            try:
                found = conn.search_ext_s(
                    search_base,
                    ldap.SCOPE_SUBTREE,
                    filterstr,
                    ["1.1"],
                    sizelimit=2,
                    timeout=base.timeout,
                )
            except ldap.SIZELIMIT_EXCEEDED:
                found = [("", {}), ("", {})]
            dns = [dn for dn, _ in found if isinstance(dn, str)]
            if len(dns) != 1:
                log(
                    f"{'no entry' if not dns else 'more than one entry'} found; "
                    "exactly one is required"
                )
                return "not_in_directory" if not dns else "ambiguous_user"
            log(f"found {dns[0]}")
            log(f"binding as {dns[0]}")
            try:
                conn.simple_bind_s(dns[0], password)
            except ldap.INVALID_CREDENTIALS:
                log("the directory refused the password")
                return "bad_password"
            log(f"bound as {dns[0]}")
            return "accepted"
    except BindRefused as exc:
        log(f"the service account was refused: {exc}")
        return "directory_unavailable"
    except (SourceError, ConfigError) as exc:
        log(str(exc))
        return "directory_unavailable"
    except ldap.LDAPError as exc:
        log(f"the search failed: {describe_ldap_error(exc)}")
        return "directory_unavailable"


def settings_from_profile(
    kind: str, settings: Mapping[str, str], secrets: Mapping[str, str]
) -> dict[str, str]:
    """Authentication settings that check users against the directory a users profile
    imports them from (its option `configure_authentication`): AD binds as the user's
    UPN (`%@domain`); LDAP and UCS search for the uid with the profile's bind account."""
    conn = directory_connection(kind, settings, secrets)
    values = {
        "uri": " ".join(conn.uris),
        "security": conn.security,
        "ca_file": conn.ca_file,
        "verify": "yes" if conn.verify else "no",
        "timeout": f"{conn.timeout:g}",
    }
    if kind == "ad":
        domain = settings.get("domain", "").strip().strip(".")
        return {
            **values,
            "bind_user": f"%@{domain}",
            "bind_dn": "",
            "search_base": "",
            "bind_password": "",
        }
    query = directory_query(kind, settings)
    return {
        **values,
        "bind_user": "",
        "bind_dn": conn.bind_dn,
        "bind_password": conn.bind_password,
        "search_base": query.base_dn,
        "user_attribute": "uid",
    }
