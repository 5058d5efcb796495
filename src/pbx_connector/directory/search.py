"""Paged LDAP searches (RFC 2696) and a syntax check for filters.

Servers cap how many entries one search returns (AD: 1,000; many OpenLDAP setups: 500).
A paged search asks for `page_size` entries at a time and follows the server's cookie
until it is empty, so every entry arrives and memory holds one page at most.

Referrals (entries held by another server) are skipped unless the connection follows
them: chasing them would bind to servers nobody configured.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import ldap
from ldap.controls import SimplePagedResultsControl
from ldap.ldapobject import LDAPObject

from pbx_connector.directory.connection import connected_uri, describe_ldap_error
from pbx_connector.errors import ConfigError, PbxConnectorError, SourceError

SCOPES = {"base": ldap.SCOPE_BASE, "one": ldap.SCOPE_ONELEVEL, "sub": ldap.SCOPE_SUBTREE}
DEFAULT_PAGE_SIZE = 500

Entry = tuple[str, dict[str, list[bytes]]]
T = TypeVar("T")


def scope_of(name: str) -> int:
    try:
        return int(SCOPES[name])
    except KeyError:
        raise ConfigError(
            f"scope must be one of {', '.join(SCOPES)}, not {name!r}", field="scope"
        ) from None


def check_filter(text: str) -> None:
    """Refuse a filter that is not RFC 4515 syntax, naming the position, before any server
    sees it. Only the structure is checked: parentheses, operators, non-empty items."""
    pos = _filter(text.strip(), 0, text.strip())
    if pos != len(text.strip()):
        raise ConfigError(
            f"invalid LDAP filter {text!r}: unexpected text at position {pos + 1}",
            field="filter",
        )


def _filter(text: str, pos: int, whole: str) -> int:
    if pos >= len(text) or text[pos] != "(":
        raise ConfigError(
            f"invalid LDAP filter {whole!r}: expected '(' at position {pos + 1}", field="filter"
        )
    pos += 1
    if pos < len(text) and text[pos] in "&|":
        pos += 1
        while pos < len(text) and text[pos] == "(":
            pos = _filter(text, pos, whole)
    elif pos < len(text) and text[pos] == "!":
        pos = _filter(text, pos + 1, whole)
    else:
        end = pos
        while end < len(text) and text[end] not in "()":
            end += 1
        item = text[pos:end]
        if "=" not in item or item.startswith("="):
            raise ConfigError(
                f"invalid LDAP filter {whole!r}: {item!r} is not attribute=value",
                field="filter",
            )
        pos = end
    if pos >= len(text) or text[pos] != ")":
        raise ConfigError(
            f"invalid LDAP filter {whole!r}: missing ')' at position {pos + 1}", field="filter"
        )
    return pos + 1


def paged_search(
    conn: LDAPObject,
    base: str,
    scope: int,
    filterstr: str,
    attributes: list[str] | None,
    page_size: int = DEFAULT_PAGE_SIZE,
    timeout: float = -1,
) -> Iterator[Entry]:
    """Every entry below `base` matching `filterstr`, page by page."""
    for page in search_pages(conn, base, scope, filterstr, attributes, _as_is, page_size, timeout):
        yield from page


def _as_is(dn: str, entry: dict[str, list[bytes]]) -> Entry:
    return dn, entry


def search_pages(
    conn: LDAPObject,
    base: str,
    scope: int,
    filterstr: str,
    attributes: list[str] | None,
    convert: Callable[[str, dict[str, list[bytes]]], T],
    page_size: int = DEFAULT_PAGE_SIZE,
    timeout: float = -1,
) -> Iterator[list[T]]:
    """Every entry below `base` matching `filterstr`, a page at a time, each entry as
    `convert(dn, attributes)` makes it.

    Two things make a large search cheaper here than entry by entry:

    * The next page is asked for as soon as this page's cookie is known, before this
      page is handed on, so that the server looks it up while the caller works.
    * Receiving a page makes python-ldap build thousands of lists and dicts at once. Left
      to itself, the cycle collector would run many times over them (they hold no
      cycles) and move them to its oldest generation, which then triggers full
      collections of the whole process: in a 20,000-entry search that was a quarter of
      the time. So a page is received and converted with automatic collection paused,
      and python-ldap's objects are freed (by reference counting) before the page is
      handed on; the pause covers no code of the caller.
    """
    uri = connected_uri(conn)
    control = SimplePagedResultsControl(True, size=page_size, cookie=b"")
    msgid = _search(conn, uri, base, scope, filterstr, attributes, control, page_size, timeout)
    while True:
        with collection_paused():
            data, controls = _result(conn, uri, msgid, base, filterstr, page_size, timeout)
            cookie = b""
            for c in controls or ():
                if c.controlType == SimplePagedResultsControl.controlType:
                    cookie = c.cookie
            if cookie:
                control.cookie = cookie
                msgid = _search(
                    conn, uri, base, scope, filterstr, attributes, control, page_size, timeout
                )
            # Search references come back without a DN (or as a list of URLs).
            page = [
                convert(dn, entry)
                for dn, entry in data or ()
                if isinstance(dn, str) and isinstance(entry, dict)
            ]
            del data
        yield page
        if not cookie:
            return


def _search(
    conn: LDAPObject,
    uri: str,
    base: str,
    scope: int,
    filterstr: str,
    attributes: list[str] | None,
    control: SimplePagedResultsControl,
    page_size: int,
    timeout: float,
) -> int:
    try:
        msgid: int = conn.search_ext(
            base, scope, filterstr, attrlist=attributes, serverctrls=[control]
        )
    except ldap.LDAPError as exc:
        raise _search_error(exc, uri, base, filterstr, page_size, timeout) from None
    return msgid


def _result(
    conn: LDAPObject,
    uri: str,
    msgid: int,
    base: str,
    filterstr: str,
    page_size: int,
    timeout: float,
) -> tuple[list[Any] | None, list[Any] | None]:
    try:
        _, data, _, controls = conn.result3(msgid, timeout=timeout)
    except ldap.LDAPError as exc:
        raise _search_error(exc, uri, base, filterstr, page_size, timeout) from None
    return data, controls


def _search_error(
    exc: ldap.LDAPError, uri: str, base: str, filterstr: str, page_size: int, timeout: float
) -> PbxConnectorError:
    if isinstance(exc, ldap.NO_SUCH_OBJECT):
        return SourceError(f"{uri}: the base DN {base!r} does not exist")
    if isinstance(exc, ldap.FILTER_ERROR):
        return ConfigError(
            f"{uri} rejected the filter {filterstr!r}: {describe_ldap_error(exc)}",
            field="filter",
        )
    if isinstance(exc, ldap.SIZELIMIT_EXCEEDED):
        return SourceError(
            f"{uri}: the server stopped at its size limit; it may not allow paged "
            f"searches of {page_size} entries (lower page_size)"
        )
    if isinstance(exc, ldap.TIMEOUT):
        return SourceError(f"{uri}: the search timed out after {timeout:g} s")
    if isinstance(exc, ldap.SERVER_DOWN):
        return SourceError(
            f"{uri}: the connection was lost during the search: {describe_ldap_error(exc)}"
        )
    return SourceError(f"{uri}: the search failed: {describe_ldap_error(exc)}")


_pause_lock = threading.Lock()
_pauses = 0
_was_enabled = False


@contextlib.contextmanager
def collection_paused() -> Iterator[None]:
    """Automatic cycle collection off for the block, in every thread: it is process-wide,
    so overlapping pauses (two runs in two threads) are counted, and it is switched back
    on when the last one ends, if it was on before the first."""
    global _pauses, _was_enabled
    with _pause_lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()
