"""Location `url` of a file source: the file read from an `https://` or `http://` URL
(see `sources.location`).

* **Streaming.** The body is read in chunks as the format parser asks for them; it is
  never held in memory as a whole. A gzip body (`Content-Encoding: gzip`) is unpacked
  here, a chunk at a time, so that a small body cannot unpack into a huge one at once.
* **Size.** `max_size` (MiB) is checked against `Content-Length` before a byte is read,
  and counted on the unpacked bytes while they are read.
* **TLS.** `verify=yes` (the default) checks the certificate against `ca_file` when set
  (only that CA), else against the system's CAs; `verify=no` checks nothing (debugging).
* **Redirects.** Followed here, not by httpx, at most `MAX_REDIRECTS`: `same-origin`
  (the default) follows only to the same scheme, host and port; `any` to anywhere but
  from https to http; `none` follows none. Credentials are sent only to the origin of the
  configured URL, never to another one a redirect leads to.
* **Authentication.** Basic (`url_user` + `url_password`) or bearer (`url_token`), not
  both; a URL with credentials in it (`https://user:pw@…`) is refused. Each setting is
  checked when it is set, whether or not the file is read from a URL now, and the
  credentials again when a run builds the location (a store changed by hand).
* **Conditional requests.** After a full read, `new_state()` offers the response's
  `ETag` and `Last-Modified`; a run that hands them back as `previous_state` sends
  `If-None-Match`/`If-Modified-Since`, and a `304 Not Modified` raises
  `SourceNotModified`. The state names the URL it belongs to and is ignored for any
  other URL.
* **Messages** name the URL without credentials or query values and the step that
  failed (cannot connect, TLS, HTTP status, too large, redirect refused, timeout), and
  never hold a secret.

`ssl_context`, `http_client`, `check_url` and `display_url` are for every source that
speaks HTTP (the peer source)."""

from __future__ import annotations

import io
import math
import os
import ssl
import zlib
from collections.abc import Generator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, Final, cast
from urllib.parse import parse_qsl, urlsplit

import httpx

from pbx_connector.errors import ConfigError, SourceError, SourceNotModified
from pbx_connector.sources.base import excerpt
from pbx_connector.sources.location import Location, LocationKind

__all__ = [
    "MAX_REDIRECTS",
    "URL",
    "UrlFile",
    "UrlSettings",
    "check_credentials",
    "check_url",
    "display_url",
    "http_client",
    "ssl_context",
    "url_settings",
]

#: Redirects followed for one request.
MAX_REDIRECTS: Final = 5
REDIRECT_POLICIES: Final = ("same-origin", "any", "none")
_MIB: Final = 1024 * 1024
_CHUNK: Final = 64 * 1024
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
#: The longest validator (ETag, Last-Modified) kept; longer ones are not used.
_VALIDATOR_CHARS: Final = 512


# --- settings -----------------------------------------------------------------------------


@dataclass(frozen=True)
class UrlSettings:
    """The checked settings of a URL location."""

    url: str
    user: str = ""
    ca_file: str = ""
    verify: bool = True
    timeout: float = 30.0
    max_bytes: int = 100 * _MIB
    redirects: str = "same-origin"


def check_url(url: str, field: str = "url") -> None:
    """An absolute http(s) URL with a host and no credentials in it; ConfigError names
    `field`. Messages never quote the URL (it may hold a password)."""
    if not url:
        raise ConfigError("the URL is not set", field=field)
    if any(char.isspace() or not char.isprintable() for char in url):
        raise ConfigError("the URL must not contain spaces or control characters", field=field)
    parts = urlsplit(url)
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        raise ConfigError("the URL must start with https:// or http://", field=field)
    if "@" in parts.netloc:
        raise ConfigError(
            "the URL must not hold a user name or password (https://user:password@…): "
            "set url_user and url_password, or url_token",
            field=field,
        )
    if not parts.hostname:
        raise ConfigError("the URL has no host", field=field)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        raise ConfigError("the URL is not valid (check its host and port)", field=field) from None


def _positive(settings: Mapping[str, str], key: str, default: str, unit: str) -> float:
    text = (settings.get(key, "") or default).strip()
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{key} must be a positive number of {unit}", field=key)
    return value


def _choice(settings: Mapping[str, str], key: str, default: str, allowed: Iterable[str]) -> str:
    value = (settings.get(key, "") or default).strip()
    choices = tuple(allowed)
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}", field=key)
    return value


def url_settings(settings: Mapping[str, str]) -> UrlSettings:
    """The URL location's settings, checked; ConfigError names the setting."""
    url = settings.get("url", "").strip()
    check_url(url)
    return _url_options(settings, url)


def _url_options(settings: Mapping[str, str], url: str) -> UrlSettings:
    """The settings besides the URL, checked when set; empty ones take the defaults."""
    ca_file = settings.get("ca_file", "").strip()
    verify = _choice(settings, "verify", "yes", ("yes", "no")) == "yes"
    if ca_file:
        if not os.path.isabs(os.path.expanduser(ca_file)):
            raise ConfigError(
                "ca_file must be an absolute path (a scheduled run starts in another directory)",
                field="ca_file",
            )
        ca_file = os.path.expanduser(ca_file)
        ssl_context(ca_file, verify)
    max_size = _positive(settings, "max_size", "100", "MiB")
    return UrlSettings(
        url=url,
        user=settings.get("url_user", "").strip(),
        ca_file=ca_file,
        verify=verify,
        timeout=_positive(settings, "timeout", "30", "seconds"),
        max_bytes=max(1, int(max_size * _MIB)),
        redirects=_choice(settings, "redirects", "same-origin", REDIRECT_POLICIES),
    )


def ssl_context(ca_file: str = "", verify: bool = True) -> ssl.SSLContext:
    """How to check a server's certificate: against `ca_file` only (a PEM file) when
    given, else against the system's CAs; `verify=False` checks nothing. A CA file that
    cannot be read or holds no certificate raises ConfigError naming `ca_file`."""
    if not verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        return ssl.create_default_context(cafile=ca_file or None)
    except ssl.SSLError:  # an OSError too: first
        raise ConfigError(
            f"the CA file {excerpt(ca_file, 200)} holds no PEM certificate", field="ca_file"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read the CA file {excerpt(ca_file, 200)}: {exc.strerror or exc}",
            field="ca_file",
        ) from None


def http_client(ca_file: str = "", verify: bool = True, timeout: float = 30.0) -> httpx.Client:
    """An HTTP client with these TLS settings and this timeout (for connecting and for
    each read). It follows no redirect by itself. Proxies come from the environment
    (HTTPS_PROXY, NO_PROXY, …)."""
    return httpx.Client(
        verify=ssl_context(ca_file, verify),
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        headers={"Accept-Encoding": "gzip", "User-Agent": "pbx-connector"},
    )


def display_url(url: str) -> str:
    """`url` fit for a message: without user name and password, query values replaced
    by `…`, no fragment."""
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return excerpt(url.split("@")[-1], 200)
    host = parts.netloc.rpartition("@")[2]
    shown = f"{parts.scheme}://{host}{parts.path}"
    if query:
        shown += "?" + "&".join(f"{name}=…" for name, _ in query)
    return excerpt(shown, 200)


def _origin(url: httpx.URL) -> tuple[str, str, int]:
    return url.scheme, url.host.lower(), url.port or _DEFAULT_PORTS.get(url.scheme, 0)


# --- the location -------------------------------------------------------------------------


class _BearerAuth(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


def check_credentials(user: str, secrets: Mapping[str, str]) -> None:
    """Basic authentication (`url_user`, with `url_password` or without) or a bearer
    token (`url_token`), not both, and no `url_password` without a `url_user`.
    ConfigError names the settings; it never holds a secret's value."""
    password = bool(secrets.get("url_password", ""))
    token = bool(secrets.get("url_token", ""))
    if token and (user or password):
        raise ConfigError(
            "set url_user and url_password (basic authentication) or url_token (bearer), not both",
            field="url_token",
        )
    if password and not user:
        raise ConfigError(
            "url_password is set but url_user is empty: basic authentication needs the "
            "user name too",
            field="url_user",
        )


def _auth(config: UrlSettings, secrets: Mapping[str, str]) -> httpx.Auth | None:
    # Checked when the settings are set too; again here for a store changed by hand.
    check_credentials(config.user, secrets)
    token = secrets.get("url_token", "")
    if token:
        return _BearerAuth(token)
    if config.user:
        return httpx.BasicAuth(config.user, secrets.get("url_password", ""))
    return None


def _ssl_error(exc: BaseException) -> ssl.SSLError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _os_reason(exc: BaseException) -> str | None:
    current: BaseException | None = exc
    for _ in range(10):
        if current is None:
            break
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        current = current.__cause__ or current.__context__
    return None


class UrlFile:
    """The file at a URL, fetched afresh on every `open()`."""

    #: The name of the state a run keeps for this location (see `new_state`).
    state_name = "url"

    def __init__(self, config: UrlSettings, secrets: Mapping[str, str]) -> None:
        self.config = config
        self.url = config.url
        self.name = display_url(config.url)
        #: Validators of an earlier full read (what `new_state` gave): when set, a
        #: request is conditional and `304 Not Modified` raises SourceNotModified.
        self.previous_state: Mapping[str, Any] | None = None
        self._auth = _auth(config, secrets)
        self._secrets = sorted((v for v in secrets.values() if v), key=len, reverse=True)
        self._state: dict[str, Any] | None = None

    def new_state(self) -> dict[str, Any] | None:
        """The validators of the last body read to its end (None: the server sent none)."""
        return self._state

    @contextmanager
    def open(self) -> Iterator[BinaryIO]:
        config = self.config
        with http_client(config.ca_file, config.verify, config.timeout) as client:
            response = self._response(client)
            try:
                body = _Body(self, response)
                with io.BufferedReader(body, _CHUNK) as stream:
                    yield cast(BinaryIO, stream)
            finally:
                response.close()

    # --- the request ----------------------------------------------------------------------

    def _conditions(self) -> dict[str, str]:
        state = self.previous_state
        if not state or state.get("url") != self.url:
            return {}
        headers: dict[str, str] = {}
        if isinstance(etag := state.get("etag"), str) and etag:
            headers["If-None-Match"] = etag
        if isinstance(modified := state.get("last_modified"), str) and modified:
            headers["If-Modified-Since"] = modified
        return headers

    def _response(self, client: httpx.Client) -> httpx.Response:
        """The response that carries the file, its body not read yet."""
        url = httpx.URL(self.url)
        origin = _origin(url)
        conditions = self._conditions()
        for hop in range(MAX_REDIRECTS + 1):
            request = client.build_request("GET", url, headers=conditions)
            auth = self._auth if _origin(url) == origin else None
            try:
                response = client.send(request, auth=auth, stream=True)
            except httpx.HTTPError as exc:
                raise self._transport_error(exc, url) from None
            status = response.status_code
            if status in _REDIRECTS:
                response.close()
                url = self._redirect(url, origin, response, hop)
                continue
            if status == 200:
                try:
                    self._check_length(response)
                except BaseException:
                    response.close()
                    raise
                return response
            response.close()
            if status == 304 and conditions:
                raise SourceNotModified("source not modified", source=self.name)
            raise self._status_error(status)
        raise AssertionError("unreachable")

    def _redirect(
        self, url: httpx.URL, origin: tuple[str, str, int], response: httpx.Response, hop: int
    ) -> httpx.URL:
        status = f"HTTP {response.status_code}"
        location = response.headers.get("location", "")
        try:
            target = url.join(location) if location else None
        except httpx.InvalidURL:
            target = None
        if target is None or target.scheme not in _DEFAULT_PORTS or not target.host:
            raise self._error(f"redirect refused: {status} without a valid http(s) Location")
        shown = display_url(str(target))
        if target.userinfo:
            raise self._error(f"redirect refused: {status} to a URL with credentials in it")
        policy = self.config.redirects
        if policy == "none":
            raise self._error(
                f"redirect refused: {status} to {shown}, and redirects are off (redirects=none)"
            )
        if url.scheme == "https" and target.scheme == "http":
            raise self._error(
                f"redirect refused: {status} from https to http ({shown}); the file would "
                "travel unencrypted"
            )
        if policy == "same-origin" and _origin(target) != origin:
            raise self._error(
                f"redirect refused: {status} to another scheme, host or port ({shown}); "
                "redirects=same-origin follows only to the same one (redirects=any follows it)"
            )
        if hop >= MAX_REDIRECTS:
            raise self._error(f"redirect refused: more than {MAX_REDIRECTS} redirects")
        return target

    def _check_length(self, response: httpx.Response) -> None:
        length = response.headers.get("content-length", "").strip()
        if length.isdigit() and int(length) > self.config.max_bytes:
            raise self._error(
                f"too large: the server announces {int(length):,} bytes, more than max_size "
                f"({_mib(self.config.max_bytes)})"
            )

    # --- errors ---------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "…")
        return text

    def _error(self, message: str) -> SourceError:
        return SourceError(self._scrub(message), source=self.name)

    def _status_error(self, code: int) -> SourceError:
        status = f"HTTP {code} {httpx.codes.get_reason_phrase(code)}".rstrip()
        if code == 401:
            reason = (
                "the server refused the credentials (url_user and url_password, or url_token)"
                if self._auth
                else "the server asks for credentials (url_user and url_password, or url_token)"
            )
        elif code == 403:
            reason = "the server refused access" + (" with these credentials" if self._auth else "")
        elif code in (404, 410):
            reason = "there is no file at this URL"
        elif code >= 500:
            reason = "the server failed to answer the request"
        else:
            reason = "the server did not send the file"
        return self._error(f"{status}: {reason}")

    def _transport_error(self, exc: httpx.HTTPError, url: httpx.URL) -> SourceError:
        where = f"{url.host}:{_origin(url)[2]}"
        seconds = f"{self.config.timeout:g} s"
        if isinstance(exc, httpx.ConnectTimeout):
            return self._error(f"timeout: no connection to {where} within {seconds}")
        if isinstance(exc, httpx.TimeoutException):
            return self._error(f"timeout: {where} did not answer within {seconds}")
        tls = _ssl_error(exc)
        if isinstance(tls, ssl.SSLCertVerificationError):
            reason = tls.verify_message or tls.reason or "certificate verify failed"
            if "mismatch" in reason:
                return self._error(
                    f"TLS: the certificate of {where} is not valid for {url.host} ({reason})"
                )
            return self._error(
                f"TLS: the certificate of {where} is not trusted ({reason}); set ca_file to "
                "the PEM file of the CA that signed it"
            )
        if tls is not None:
            return self._error(
                f"TLS: the handshake with {where} failed ({tls.reason or type(tls).__name__})"
            )
        reason = _os_reason(exc) or str(exc) or type(exc).__name__
        if isinstance(exc, httpx.ConnectError):
            return self._error(f"cannot connect to {where}: {reason}")
        if isinstance(exc, httpx.RemoteProtocolError):
            return self._error(f"the server at {where} broke off the answer ({reason})")
        return self._error(f"cannot read from {where}: {reason}")

    def _read_error(self, exc: Exception) -> SourceError:
        if isinstance(exc, SourceError):
            return exc if exc.source else self._error(exc.message)
        if isinstance(exc, zlib.error):
            return self._error("the gzip body is damaged")
        assert isinstance(exc, httpx.HTTPError)
        return self._transport_error(exc, httpx.URL(self.url))

    def _completed(self, response: httpx.Response) -> None:
        validators = {
            key: value
            for key, header in (("etag", "etag"), ("last_modified", "last-modified"))
            if (value := response.headers.get(header, "").strip())
            and len(value) <= _VALIDATOR_CHARS
            and value.isascii()
            and value.isprintable()
        }
        self._state = {"url": self.url, **validators} if validators else None


def _mib(size: int) -> str:
    """A size limit as a person set it: `100 MiB`, `0.5 MiB`, `10 bytes`."""
    if size < _MIB // 100:
        return f"{size:,} bytes"
    return f"{size / _MIB:,.2f}".rstrip("0").rstrip(".") + " MiB"


def _decoded(response: httpx.Response, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The body's bytes, gunzipped when the server gzipped them, a bounded chunk at a
    time however well they were compressed."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        yield from chunks
        return
    if encoding not in ("gzip", "x-gzip"):
        raise SourceError(f"the server sent the file with Content-Encoding {excerpt(encoding)}")
    gunzip = zlib.decompressobj(16 + zlib.MAX_WBITS)
    for chunk in chunks:
        data = chunk
        while data and not gunzip.eof:
            out = gunzip.decompress(data, _CHUNK)
            data = gunzip.unconsumed_tail
            if out:
                yield out
    if not gunzip.eof:
        raise SourceError("the gzip body ends before its end")


class _Body(io.RawIOBase):
    """The body of a response as a raw binary stream, counted against `max_size`."""

    def __init__(self, location: UrlFile, response: httpx.Response) -> None:
        super().__init__()
        self._location = location
        self._response = response
        self._chunks = _decoded(response, response.iter_raw(_CHUNK))
        self._pending = memoryview(b"")
        self._size = 0
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending and not self._ended:
            try:
                chunk = next(self._chunks, None)
            except (httpx.HTTPError, zlib.error, SourceError) as exc:
                raise self._location._read_error(exc) from None
            if chunk is None:
                self._ended = True
                self._location._completed(self._response)
                break
            self._size += len(chunk)
            if self._size > self._location.config.max_bytes:
                limit = _mib(self._location.config.max_bytes)
                raise self._location._error(
                    f"too large: the file is larger than max_size ({limit}); reading stopped"
                )
            self._pending = memoryview(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


# --- the table row ------------------------------------------------------------------------


def _chosen(settings: Mapping[str, str]) -> bool:
    return bool(settings.get("url", "").strip())


def _check(settings: Mapping[str, str]) -> None:
    """Check each URL setting that is set, whether or not the file is read from a URL
    now (a profile may be saved before all are set)."""
    url = settings.get("url", "").strip()
    if url:
        check_url(url)
    _url_options(settings, url)


def _check_secrets(settings: Mapping[str, str], secrets: Mapping[str, str]) -> None:
    check_credentials(settings.get("url_user", "").strip(), secrets)


def _build(
    settings: Mapping[str, str], secrets: Mapping[str, str], _owner: int | None = None
) -> Location:
    return UrlFile(url_settings(settings), secrets)


URL = LocationKind("url", _chosen, _check, _build, _check_secrets)
