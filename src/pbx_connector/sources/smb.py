"""Location `share` of a file source: reading the file from an SMB/CIFS share (see
`sources.location`).

Settings (on every CSV template): `use_share=yes`, `share` (`\\\\server\\share`, or
`//server/share`), `share_port` (445), `path` inside the share (`test\\address.csv` or
`test/address.csv`), `share_user` (`user`, `DOMAIN\\user` or `user@domain`), the secret
`share_password`, and `timeout` (seconds).

How the file is read, and why:

* **smbprotocol's low-level API**, one connection per `open()`: connect and negotiate
  (SMB 2.0.2 up to 3.1.1), log on, connect the share, open the file, read it in chunks,
  and close all of it again. Nothing is cached between opens or runs, so no session, tree
  or socket outlives the read, and a changed password is used on the next run.
* **Signing** is always required (it protects the content against tampering on the way);
  **encryption** is used whenever the server asks for it, for the session or the share.
* **Logon** uses NTLM, once: no second protocol and no retry, so one run with a wrong
  password is one failed logon, never several that would lock a domain account by
  themselves. `DOMAIN\\user` is sent as domain and user; `user@domain` is sent as it
  is, a user principal name, which the server resolves.
* **The timeout** bounds the TCP connect and every answer the server owes: negotiation,
  logon, share, open and each read. smbprotocol waits forever for most answers by default
  (its `Connection.receive` has no timeout unless one is passed), so the connection here
  passes the profile's timeout on every receive.
* **The file** is opened for reading and shared for reading only: while it is read,
  nobody can write it, and a file that another program holds open for writing fails with
  "in use" rather than being read half old, half new. The stream is buffered and seekable
  (reads by offset), so the CSV reader's `auto` encoding check can scan it and rewind.
* **Messages** name the share and the file (`\\\\server\\share\\test\\address.csv`) and
  the step that failed; the password is never part of a message, log line or exception
  (the smbprotocol exception is summarised, not chained).
"""

from __future__ import annotations

import io
import math
import re
import socket
import struct
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, Final

from smbprotocol.connection import Connection  # type: ignore[import-untyped]
from smbprotocol.exceptions import (  # type: ignore[import-untyped]
    SMBAuthenticationError,
    SMBConnectionClosed,
    SMBException,
    SMBResponseException,
)
from smbprotocol.header import NtStatus  # type: ignore[import-untyped]
from smbprotocol.open import (  # type: ignore[import-untyped]
    CreateDisposition,
    CreateOptions,
    FileAttributes,
    FilePipePrinterAccessMask,
    ImpersonationLevel,
    Open,
    ShareAccess,
)
from smbprotocol.session import Session  # type: ignore[import-untyped]
from smbprotocol.tree import TreeConnect  # type: ignore[import-untyped]

from pbx_connector.errors import ConfigError, SourceError
from pbx_connector.sources.location import Location, LocationKind

__all__ = ["SHARE", "ShareFile", "ShareTarget", "parse_share", "parse_share_path"]

DEFAULT_PORT: Final = 445
DEFAULT_TIMEOUT: Final = 30.0
#: Bytes asked for per SMB read (and the size of the read buffer): large enough that a
#: 50 MB file takes 50 round trips, small enough to be a few credits.
CHUNK: Final = 1024 * 1024

# Characters Windows does not allow in a share name or a file name (and ':' would name
# an alternate data stream).
_BAD_NAME_CHARS: Final = re.compile(r'[\x00-\x1f"*:<>?|]')
_BAD_SHARE_CHARS: Final = re.compile(r'[\x00-\x1f"*:<>?|/\\\[\];,+=]')
_HOST: Final = re.compile(r"[A-Za-z0-9_.-]{1,253}|\[[0-9A-Fa-f:.]+\]")


class _NT:
    """The NTSTATUS codes this module tells apart (MS-ERREF 2.3.1); smbprotocol's
    `NtStatus` lacks some of them."""

    LOGON_FAILURE: Final = 0xC000006D
    WRONG_PASSWORD: Final = 0xC000006A
    ACCOUNT_LOCKED_OUT: Final = 0xC0000234
    ACCOUNT_DISABLED: Final = 0xC0000072
    PASSWORD_EXPIRED: Final = 0xC0000071
    PASSWORD_MUST_CHANGE: Final = 0xC0000224
    ACCOUNT_EXPIRED: Final = 0xC0000193
    ACCOUNT_RESTRICTION: Final = 0xC000006E
    INVALID_LOGON_HOURS: Final = 0xC000006F
    INVALID_WORKSTATION: Final = 0xC0000070
    LOGON_TYPE_NOT_GRANTED: Final = 0xC000015B
    BAD_NETWORK_NAME: Final = 0xC00000CC
    ACCESS_DENIED: Final = 0xC0000022
    NETWORK_ACCESS_DENIED: Final = 0xC00000CA
    OBJECT_NAME_NOT_FOUND: Final = 0xC0000034
    NO_SUCH_FILE: Final = 0xC000000F
    OBJECT_PATH_NOT_FOUND: Final = 0xC000003A
    NOT_A_DIRECTORY: Final = 0xC0000103
    FILE_IS_A_DIRECTORY: Final = 0xC00000BA
    SHARING_VIOLATION: Final = 0xC0000043
    DELETE_PENDING: Final = 0xC0000056
    OBJECT_NAME_INVALID: Final = 0xC0000033
    PATH_NOT_COVERED: Final = 0xC0000257
    END_OF_FILE: Final = 0xC0000011


_STATUS_NAMES: Final[dict[int, str]] = {
    value: name
    for name, value in vars(NtStatus).items()
    if name.startswith("STATUS_") and isinstance(value, int)
} | {value: f"STATUS_{name}" for name, value in vars(_NT).items() if name.isupper()}

# What an NTSTATUS means, in the words of the step it happened in.
_LOGON_REASONS: Final = {
    _NT.LOGON_FAILURE: "wrong user name or password",
    _NT.WRONG_PASSWORD: "wrong password",
    _NT.ACCOUNT_LOCKED_OUT: "the account is locked out",
    _NT.ACCOUNT_DISABLED: "the account is disabled",
    _NT.PASSWORD_EXPIRED: "the password has expired",
    _NT.PASSWORD_MUST_CHANGE: "the password must be changed first",
    _NT.ACCOUNT_EXPIRED: "the account has expired",
    _NT.ACCOUNT_RESTRICTION: "the account may not log on from here",
    _NT.INVALID_LOGON_HOURS: "the account may not log on at this time",
    _NT.INVALID_WORKSTATION: "the account may not log on from this computer",
    _NT.LOGON_TYPE_NOT_GRANTED: "the account may not log on over the network",
}
_SHARE_REASONS: Final = {
    _NT.BAD_NETWORK_NAME: "the server has no such share",
    _NT.ACCESS_DENIED: "the user may not use this share",
    _NT.NETWORK_ACCESS_DENIED: "the user may not use this share",
}
_FILE_REASONS: Final = {
    _NT.OBJECT_NAME_NOT_FOUND: "no such file",
    _NT.NO_SUCH_FILE: "no such file",
    _NT.OBJECT_PATH_NOT_FOUND: "a folder of the path does not exist",
    _NT.NOT_A_DIRECTORY: "a folder of the path is a file",
    _NT.FILE_IS_A_DIRECTORY: "this is a folder, not a file",
    _NT.ACCESS_DENIED: "the user may not read this file",
    _NT.SHARING_VIOLATION: (
        "the file is in use: another program has it open for writing (try again later)"
    ),
    _NT.DELETE_PENDING: "the file is being deleted",
    _NT.OBJECT_NAME_INVALID: "the path is not a valid file name on this server",
    _NT.PATH_NOT_COVERED: (
        "the path is on a DFS link, which is not supported: name the share it points to"
    ),
}


# --- settings -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ShareTarget:
    """A file on a share: the server, the share name and the path inside it (with
    backslashes, no leading one)."""

    server: str
    share: str
    path: str

    @property
    def host(self) -> str:
        """The server as a socket address (an IPv6 literal without its brackets)."""
        return self.server[1:-1] if self.server.startswith("[") else self.server

    @property
    def unc(self) -> str:
        return f"\\\\{self.server}\\{self.share}"

    @property
    def name(self) -> str:
        return f"{self.unc}\\{self.path}"


def parse_share(value: str) -> tuple[str, str]:
    """`\\\\server\\share` (or `//server/share`, a trailing separator allowed) ->
    (server, share); ConfigError naming `share` otherwise."""
    text = value.strip().replace("/", "\\")
    example = "use \\\\server\\share, e.g. \\\\fileserver\\exports"
    if not text.startswith("\\\\"):
        raise ConfigError(f"the share must be a UNC path: {example}", field="share")
    parts = text[2:].rstrip("\\").split("\\")
    if len(parts) < 2 or not all(parts):
        raise ConfigError(f"the share needs a server and a share name: {example}", field="share")
    if len(parts) > 2:
        raise ConfigError(
            "the share is \\\\server\\share only: put the folders inside it into path "
            "(e.g. share=\\\\fileserver\\exports and path=test\\address.csv)",
            field="share",
        )
    server, share = parts
    if not _HOST.fullmatch(server):
        raise ConfigError(
            f"{server!r} is not a server name or IP address (an IPv6 address goes in brackets)",
            field="share",
        )
    if len(share) > 80 or _BAD_SHARE_CHARS.search(share):
        raise ConfigError(f"{share!r} is not a valid share name", field="share")
    return server, share


def parse_share_path(value: str) -> str:
    """A path inside the share with `\\` or `/` -> the path with backslashes, no leading
    one; ConfigError naming `path` if it is empty, climbs out of the share (`..`) or has a
    character a Windows file name cannot have."""
    parts = [p for p in value.strip().replace("/", "\\").split("\\") if p not in ("", ".")]
    if not parts:
        raise ConfigError(
            "the path of the file inside the share is not set (e.g. test\\address.csv)",
            field="path",
        )
    if ".." in parts:
        raise ConfigError("the path cannot leave the share ('..')", field="path")
    for part in parts:
        bad = _BAD_NAME_CHARS.search(part)
        if bad:
            raise ConfigError(
                f"the path holds {bad.group()!r}, which a file name on a share cannot have",
                field="path",
            )
    return "\\".join(parts)


def parse_port(value: str) -> int:
    text = value.strip()
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ConfigError(
            f"the share port must be a number from 1 to 65535, not {value!r}", field="share_port"
        )
    return int(text)


def parse_user(value: str) -> str:
    """`user`, `DOMAIN\\user` or `user@domain`, stripped; ConfigError naming `share_user`."""
    text = value.strip()
    forms = "use user, DOMAIN\\user or user@domain"
    if "\\" in text:
        domain, _, user = text.partition("\\")
        if not domain or not user or "\\" in user or "@" in user:
            raise ConfigError(f"invalid share user {value!r}: {forms}", field="share_user")
    elif "@" in text:
        user, _, domain = text.rpartition("@")
        if not user or not domain:
            raise ConfigError(f"invalid share user {value!r}: {forms}", field="share_user")
    if any((c.isspace() and c != " ") or ord(c) < 32 for c in text):
        raise ConfigError(f"invalid share user {value!r}: {forms}", field="share_user")
    return text


def parse_timeout(value: str) -> float:
    try:
        seconds = float(value.strip())
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(
            f"the timeout must be a positive number of seconds, not {value!r}", field="timeout"
        )
    return seconds


def _chosen(settings: Mapping[str, str]) -> bool:
    return settings.get("use_share", "no") == "yes"


def _set(settings: Mapping[str, str], name: str) -> str:
    value = settings.get(name, "")
    return value if value.strip() else ""


def _check(settings: Mapping[str, str]) -> None:
    """Check each share setting that is set (a profile may be saved before all are),
    whether or not the file is read from the share now. `path` is checked as a path
    inside the share only when it is one (use_share=yes): otherwise it names a file on
    this machine, or an uploaded one."""
    if share := _set(settings, "share"):
        parse_share(share)
    if port := _set(settings, "share_port"):
        parse_port(port)
    if user := _set(settings, "share_user"):
        parse_user(user)
    if _chosen(settings) and (path := _set(settings, "path")):
        parse_share_path(path)
    if timeout := _set(settings, "timeout"):
        parse_timeout(timeout)


def _build(
    settings: Mapping[str, str], secrets: Mapping[str, str], _owner: int | None = None
) -> Location:
    _check(settings)
    share = _set(settings, "share")
    if not share:
        raise ConfigError(
            "the share is not set (e.g. share=\\\\fileserver\\exports)", field="share"
        )
    user = _set(settings, "share_user")
    if not user:
        raise ConfigError("the user for the share (share_user) is not set", field="share_user")
    password = secrets.get("share_password", "")
    if not password:
        raise ConfigError(
            "the password of the share user (share_password) is not set", field="share_password"
        )
    server, share_name = parse_share(share)
    return ShareFile(
        ShareTarget(server, share_name, parse_share_path(settings.get("path", ""))),
        port=parse_port(_set(settings, "share_port") or str(DEFAULT_PORT)),
        user=parse_user(user),
        password=password,
        timeout=parse_timeout(_set(settings, "timeout") or str(DEFAULT_TIMEOUT)),
    )


SHARE = LocationKind("share", _chosen, _check, _build)


# --- reading ------------------------------------------------------------------------------


class _Connection(Connection):  # type: ignore[misc]
    """An smbprotocol connection that waits at most `io_timeout` seconds for any answer
    (smbprotocol itself waits forever unless the caller passes a timeout, which its
    session, tree and open calls do not)."""

    def __init__(self, server: str, port: int, io_timeout: float) -> None:
        super().__init__(uuid.uuid4(), server, port, require_signing=True)
        self.io_timeout = io_timeout

    def receive(
        self,
        request: Any,
        wait: bool = True,
        timeout: float | None = None,
        resolve_symlinks: bool = True,
    ) -> Any:
        return super().receive(
            request,
            wait=wait,
            timeout=self.io_timeout if timeout is None else timeout,
            resolve_symlinks=resolve_symlinks,
        )


#: What smbprotocol raises when a server fails or goes away mid-way (its receiving
#: thread's error is raised again in the caller, whatever it was).
_FAILURES: Final = (SMBException, OSError, ValueError, KeyError, struct.error)


def _status(exc: SMBResponseException) -> str:
    code: int = exc.status
    return _STATUS_NAMES.get(code, f"0x{code:08x}")


def _timed_out(exc: BaseException) -> bool:
    return isinstance(exc, SMBException) and "timeout" in str(exc).lower()


class ShareFile:
    """A file on an SMB/CIFS share, read by a connection of its own on every `open()`."""

    def __init__(
        self, target: ShareTarget, *, port: int, user: str, password: str, timeout: float
    ) -> None:
        self.target = target
        self.port = port
        self.user = user
        self._password = password
        self.timeout = timeout
        self.name: str = target.name

    def __repr__(self) -> str:  # never the password
        return f"ShareFile({self.name!r}, port={self.port}, user={self.user!r})"

    @property
    def _address(self) -> str:
        host = self.target.host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    def _error(self, step: str, reason: str) -> SourceError:
        # Built from the server, user, share and path, fixed words and status names only:
        # never from an exception's text that could quote what was sent. (Masking the
        # password in the text instead would give it away when it is a word of the text.)
        return SourceError(f"{step}: {reason}", source=self.name)

    def _seconds(self) -> str:
        return f"{self.timeout:g} s"

    @contextmanager
    def open(self) -> Iterator[BinaryIO]:
        connection = _Connection(self.target.host, self.port, self.timeout)
        finished = False
        try:
            self._connect(connection)
            session = self._log_on(connection)
            tree = self._connect_share(session)
            handle = self._open_file(tree)
            with io.BufferedReader(_ShareStream(handle, self), buffer_size=CHUNK) as stream:
                yield stream
            finished = True
        finally:
            # After a clean read: close the file, the share and the session, and say so to
            # the server. After a failure (maybe a server that no longer answers): only
            # close the socket and smbprotocol's receiving thread, without waiting again.
            try:
                connection.disconnect(close=finished, timeout=self.timeout)
            except _FAILURES:
                connection.disconnect(close=False)

    # The steps, each with its own message. -------------------------------------------

    def _connect(self, connection: _Connection) -> None:
        step = f"cannot connect to the SMB server {self._address}"
        try:
            connection.connect(timeout=self.timeout)
        except ValueError as exc:  # smbprotocol wraps the socket error in a ValueError
            cause = exc.__cause__
            if isinstance(cause, socket.timeout | TimeoutError):
                raise self._error(step, f"no answer within {self._seconds()}") from None
            if isinstance(cause, socket.gaierror):
                raise self._error(step, f"unknown server name ({cause.strerror})") from None
            if isinstance(cause, OSError):
                raise self._error(step, cause.strerror or str(cause)) from None
            raise self._error(step, "the connection failed") from None
        except SMBConnectionClosed:
            raise self._error(
                step, "the server closed the connection (is it an SMB server?)"
            ) from None
        except SMBException as exc:
            if _timed_out(exc):
                raise self._error(
                    step,
                    f"the server did not answer within {self._seconds()} (is it an SMB server?)",
                ) from None
            raise self._error(step, "the server does not speak SMB 2 or 3") from None
        except (OSError, struct.error) as exc:
            raise self._error(step, f"not an SMB server ({type(exc).__name__})") from None

    def _log_on(self, connection: _Connection) -> Any:
        step = f"cannot log on to {self.target.server} as {self.user}"
        session = Session(
            connection,
            username=self.user,
            password=self._password,
            require_encryption=False,  # but encrypted when the server asks for it
            auth_protocol="ntlm",
        )
        try:
            session.connect()
        except SMBResponseException as exc:
            reason = _LOGON_REASONS.get(exc.status, "the server refused the logon")
            note = ""
            if exc.status in (_NT.LOGON_FAILURE, _NT.WRONG_PASSWORD):
                note = (
                    "; the logon was tried once; fix share_user or share_password before the "
                    "next run, as repeated failures can lock the account"
                )
            raise self._error(step, f"{reason} ({_status(exc)}){note}") from None
        except SMBAuthenticationError:
            raise self._error(step, "the authentication could not be completed") from None
        except SMBException as exc:
            if _timed_out(exc):
                raise self._error(step, f"no answer within {self._seconds()}") from None
            if "guest" in str(exc):
                raise self._error(
                    step, "the server let the user in only as a guest, which cannot sign"
                ) from None
            if "encryption" in str(exc):
                raise self._error(
                    step, "the server requires encryption, which the connection cannot do"
                ) from None
            raise self._error(step, "the connection was lost") from None
        return session

    def _connect_share(self, session: Any) -> Any:
        step = f"cannot open the share {self.target.unc}"
        tree = TreeConnect(session, self.target.unc)
        try:
            tree.connect()
        except SMBResponseException as exc:
            reason = _SHARE_REASONS.get(exc.status, "the server refused it")
            raise self._error(step, f"{reason} ({_status(exc)})") from None
        except SMBException as exc:
            raise self._error(step, self._lost(exc)) from None
        return tree

    def _open_file(self, tree: Any) -> Any:
        step = f"cannot open the file {self.target.path} on the share"
        handle = Open(tree, self.target.path)
        try:
            handle.create(
                ImpersonationLevel.Impersonation,
                FilePipePrinterAccessMask.FILE_READ_DATA
                | FilePipePrinterAccessMask.FILE_READ_ATTRIBUTES
                | FilePipePrinterAccessMask.SYNCHRONIZE,
                FileAttributes.FILE_ATTRIBUTE_NORMAL,
                ShareAccess.FILE_SHARE_READ,
                CreateDisposition.FILE_OPEN,
                CreateOptions.FILE_NON_DIRECTORY_FILE,
            )
        except SMBResponseException as exc:
            reason = _FILE_REASONS.get(exc.status, "the server refused it")
            raise self._error(step, f"{reason} ({_status(exc)})") from None
        except SMBException as exc:
            raise self._error(step, self._lost(exc)) from None
        return handle

    def read_error(self, exc: BaseException) -> SourceError:
        step = f"cannot read the file {self.target.path}"
        if isinstance(exc, SMBResponseException):
            return self._error(step, f"the server refused ({_status(exc)})")
        return self._error(step, self._lost(exc))

    def _lost(self, exc: BaseException) -> str:
        if _timed_out(exc):
            return f"no answer within {self._seconds()}"
        return "the connection to the server was lost"


class _ShareStream(io.RawIOBase):
    """The bytes of an open file on a share, by offset: seekable, read in chunks of at
    most `CHUNK` (and the server's maximum read size)."""

    def __init__(self, handle: Any, owner: ShareFile) -> None:
        super().__init__()
        self._handle = handle
        self._owner = owner
        self._size: int = int(handle.end_of_file)
        self._position = 0
        self._chunk = max(1, min(CHUNK, int(handle.connection.max_read_size)))

    @property
    def name(self) -> str:
        return self._owner.name

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        # The size is known from the open; a file that grows while it is read is read to
        # the size it had (the share mode keeps writers out).
        length = min(len(view), self._chunk, max(0, self._size - self._position))
        if length == 0:
            return 0
        try:
            data: bytes = self._handle.read(self._position, length)
        except SMBResponseException as exc:
            if exc.status == _NT.END_OF_FILE:
                return 0
            raise self._owner.read_error(exc) from None
        except _FAILURES as exc:
            raise self._owner.read_error(exc) from None
        view[: len(data)] = data
        self._position += len(data)
        return len(data)
