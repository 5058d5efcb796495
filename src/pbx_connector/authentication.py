"""Checking a phone-system user's username and password, as the PBX does on a client login.

The rules, in order (each is tested):

1. A username locked by repeated failures is refused without checking the password, so
   the answer reveals nothing about it. Before any check, the attempt takes a place in the
   username's count of failures in one atomic statement; with `lockout_failures` places
   taken (failures, or attempts still being checked) the attempt is refused, so however
   many processes try one username at once, at most that many passwords are checked.
2. An empty password is rejected before any check; no directory ever sees it (AD takes
   an empty-password bind as anonymous and "accepts" it).
3. Only a user that exists in the store and is enabled is checked at all. `internal`
   checks the argon2 hash, `ldap` binds to the directory, `none` always fails. The
   built-in `admin` always authenticates locally.
4. The username is escaped for a DN (RFC 4514) in a bind template, and for a filter
   (RFC 4515) in search-then-bind; a search must find exactly one entry.
5. Every rejection is answered no sooner than a floor after the attempt began:
   `failure_delay_ms`, and while a directory is configured, the longest a directory check
   may take (`timeout` per server; a check that takes longer is given up). Unknown users
   cost one argon2 verification like known ones. So neither a wrong password, an unknown,
   disabled or locked user, nor a slow or dead directory can be told apart by timing.
   Accepted logins are not delayed. `failure_delay_ms=0` turns the floor off.
6. Every attempt is written to the audit log (username, method, outcome, reason; never
   the password). Failures in a row lock the username for `lockout_seconds`, doubling
   with each further lock; a success clears the count. A directory that cannot be
   reached is not the user's failure: the attempt gives its place back.
"""

from __future__ import annotations

import os
import queue
import re
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import ldap
from sqlalchemy import Connection, Engine, bindparam, select

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
from pbx_connector.domain.usernames import fold_username
from pbx_connector.errors import BindRefused, ConfigError, SourceError
from pbx_connector.sources.ldap import connection_settings as directory_connection
from pbx_connector.sources.ldap import query_settings as directory_query
from pbx_connector.store import auth_store
from pbx_connector.store.auth_store import AuthSettings, Claim
from pbx_connector.store.tables import users
from pbx_connector.store.timestamps import aware

#: Characters that would change which account a UPN or down-level name means.
_NOT_IN_NAMES = frozenset('\\/,=*()"<>;#%@ \t\r\n\x00')
#: Reasons that are not the user's failure: the attempt gives its place in the count back.
_NOT_COUNTED = frozenset({"directory_unavailable", "not_configured"})
#: A lock lasts lockout_seconds × 2**level, the level counted up to this.
_MAX_DOUBLINGS = 16


#: Opens one write transaction: `engine.begin` by default; the application core passes
#: its own, so that a store failure is its `StoreError` as in every other use case.
Transaction = Callable[[], AbstractContextManager[Connection]]


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


def authenticate(
    engine: Engine,
    username: str,
    password: str,
    *,
    origin: str = "api",
    log: StepLog | None = None,
    clock: Callable[[], datetime] = _now,
    settings: AuthSettings | None = None,
    transaction: Transaction | None = None,
) -> AuthResult:
    """Check a username and password. `log` receives each step (for `auth test`).

    `settings` replaces the stored settings for this attempt (a test of settings not yet
    saved); the caller decides which of them may apply. `transaction` opens each write
    transaction (default `engine.begin`): the claim is committed before the password is
    checked, and the outcome in a second one.

    Raises PbxConnectorError when the store cannot be used (e.g. SQLite stays locked by
    another writer for longer than the busy timeout); no answer is given then."""
    begin: Transaction = transaction or engine.begin
    started = time.monotonic()
    steps: list[str] = []

    def step(text: str) -> None:
        steps.append(text)
        if log is not None:
            log(text)

    # One spelling for every username (NFKC, case-folded), as the store keeps them: a
    # look-alike name matches no user, because the store refuses to hold one.
    name = _storable(fold_username(username.strip()))
    # The store holds UTC (SQLite compares the text of the timestamps).
    now = clock().astimezone(UTC)
    with auth_store.store_errors():
        with begin() as conn:
            cfg = settings if settings is not None else _settings(engine, conn)
            user = conn.execute(_USER, {"name": name}).first()
            claim = auth_store.claim_attempt(
                conn, name, now, cfg.integer("lockout_failures"), _lock_until(cfg, now)
            )
        if not claim.granted:
            until = aware(claim.lockout.locked_until)
            step(
                f"username {name!r} is locked after repeated failures"
                + (f" until {until.isoformat(timespec='seconds')}" if until else "")
            )
            result = AuthResult(False, "refused", "locked")
        elif not password:
            step("empty password: rejected before any check")
            result = AuthResult(False, "rejected", "empty_password")
        else:
            result = _check(cfg, name, password, user, step)
        result.steps = steps
        _remember(begin, cfg, name, result, claim, now, origin)
    if not result.accepted:
        delay = rejection_floor(cfg) - (time.monotonic() - started)
        if delay > 0:
            time.sleep(delay)
    step(f"result: {result.outcome} ({result.reason})")
    return result


def directory_budget(cfg: AuthSettings) -> float:
    """The longest a directory check may take, in seconds: `timeout` for each server (0
    when no directory is configured). A check that takes longer is given up."""
    if cfg.mode == "none":
        return 0.0
    try:
        servers = len(parse_uris(cfg.get("uri"), cfg.get("security")))
    except ConfigError:
        servers = 1
    return cfg.number("timeout") * max(servers, 1)


def rejection_floor(cfg: AuthSettings) -> float:
    """How long every rejection takes at least, in seconds: `failure_delay_ms`, and the
    directory budget while a directory is configured; 0 with `failure_delay_ms=0`."""
    delay = cfg.number("failure_delay_ms") / 1000
    if delay <= 0:
        return 0.0
    return max(delay, directory_budget(cfg))


def _lock_until(cfg: AuthSettings, now: datetime) -> Callable[[int], datetime]:
    """When a lock of the given level (0 for the first) runs out."""
    seconds = cfg.number("lockout_seconds")

    def until(level: int) -> datetime:
        return now + timedelta(seconds=seconds * 2 ** min(max(level, 0), _MAX_DOUBLINGS))

    return until


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
_USER = select(users.c.username, users.c.enabled, users.c.auth, users.c.password_hash).where(
    users.c.username == bindparam("name")
)


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
    reason = _directory_within_budget(cfg, name, password, step)
    ok = reason == "accepted"
    return AuthResult(ok, "accepted" if ok else "rejected", reason, method)


class _Workers:
    """Threads for directory checks, kept and reused: starting a thread costs more than
    handing a job to an idle one. They are daemon threads, so one that waits on a hung
    server never keeps the process from ending; it is reused once libldap gives up."""

    MAX_IDLE = 32

    def __init__(self) -> None:
        self._idle: list[queue.SimpleQueue[Callable[[], None]]] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def run(self, job: Callable[[], None]) -> None:
        """Run `job` (which must not raise) on an idle worker, or on a new one."""
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's threads are not here
                self._idle.clear()
                self._pid = os.getpid()
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            worker = threading.Thread(
                target=self._serve, args=(inbox,), name="pbx-auth-directory", daemon=True
            )
            worker.start()
        inbox.put(job)

    def _serve(self, inbox: queue.SimpleQueue[Callable[[], None]]) -> None:
        while True:
            inbox.get()()
            with self._lock:
                if len(self._idle) >= self.MAX_IDLE or self._pid != os.getpid():
                    return
                self._idle.append(inbox)


_WORKERS = _Workers()


class _Relay:
    """Passes a worker's steps on until the caller stops listening."""

    def __init__(self, step: StepLog) -> None:
        self._step = step
        self._open = True
        self._lock = threading.Lock()

    def __call__(self, text: str) -> None:
        with self._lock:
            if self._open:
                self._step(text)

    def close(self) -> None:
        with self._lock:
            self._open = False


def _directory_within_budget(cfg: AuthSettings, name: str, password: str, step: StepLog) -> str:
    """`check_directory`, given up after the directory budget: a server that accepts the
    connection but never answers would otherwise hold the answer for longer than any
    rejection floor (each bind, StartTLS and search has its own timeout)."""
    budget = directory_budget(cfg)
    if budget <= 0:
        return check_directory(cfg, name, password, step)
    relay = _Relay(step)
    outcome: list[str] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def work() -> None:
        try:
            outcome.append(check_directory(cfg, name, password, relay))
        except BaseException as exc:  # handed to the caller below
            failure.append(exc)
        finally:
            done.set()

    _WORKERS.run(work)
    finished = done.wait(budget)
    relay.close()
    if not finished:
        step(
            f"the directory did not answer within {budget:g} s "
            f"(timeout {cfg.number('timeout'):g} s for each server); given up"
        )
        return "directory_unavailable"
    if failure:
        raise failure[0]
    return outcome[0]


def _remember(
    begin: Transaction,
    cfg: AuthSettings,
    name: str,
    result: AuthResult,
    claim: Claim,
    now: datetime,
    origin: str,
) -> None:
    """The audit-log row, and what the attempt does to the lockout, in one transaction."""
    with begin() as conn:
        auth_store.record_attempt(
            conn, now, name, result.method or "-", result.outcome, result.reason, origin
        )
        if not claim.granted:
            return
        if result.accepted:
            auth_store.clear_lockout(conn, name)
        elif result.reason in _NOT_COUNTED:
            auth_store.release_attempt(conn, name)
        else:
            # The failure was counted by the claim. Whichever attempt finds the count at
            # the limit first sets the lock (others may have been counted since).
            level = claim.lockout.level
            until = _lock_until(cfg, now)(level)
            auth_store.lock_if_due(conn, name, level, until, cfg.integer("lockout_failures"))


# --- the directory ------------------------------------------------------------------------


#: No username the store holds has these, and PostgreSQL cannot even compare with NUL.
_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
#: The longest username the audit log and the lockouts keep.
_MAX_NAME = 255


def _storable(name: str) -> str:
    """A username as the audit log and the lockout can keep it. A name with a control
    character, or longer than any stored username, matches no user: it is rejected as
    unknown, like any other, and logged with the unstorable parts replaced."""
    if len(name) <= _MAX_NAME and not _UNSTORABLE.search(name):
        return name
    return _UNSTORABLE.sub("\ufffd", name)[:_MAX_NAME]


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


def _auth_timeout(seconds: float) -> str:
    """A profile's timeout as an authentication `timeout`: a sync may wait longer for a
    server than a login can, so it is brought into the setting's range."""
    rule = auth_store.NUMBERS["timeout"]
    low, high = float(rule.minimum), float(rule.maximum)
    value = seconds if seconds == seconds else float(auth_store.AUTH_SETTINGS["timeout"][0])
    return f"{min(max(value, low), high):g}"


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
        "timeout": _auth_timeout(conn.timeout),
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
