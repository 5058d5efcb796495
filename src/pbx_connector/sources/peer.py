"""The `peer` source: the global phonebook of another pbx-connector over its REST API.

The other instance is read with one of its API tokens (the viewer role is enough) through
`GET /api/v1/phonebook?owner=&order=id`, page by page. A row is one entry of its global
phonebook: `id` (the entry's id there, the template's key) and the entry's fields as text.

A partial read would make a mirror run delete records, so the pages are checked against
each other: every page after the first starts with the last entry of the page before
(which must still be where it was), ids only go up, and the count stays the same. When
the peer's phonebook changed in between, the run fails and can simply be tried again.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeGuard
from urllib.parse import urlsplit

import httpx

from pbx_connector.domain.targets import parse_bool
from pbx_connector.errors import ConfigError, SourceError
from pbx_connector.sources.base import RowValue, SourceRow, excerpt

#: Entries asked for per request (the API allows up to 1000).
PAGE_SIZE: Final = 500
#: The route of the peer's phonebook, below its address.
PHONEBOOK_PATH: Final = "/api/v1/phonebook"
#: A page of 500 entries is at most a few MiB; a larger answer is not a page.
MAX_PAGE_BYTES: Final = 32 * 1024 * 1024
#: How much of an error answer is read to quote its message.
MAX_ERROR_BYTES: Final = 64 * 1024
DEFAULT_TIMEOUT: Final = 30.0
ID_FIELD: Final = "id"
#: The fields of a phonebook entry that the peer's API answers, as the source offers them
#: (its `owner` is always empty here and its `origin` is the peer's own business).
ENTRY_FIELDS: Final = (
    "displayname",
    "phone",
    "phone_e164",
    "givenname",
    "surname",
    "organisation",
    "email",
    "mobile",
    "mobile_e164",
    "homephone",
    "homephone_e164",
    "fax",
    "fax_e164",
    "notes",
    "homepage",
    "customernumber",
)
CHANGED: Final = "the peer's phonebook changed while it was read; try again"


# --- settings -----------------------------------------------------------------------------


def _base_url(text: str) -> str:
    """The peer's address, checked: http(s), a host, no user or password, no query; an
    optional path prefix (a reverse proxy's) kept without its trailing slash.

    Messages never quote the address: it could hold a password."""
    url = text.strip()
    if any(not c.isprintable() or c.isspace() for c in url):
        raise ConfigError(
            "the peer's url must not contain spaces or control characters", field="url"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"the peer's url is not a valid URL ({exc})", field="url") from None
    if parts.scheme not in ("http", "https"):
        raise ConfigError(
            "the peer's url must start with https:// or http:// (e.g. https://pbx2.example.test:8080)",
            field="url",
        )
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ConfigError(
            "the peer's url must not hold a user or password: the API token is the secret 'token'",
            field="url",
        )
    if not parts.hostname:
        raise ConfigError("the peer's url has no host name", field="url")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise ConfigError("the peer's url must not have a query (?…) or fragment (#…)", field="url")
    prefix = parts.path.rstrip("/")
    if prefix == "/api/v1" or prefix.endswith("/api/v1") or "/api/v1/" in prefix + "/":
        raise ConfigError(
            "give the peer's address without /api/v1 (e.g. https://pbx2.example.test:8080)",
            field="url",
        )
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    return f"{parts.scheme}://{netloc}{prefix}"


def _timeout(settings: Mapping[str, str]) -> float:
    text = settings.get("timeout", "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(
            f"timeout must be a number of seconds, not {excerpt(text)!r}", field="timeout"
        ) from None
    if not value > 0 or value == float("inf"):
        raise ConfigError("timeout must be a number of seconds greater than 0", field="timeout")
    return value


def _verify(settings: Mapping[str, str]) -> bool:
    text = settings.get("verify", "").strip()
    if not text:
        return True
    value = parse_bool(text)
    if value is None:
        raise ConfigError(f"verify must be yes or no, not {excerpt(text)!r}", field="verify")
    return value


def _ca_file(settings: Mapping[str, str]) -> str:
    ca_file = settings.get("ca_file", "").strip()
    if ca_file and not (os.path.isfile(ca_file) and os.access(ca_file, os.R_OK)):
        raise ConfigError(
            f"the CA file {excerpt(ca_file, 200)!r} does not exist or cannot be read",
            field="ca_file",
        )
    return ca_file


def check_settings(settings: Mapping[str, str]) -> None:
    """Check a peer profile's settings that are set, without contacting the peer (a
    missing url is reported by whoever knows the template); ConfigError names the
    setting."""
    if settings.get("url", "").strip():
        _base_url(settings["url"])
    _timeout(settings)
    _verify(settings)
    _ca_file(settings)


@dataclass(frozen=True)
class PeerSettings:
    url: str
    ca_file: str
    verify: bool
    timeout: float


def peer_settings(settings: Mapping[str, str]) -> PeerSettings:
    url = settings.get("url", "").strip()
    if not url:
        raise ConfigError(
            "the peer's address is not set (url=https://pbx2.example.test:8080)", field="url"
        )
    return PeerSettings(
        url=_base_url(url),
        ca_file=_ca_file(settings),
        verify=_verify(settings),
        timeout=_timeout(settings),
    )


# --- the source ---------------------------------------------------------------------------


class PeerSource:
    """The global phonebook of another pbx-connector, one row per entry, in id order."""

    open_ended = False

    def __init__(self, settings: PeerSettings, token: str) -> None:
        self.settings = settings
        self._token = token
        #: The peer's address: it holds no credentials (check_settings refuses them).
        self.name = settings.url

    def __repr__(self) -> str:  # never the token
        return f"PeerSource({self.name!r})"

    def fields(self) -> list[str]:
        return [ID_FIELD, *ENTRY_FIELDS]

    def rows(self) -> Iterator[SourceRow]:
        token = self._token.strip()
        if not token:
            raise ConfigError(
                "no API token of the peer is set (the secret 'token': a viewer token "
                "created on the peer)",
                field="token",
            )
        if not token.isascii() or not token.isprintable() or " " in token:
            raise ConfigError("the token holds characters an API token cannot have", field="token")
        with httpx.Client(
            base_url=self.settings.url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            verify=self._tls_context(),
            timeout=self.settings.timeout,
            follow_redirects=False,  # a redirect must not carry the token elsewhere
            trust_env=False,  # no proxy or .netrc from the environment
        ) as client:
            yield from self._entries(client)

    def _entries(self, client: httpx.Client) -> Iterator[SourceRow]:
        read = 0
        last_id: int | None = None
        total: int | None = None
        offset = 0
        while True:
            items, page_total = self._page(client, offset)
            full = len(items) == PAGE_SIZE
            if total is None:
                total = page_total
            elif page_total != total:
                raise self._error(CHANGED)
            if last_id is not None:
                # This page starts with the last entry of the one before: if it is not
                # there, entries before it came or went, and offsets moved under us.
                if not items or self._entry_id(items[0]) != last_id:
                    raise self._error(CHANGED)
                items = items[1:]
            for item in items:
                entry_id = self._entry_id(item)
                if last_id is not None and entry_id <= last_id:
                    raise self._error(CHANGED)
                last_id = entry_id
                read += 1
                yield SourceRow(
                    read, self._row(item, entry_id), ref=f"{self.name} entry {entry_id}"
                )
            if read >= total or not full:
                break
            offset = read - 1
        if read != total:
            raise self._error(CHANGED)

    def _row(self, item: Mapping[str, Any], entry_id: int) -> dict[str, RowValue]:
        owner = item.get("owner")
        if owner not in (None, ""):
            # Asked for the global phonebook and given a private entry: do not import it.
            raise self._error(
                "the peer answered a private phonebook entry when asked for the global "
                "phonebook; nothing is imported from it"
            )
        data: dict[str, RowValue] = {ID_FIELD: str(entry_id)}
        for name in ENTRY_FIELDS:
            value = item.get(name)
            if value is None:
                data[name] = ""
            elif isinstance(value, str):
                data[name] = value
            else:
                raise self._error(
                    f"the peer's answer is not a phonebook page: field {name!r} of entry "
                    f"{entry_id} is not text"
                )
        return data

    def _page(self, client: httpx.Client, offset: int) -> tuple[list[Mapping[str, Any]], int]:
        """One page of the global phonebook: its entries and the total count."""
        params = {"owner": "", "limit": str(PAGE_SIZE), "offset": str(offset), "order": ID_FIELD}
        try:
            with client.stream("GET", PHONEBOOK_PATH, params=params) as response:
                if response.status_code != 200:
                    raise self._refused(response)
                body = _read(response, MAX_PAGE_BYTES)
        except httpx.TimeoutException:
            raise self._error(
                f"the peer did not answer within {self.settings.timeout:g} s (timeout)"
            ) from None
        except httpx.TransportError as exc:
            raise self._error(self._transport_problem(exc)) from None
        if body is None:
            raise self._error(
                f"the peer's answer is not a phonebook page: larger than "
                f"{MAX_PAGE_BYTES // (1024 * 1024)} MiB"
            )
        return self._parse(body)

    def _parse(self, body: bytes) -> tuple[list[Mapping[str, Any]], int]:
        not_page = "the peer's answer is not a phonebook page of pbx-connector's API"
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            raise self._error(f"{not_page} (not JSON)") from None
        if not isinstance(data, dict):
            raise self._error(f"{not_page} (not a JSON object)")
        items, total = data.get("items"), data.get("total")
        if not isinstance(items, list) or not _is_int(total) or total < 0:
            raise self._error(f'{not_page} (no "items" list and "total" count)')
        if data.get("total_exact", True) is not True:
            raise self._error(f"{not_page} (its total is not exact)")
        if len(items) > PAGE_SIZE or not all(isinstance(i, dict) for i in items):
            raise self._error(f"{not_page} (the items are not phonebook entries)")
        return items, total

    def _refused(self, response: httpx.Response) -> SourceError:
        status = response.status_code
        if status == 401:
            return self._error(
                "the peer refused the API token (HTTP 401): the token is unknown there, "
                "or was revoked or has expired; a new viewer token of the peer is needed"
            )
        if status == 403:
            return self._error(
                "the peer refused to show its phonebook (HTTP 403): the API token lacks "
                "the viewer role there"
            )
        if 300 <= status < 400:
            location = excerpt(response.headers.get("location", ""), 120)
            return self._error(
                f"the peer answered with a redirect (HTTP {status}) to {location!r}, which is "
                "not followed: set url to the address it redirects to"
            )
        if status == 404:
            return self._error(
                f"no pbx-connector phonebook API at {self.name}{PHONEBOOK_PATH} (HTTP 404): "
                "is url the address of a pbx-connector instance?"
            )
        detail = _error_message(_read(response, MAX_ERROR_BYTES) or b"")
        return self._error(
            f"the peer answered HTTP {status} to the phonebook request"
            + (f": {detail}" if detail else "")
        )

    def _transport_problem(self, exc: httpx.TransportError) -> str:
        tls = _find(exc, ssl.SSLError)
        if isinstance(tls, ssl.SSLCertVerificationError):
            reason = tls.verify_message or tls.reason or "not trusted"
            hint = (
                "set ca_file to the CA that signed it"
                if not self.settings.ca_file
                else "ca_file is not the CA that signed it"
            )
            return f"TLS: the peer's certificate was not accepted ({reason}); {hint}"
        plain = self.settings.url.startswith("http://")
        if tls is not None:
            reason = (tls.reason or str(tls)).lower().replace("_", " ")
            hint = "; does it serve plain http? then url starts with http://"
            return f"TLS handshake with the peer failed ({reason})" + (
                hint if "wrong version number" in reason else ""
            )
        if plain and isinstance(exc, httpx.RemoteProtocolError):
            return (
                "the peer closed the connection without an HTTP answer; does it serve "
                "https? then url starts with https://"
            )
        what = "connect to" if isinstance(exc, httpx.ConnectError) else "read from"
        return f"cannot {what} the peer: {_reason(exc)}"

    def _tls_context(self) -> ssl.SSLContext:
        try:
            if not self.settings.verify:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                return context
            return ssl.create_default_context(cafile=self.settings.ca_file or None)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise ConfigError(
                f"the CA file {excerpt(self.settings.ca_file, 200)!r} cannot be used: "
                f"{_reason(exc)}",
                field="ca_file",
            ) from None

    def _entry_id(self, item: Mapping[str, Any]) -> int:
        entry_id = item.get(ID_FIELD)
        if not _is_int(entry_id) or entry_id < 1:
            raise self._error("the peer's answer is not a phonebook page: an entry has no id")
        return int(entry_id)

    def _error(self, message: str) -> SourceError:
        return SourceError(message, source=self.name)


def _read(response: httpx.Response, limit: int) -> bytes | None:
    """The body, or None when it is larger than `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _error_message(body: bytes) -> str:
    """The message of the peer's error body (`{"error": {"message": …}}`), quotable."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return ""
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return excerpt(message, 200) if isinstance(message, str) else ""


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _find(exc: BaseException, kind: type[ssl.SSLError]) -> ssl.SSLError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _reason(exc: BaseException) -> str:
    """What went wrong, in the operating system's words when it said something."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError) and current.strerror:
            return current.strerror.lower() if current.strerror[:1].isupper() else current.strerror
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return excerpt(str(exc), 200) or type(exc).__name__


def open_peer(
    settings: Mapping[str, str],
    secrets: Mapping[str, str],
    attributes: Sequence[str] | None = None,
    _owner: int | None = None,
) -> PeerSource:
    """A peer source (not yet read): `attributes` are not needed, an entry has few fields
    (nor `_owner`, the profile's id, which matters only to a file source)."""
    return PeerSource(peer_settings(settings), secrets.get("token", ""))
