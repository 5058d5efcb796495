"""Paged LDAP searches (RFC 2696) and a syntax check for filters.

Servers cap how many entries one search returns (AD: 1,000; many OpenLDAP setups: 500).
A paged search asks for `page_size` entries at a time and follows the server's cookie
until it is empty, so every entry arrives and memory holds one page at most.

Referrals (entries held by another server) are skipped unless the connection follows
them: chasing them would bind to servers nobody configured.
"""

from __future__ import annotations

from collections.abc import Iterator

import ldap
from ldap.controls import SimplePagedResultsControl
from ldap.ldapobject import LDAPObject

from pbx_connector.directory.connection import connected_uri, describe_ldap_error
from pbx_connector.errors import ConfigError, SourceError

SCOPES = {"base": ldap.SCOPE_BASE, "one": ldap.SCOPE_ONELEVEL, "sub": ldap.SCOPE_SUBTREE}
DEFAULT_PAGE_SIZE = 500

Entry = tuple[str, dict[str, list[bytes]]]


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
    uri = connected_uri(conn)
    control = SimplePagedResultsControl(True, size=page_size, cookie=b"")
    while True:
        try:
            msgid = conn.search_ext(
                base, scope, filterstr, attrlist=attributes, serverctrls=[control]
            )
            _, data, _, controls = conn.result3(msgid, timeout=timeout)
        except ldap.NO_SUCH_OBJECT:
            raise SourceError(f"{uri}: the base DN {base!r} does not exist") from None
        except ldap.FILTER_ERROR as exc:
            raise ConfigError(
                f"{uri} rejected the filter {filterstr!r}: {describe_ldap_error(exc)}",
                field="filter",
            ) from None
        except ldap.SIZELIMIT_EXCEEDED:
            raise SourceError(
                f"{uri}: the server stopped at its size limit; it may not allow paged "
                f"searches of {page_size} entries (lower page_size)"
            ) from None
        except ldap.TIMEOUT:
            raise SourceError(f"{uri}: the search timed out after {timeout:g} s") from None
        except ldap.SERVER_DOWN as exc:
            raise SourceError(
                f"{uri}: the connection was lost during the search: {describe_ldap_error(exc)}"
            ) from None
        except ldap.LDAPError as exc:
            raise SourceError(f"{uri}: the search failed: {describe_ldap_error(exc)}") from None
        for dn, entry in data or ():
            # Search references come back without a DN (or as a list of URLs).
            if isinstance(dn, str) and isinstance(entry, dict):
                yield dn, entry
        cookie = b""
        for c in controls or ():
            if c.controlType == SimplePagedResultsControl.controlType:
                cookie = c.cookie
        if not cookie:
            return
        control.cookie = cookie
