"""Connecting to an LDAP server: TLS, fail-over over several URIs, bind, clear failures.

Every way a connection can fail is turned into one `SourceError` that says which server
and which step (contact, TLS, bind) failed. Fail-over moves to the next URI when a server
cannot be reached, times out or fails TLS; a refused bind stops at once, since another
server of the same directory would refuse it too (and retrying a wrong password
elsewhere only locks accounts sooner).

Passwords are handed to python-ldap and nowhere else: no message, log line or repr
contains them. An empty bind password with a bind DN is refused before any server is
contacted, because directories (AD first of all) treat it as an anonymous bind that
"succeeds".
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import ldap
from ldap.ldapobject import LDAPObject

from pbx_connector.errors import BindRefused, ConfigError, SourceError

SECURITY_CHOICES = ("ldaps", "starttls", "none")
DEFAULT_TIMEOUT = 10.0

#: Receives a line for each step taken (for `auth test` and verbose output).
StepLog = Callable[[str], None]


def _no_log(_: str) -> None:
    pass


@dataclass(frozen=True)
class LdapSettings:
    """How to reach and bind to one directory. `uris` are tried in order."""

    uris: tuple[str, ...]
    security: str = "starttls"
    ca_file: str = ""
    verify: bool = True
    bind_dn: str = ""
    bind_password: str = field(default="", repr=False)
    timeout: float = DEFAULT_TIMEOUT
    follow_referrals: bool = False

    def __post_init__(self) -> None:
        if not self.uris:
            raise ConfigError("no LDAP server is set (uri)", field="uri")
        if self.security not in SECURITY_CHOICES:
            raise ConfigError(
                f"security must be one of {', '.join(SECURITY_CHOICES)}, not {self.security!r}",
                field="security",
            )
        if self.timeout <= 0:
            raise ConfigError("timeout must be a positive number of seconds", field="timeout")


def parse_uris(text: str, security: str, default_port: int | None = None) -> tuple[str, ...]:
    """URIs from a setting: separated by spaces or commas; a bare host gets the scheme that
    `security` implies. A scheme that contradicts `security` is an error, not a guess."""
    want = "ldaps" if security == "ldaps" else "ldap"
    uris: list[str] = []
    for part in text.replace(",", " ").split():
        scheme, sep, rest = part.partition("://")
        if not sep:
            scheme, rest = want, part
        scheme = scheme.lower()
        if scheme not in ("ldap", "ldaps"):
            raise ConfigError(f"{part!r} is not an ldap:// or ldaps:// URI", field="uri")
        if scheme != want:
            hint = "ldaps" if scheme == "ldaps" else "starttls or none"
            raise ConfigError(
                f"{part!r} does not fit security={security}; use security={hint} for it",
                field="uri",
            )
        host = rest.rstrip("/")
        if not host:
            raise ConfigError(f"{part!r} names no server", field="uri")
        if default_port is not None and ":" not in host.rsplit("]", 1)[-1]:
            host = f"{host}:{default_port}"
        uris.append(f"{scheme}://{host}")
    return tuple(uris)


def describe_ldap_error(exc: BaseException) -> str:
    """python-ldap's error dict as one line: the description and the server's detail."""
    info: dict[str, Any] = {}
    if exc.args and isinstance(exc.args[0], dict):
        info = exc.args[0]
    desc = str(info.get("desc") or type(exc).__name__)
    detail = str(info.get("info") or "").strip()
    return f"{desc} ({detail})" if detail else desc


def _is_tls_failure(exc: BaseException, uri: str, timeout: float) -> bool:
    """Whether an LDAPS "server down" was really TLS failing: libldap often says only
    "Can't contact LDAP server (unknown error code)" for a certificate it rejected. If a
    plain TCP connection to the same port succeeds, the server is up and TLS failed."""
    text = describe_ldap_error(exc).lower()
    if any(w in text for w in ("certificate", "tls", "ssl", "handshake")):
        return True
    host, port = _host_port(uri)
    try:
        with socket.create_connection((host, port), timeout=min(timeout, 5.0)):
            return True
    except OSError:
        return False


def _host_port(uri: str) -> tuple[str, int]:
    scheme, _, rest = uri.partition("://")
    hostport = rest.split("/", 1)[0]
    default = 636 if scheme.lower() == "ldaps" else 389
    if hostport.startswith("["):  # [IPv6]:port
        host, _, tail = hostport[1:].partition("]")
        return host, int(tail[1:]) if tail.startswith(":") else default
    host, _, port = hostport.rpartition(":")
    if host and port.isdigit():
        return host, int(port)
    return hostport, default


class _TryNext(Exception):
    """This server cannot be used; the next URI may be."""


def _initialize(uri: str, s: LdapSettings) -> LDAPObject:
    conn = ldap.initialize(uri)
    conn.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
    conn.set_option(ldap.OPT_REFERRALS, 1 if s.follow_referrals else 0)
    conn.set_option(ldap.OPT_NETWORK_TIMEOUT, s.timeout)
    conn.set_option(ldap.OPT_TIMEOUT, s.timeout)
    if s.security != "none":
        demand = ldap.OPT_X_TLS_DEMAND if s.verify else ldap.OPT_X_TLS_NEVER
        conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, demand)
        if s.ca_file:
            conn.set_option(ldap.OPT_X_TLS_CACERTFILE, s.ca_file)
        # libldap builds the TLS context from the options set so far; this must come last.
        conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
    return conn


def _connect_one(uri: str, s: LdapSettings, log: StepLog) -> LDAPObject:
    log(f"contacting {uri} (security: {s.security}, timeout {s.timeout:g} s)")
    try:
        conn = _initialize(uri, s)
    except (ldap.LDAPError, ValueError) as exc:
        raise SourceError(f"{uri}: cannot use this URI: {describe_ldap_error(exc)}") from None
    checked = "certificate verified" if s.verify else "certificate NOT verified (verify=no)"
    if s.security == "starttls":
        try:
            conn.start_tls_s()
        except (ldap.SERVER_DOWN, ldap.TIMEOUT) as exc:
            raise _TryNext(f"cannot reach the server: {describe_ldap_error(exc)}") from None
        except ldap.CONNECT_ERROR as exc:
            raise _TryNext(
                f"StartTLS failed (is the certificate signed by the CA in ca_file, and issued "
                f"for this host name?): {describe_ldap_error(exc)}"
            ) from None
        except ldap.PROTOCOL_ERROR as exc:
            raise _TryNext(
                f"the server does not offer StartTLS: {describe_ldap_error(exc)}"
            ) from None
        except ldap.LDAPError as exc:
            raise _TryNext(f"StartTLS failed: {describe_ldap_error(exc)}") from None
        log(f"StartTLS established, {checked}")
    who = s.bind_dn or "anonymous"
    try:
        if s.bind_dn:
            conn.simple_bind_s(s.bind_dn, s.bind_password)
        else:
            conn.simple_bind_s("", "")
    except ldap.INVALID_CREDENTIALS:
        raise BindRefused(
            f"{uri}: the server refused the bind as {who}: wrong bind DN or password"
        ) from None
    except (ldap.SERVER_DOWN, ldap.TIMEOUT, ldap.CONNECT_ERROR) as exc:
        if s.security == "ldaps" and _is_tls_failure(exc, uri, s.timeout):
            raise _TryNext(
                f"TLS failed (is the certificate signed by the CA in ca_file, and issued "
                f"for this host name?): {describe_ldap_error(exc)}"
            ) from None
        raise _TryNext(f"cannot reach the server: {describe_ldap_error(exc)}") from None
    except (ldap.STRONG_AUTH_REQUIRED, ldap.CONFIDENTIALITY_REQUIRED) as exc:
        raise SourceError(
            f"{uri}: the server requires an encrypted connection to bind "
            f"(set security=starttls or ldaps): {describe_ldap_error(exc)}"
        ) from None
    except ldap.LDAPError as exc:
        raise SourceError(f"{uri}: bind as {who} failed: {describe_ldap_error(exc)}") from None
    if s.security == "ldaps":
        log(f"LDAPS established, {checked}")
    log(f"bound as {who}")
    return conn


def connect(settings: LdapSettings, log: StepLog = _no_log) -> LDAPObject:
    """A bound connection to the first usable server of `settings.uris`."""
    if settings.bind_dn and not settings.bind_password:
        raise ConfigError(
            "the bind password is empty; an empty password is an anonymous bind, so it is "
            "refused (set bind_password, or clear the bind user for anonymous access)",
            field="bind_password",
        )
    failures: list[str] = []
    for uri in settings.uris:
        try:
            return _connect_one(uri, settings, log)
        except _TryNext as exc:
            failures.append(f"{uri}: {exc}")
            log(f"{uri}: {exc}")
    if len(failures) == 1:
        raise SourceError(failures[0])
    raise SourceError("no LDAP server could be used: " + "; ".join(failures))


@contextlib.contextmanager
def connection(settings: LdapSettings, log: StepLog = _no_log) -> Iterator[LDAPObject]:
    conn = connect(settings, log)
    try:
        yield conn
    finally:
        with contextlib.suppress(ldap.LDAPError):
            conn.unbind_s()


def connected_uri(conn: LDAPObject) -> str:
    """The URI a connection was opened with (for messages)."""
    return str(getattr(conn, "_uri", "") or "the LDAP server")
