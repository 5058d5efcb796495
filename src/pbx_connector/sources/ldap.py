"""Directory sources: generic LDAP, Active Directory and Univention Corporate Server.

All three read entries with one paged search and stream them as rows. A row holds `dn`
and every requested attribute: one value as a string, several as a list, an attribute the
entry lacks as an empty string (so an expression never fails on a sparse entry). Only
the attributes that the variables, the pre-filter and the key use are requested; the
preview, which has no such list, asks for all user attributes.

What each kind adds (documented in docs/directories.md):

* ``ldap`` — `uri`, `base_dn`, `filter`, `scope`; key `entryUUID` (operational, so it is
  requested by name).
* ``ad`` — `domain` gives the base DN (`example.test` → `DC=example,DC=test`) and the bind
  name (`user` → `user@example.test`); `server` defaults to the domain; LDAPS by default;
  key `objectGUID`; an optional `group` restricts the search to members of that group,
  nested groups included (matching rule 1.2.840.113556.1.4.1941).
* ``ucs`` — users below `cn=users,<base_dn>`; `allowed_attribute`/`allowed_value` keep
  only users enabled for the phone system.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import ldap

from pbx_connector.directory.connection import (
    SECURITY_CHOICES,
    LdapSettings,
    connection,
    describe_ldap_error,
    parse_uris,
)
from pbx_connector.directory.escape import escape_dn_value, escape_filter_value
from pbx_connector.directory.search import (
    DEFAULT_PAGE_SIZE,
    check_filter,
    paged_search,
    scope_of,
    search_pages,
)
from pbx_connector.directory.values import RowBuilder, row_value
from pbx_connector.domain.targets import parse_bool
from pbx_connector.errors import ConfigError, SourceError
from pbx_connector.sources.base import RowValue, SourceRow

DIRECTORY_KINDS = ("ldap", "ad", "ucs")
#: The pseudo-field every directory row carries.
DN_FIELD = "dn"
#: Matching rule that walks nested group membership in AD.
IN_CHAIN = "1.2.840.113556.1.4.1941"

_ATTRIBUTE = re.compile(r"(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+)(?:;[A-Za-z0-9-]+)*")


@dataclass(frozen=True)
class LdapQuery:
    base_dn: str
    filter: str
    scope: int
    page_size: int = DEFAULT_PAGE_SIZE
    #: AD only: restrict to members of this group (a DN, or a name to look up).
    group: str = ""


#: What `_digested` gives for a page entry: (DN, row data or None when known, digest).
_Digested = tuple[str, dict[str, RowValue] | None, bytes]


class LdapSource:
    """Entries of one search as rows."""

    open_ended = True
    #: Set by `digest_entries`: the hash to copy for each entry, `known` and `take`.
    _digests: tuple[hashlib.blake2b, Callable[[bytes], bool], Callable[[bytes], bool]] | None = None

    def __init__(
        self,
        conn: LdapSettings,
        query: LdapQuery,
        attributes: Sequence[str] | None,
        extra: Sequence[str] = (),
    ) -> None:
        self.settings = conn
        self.query = query
        #: None: every user attribute (plus `extra`, for operational ones), for the preview.
        self.attributes = None if attributes is None else _attribute_list(attributes)
        self.extra = _attribute_list(extra)
        self.name = f"{', '.join(conn.uris)} ({query.base_dn})"

    def fields(self) -> list[str]:
        return [DN_FIELD, *(self.attributes or [])]

    def digest_entries(
        self,
        base: hashlib.blake2b,
        known: Callable[[bytes], bool],
        take: Callable[[bytes], bool],
    ) -> bool:
        """`DigestsEntries`: the digest of an entry is a copy of `base` over the DN and
        the attributes with their raw values, in the order received, before anything is
        decoded (a sync knows the entries that records were made from unchanged, the
        bulk of a re-sync). Only a search for named attributes digests (not the
        preview's search for all)."""
        if self.attributes is None:
            return False
        self._digests = (base, known, take)
        return True

    def rows(self) -> Iterator[SourceRow]:
        if self._digests is not None and self.attributes is not None:
            yield from self._digested_rows(self.attributes, *self._digests)
            return
        wanted = self.attributes
        with connection(self.settings) as conn:
            filterstr = self._filter(conn)
            # "1.1" asks for no attributes at all (RFC 4511), when only the DN is used.
            attrlist = ["*", *self.extra] if wanted is None else (wanted or ["1.1"])
            build = _all_attributes if wanted is None else RowBuilder(DN_FIELD, wanted)
            pages = search_pages(
                conn,
                self.query.base_dn,
                self.query.scope,
                filterstr,
                attrlist,
                lambda dn, entry: (dn, build(dn, entry)),
                self.query.page_size,
                self.settings.timeout,
            )
            n = 0
            for page in pages:
                for dn, data in page:
                    n += 1
                    yield SourceRow(n, data, ref=dn)

    def _digested_rows(
        self,
        wanted: list[str],
        base: hashlib.blake2b,
        known: Callable[[bytes], bool],
        take: Callable[[bytes], bool],
    ) -> Iterator[SourceRow]:
        build = RowBuilder(DN_FIELD, wanted)

        def convert(dn: str, entry: dict[str, list[bytes]]) -> _Digested:
            h = base.copy()
            # marshal version 2 writes no back-references: the same entry, the same bytes.
            h.update(marshal.dumps((dn, entry), 2))
            digest = h.digest()
            return dn, (None if known(digest) else build(dn, entry)), digest

        with connection(self.settings) as conn:
            filterstr = self._filter(conn)
            pages = search_pages(
                conn,
                self.query.base_dn,
                self.query.scope,
                filterstr,
                wanted or ["1.1"],
                convert,
                self.query.page_size,
                self.settings.timeout,
            )
            n = 0
            for page in pages:
                for dn, data, digest in page:
                    n += 1
                    if data is None:
                        if not take(digest):
                            yield SourceRow(n, {}, ref=dn, digest=digest, known=True)
                    else:
                        yield SourceRow(n, data, ref=dn, digest=digest)

    def _filter(self, conn: ldap.ldapobject.LDAPObject) -> str:
        filterstr = self.query.filter
        if self.query.group:
            group_dn = _group_dn(conn, self.query)
            filterstr = f"(&{filterstr}(memberOf:{IN_CHAIN}:={escape_filter_value(group_dn)}))"
        return filterstr


def _attribute_list(names: Sequence[str]) -> list[str]:
    seen: dict[str, str] = {}
    for name in names:
        if name == DN_FIELD:
            continue
        if not _ATTRIBUTE.fullmatch(name):
            raise ConfigError(
                f"{name!r} is not an LDAP attribute name (letters, digits and '-')",
                field=name,
            )
        seen.setdefault(name.lower(), name)
    return list(seen.values())


def _all_attributes(dn: str, entry: Mapping[str, list[bytes]]) -> dict[str, RowValue]:
    """A row of every attribute the entry has (the preview asks for all of them)."""
    data: dict[str, RowValue] = {DN_FIELD: dn}
    for name, values in entry.items():
        data[name] = row_value(name, values)
    return data


def _group_dn(conn: ldap.ldapobject.LDAPObject, query: LdapQuery) -> str:
    """The group setting as a DN: taken as it is when it looks like one (and exists),
    otherwise the one group whose cn or sAMAccountName it is."""
    group = query.group.strip()
    if "=" in group:
        try:
            conn.search_s(group, ldap.SCOPE_BASE, "(objectClass=*)", ["1.1"])
        except ldap.NO_SUCH_OBJECT:
            raise SourceError(f"the group {group!r} does not exist") from None
        except ldap.LDAPError as exc:
            raise SourceError(
                f"cannot read the group {group!r}: {describe_ldap_error(exc)}"
            ) from None
        return group
    name = escape_filter_value(group)
    found = [
        dn
        for dn, _ in paged_search(
            conn,
            query.base_dn,
            ldap.SCOPE_SUBTREE,
            f"(&(objectClass=group)(|(cn={name})(sAMAccountName={name})))",
            ["1.1"],
        )
    ]
    if len(found) != 1:
        what = "no group" if not found else f"{len(found)} groups"
        raise SourceError(f"{what} named {group!r} below {query.base_dn}; give its DN instead")
    return found[0]


# --- from profile settings ----------------------------------------------------------------


def _number(settings: Mapping[str, str], name: str, default: float, integer: bool) -> float:
    text = settings.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {text!r}", field=name) from None
    if value <= 0:
        raise ConfigError(f"{name} must be greater than 0", field=name)
    return value


def _yes(settings: Mapping[str, str], name: str, default: bool) -> bool:
    text = settings.get(name, "").strip()
    if not text:
        return default
    value = parse_bool(text)
    if value is None:
        raise ConfigError(f"{name} must be yes or no, not {text!r}", field=name)
    return value


def domain_base_dn(domain: str) -> str:
    """`example.test` → `DC=example,DC=test`."""
    parts = [p for p in domain.strip().strip(".").split(".") if p]
    if not parts:
        raise ConfigError("the AD domain is not set (domain=example.test)", field="domain")
    return ",".join(f"DC={escape_dn_value(p)}" for p in parts)


def ad_bind_name(user: str, domain: str) -> str:
    """A bare account name becomes a UPN in the domain; a UPN, DN or DOMAIN\\user stays."""
    user = user.strip()
    if not user or any(c in user for c in "@=\\"):
        return user
    return f"{user}@{domain.strip().strip('.')}"


def _security(kind: str, settings: Mapping[str, str]) -> str:
    """The profile's security setting; AD defaults to LDAPS, the others to StartTLS."""
    security = settings.get("security", "").strip() or ("ldaps" if kind == "ad" else "starttls")
    if security not in SECURITY_CHOICES:
        raise ConfigError(
            f"security must be one of {', '.join(SECURITY_CHOICES)}, not {security!r}",
            field="security",
        )
    return security


def connection_settings(
    kind: str, settings: Mapping[str, str], secrets: Mapping[str, str]
) -> LdapSettings:
    """How to reach the directory of a profile of this kind (shared with authentication)."""
    security = _security(kind, settings)
    if kind == "ad":
        domain = settings.get("domain", "")
        servers = settings.get("server", "").strip() or domain.strip()
        uris = parse_uris(servers, security)
        bind_dn = ad_bind_name(settings.get("bind_user", ""), domain)
    else:
        uris = parse_uris(settings.get("uri", ""), security)
        bind_dn = settings.get("bind_dn", "").strip()
    if not uris:
        what = "server" if kind == "ad" else "uri"
        raise ConfigError(f"no LDAP server is set ({what}=…)", field=what)
    return LdapSettings(
        uris=uris,
        security=security,
        ca_file=settings.get("ca_file", "").strip(),
        verify=_yes(settings, "verify", True),
        bind_dn=bind_dn,
        bind_password=secrets.get("bind_password", ""),
        timeout=_number(settings, "timeout", 10.0, integer=False),
        follow_referrals=settings.get("referrals", "ignore").strip() == "follow",
    )


def query_settings(kind: str, settings: Mapping[str, str]) -> LdapQuery:
    base_dn = settings.get("base_dn", "").strip()
    if kind == "ad" and not base_dn:
        base_dn = domain_base_dn(settings.get("domain", ""))
    if not base_dn:
        raise ConfigError("the base DN is not set (base_dn=dc=example,dc=com)", field="base_dn")
    search_base = base_dn
    if kind == "ucs":
        search_base = settings.get("search_base", "").strip() or f"cn=users,{base_dn}"
    filterstr = settings.get("filter", "").strip() or "(objectClass=*)"
    check_filter(filterstr)
    if kind == "ucs":
        attribute = settings.get("allowed_attribute", "").strip()
        if attribute:
            if not _ATTRIBUTE.fullmatch(attribute):
                raise ConfigError(
                    f"{attribute!r} is not an LDAP attribute name", field="allowed_attribute"
                )
            value = escape_filter_value(settings.get("allowed_value", "").strip() or "1")
            filterstr = f"(&{filterstr}({attribute}={value}))"
    return LdapQuery(
        base_dn=search_base,
        filter=filterstr,
        scope=scope_of(settings.get("scope", "").strip() or "sub"),
        page_size=int(_number(settings, "page_size", DEFAULT_PAGE_SIZE, integer=True)),
        group=settings.get("group", "").strip() if kind == "ad" else "",
    )


def key_attributes(settings: Mapping[str, str]) -> list[str]:
    return [k.strip() for k in settings.get("key", "").split(",") if k.strip()]


def open_directory(
    kind: str,
    settings: Mapping[str, str],
    secrets: Mapping[str, str],
    attributes: Sequence[str] | None,
    _owner: int | None = None,
) -> LdapSource:
    """A directory source; `attributes` None means all (for the preview). The key's
    attributes are always requested, since operational ones (entryUUID) come only then.
    (`_owner`, the profile's id, matters only to a file source.)"""
    conn = connection_settings(kind, settings, secrets)
    query = query_settings(kind, settings)
    keys = key_attributes(settings)
    if attributes is None:
        return LdapSource(conn, query, None, extra=keys)
    return LdapSource(conn, query, [*attributes, *keys])


def check_directory_settings(kind: str, settings: Mapping[str, str]) -> None:
    """Check the directory settings that are set (missing required ones are reported by
    whoever knows the template), without contacting any server."""
    security = _security(kind, settings)
    servers = settings.get("server" if kind == "ad" else "uri", "")
    if servers.strip():
        parse_uris(servers, security)
    if settings.get("filter", "").strip():
        check_filter(settings["filter"])
    scope_of(settings.get("scope", "").strip() or "sub")
    _number(settings, "page_size", DEFAULT_PAGE_SIZE, integer=True)
    _number(settings, "timeout", 10.0, integer=False)
    _yes(settings, "verify", True)
    if kind == "ad" and settings.get("domain", "").strip():
        domain_base_dn(settings["domain"])
    ca_file = settings.get("ca_file", "").strip()
    if ca_file and not os.path.isfile(ca_file):
        raise ConfigError(f"the CA file {ca_file!r} does not exist", field="ca_file")
