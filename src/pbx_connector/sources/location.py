"""Where a file source's file comes from: this machine, an SMB/CIFS share, a URL, or a
file uploaded to the instance. One table (`LOCATIONS`), first match wins; each kind
lives in its own module and knows its settings, how to check them, and how to open the
file as a binary stream.

A location streams: it never reads a whole file into memory. Opening or reading raises
`SourceError` naming the location and the step that failed; the run then fails and
changes nothing."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from pbx_connector.errors import ConfigError, SourceError


class Location(Protocol):
    """A file to read. `name` is what messages show (a path, `\\\\server\\share\\file`, a
    URL without its credentials)."""

    name: str

    def open(self) -> AbstractContextManager[BinaryIO]:
        """The file as a binary stream, read once from start to end."""
        ...


Settings = Mapping[str, str]


def _no_check(_settings: Settings, _secrets: Settings) -> None:
    """A location whose settings need no secret to be checked."""


class Build(Protocol):
    """How a location is built for a run, from the profile's settings and secrets and
    `owner`: the id of the profile whose file it is (None: no profile's, and then no
    file uploaded to a profile is read)."""

    def __call__(
        self, settings: Settings, secrets: Settings, owner: int | None = None, /
    ) -> Location: ...


@dataclass(frozen=True)
class LocationKind:
    """One row of the table: when a profile's file is read from here, how its settings
    are checked when they are set, and how the location is built for a run.

    `check` checks each of the kind's settings that has a value, whether or not the
    file is read from this kind of location now: a setting typed is checked when it is
    typed, not later when another setting makes it count. `check_secrets` checks the
    settings together with the secrets that are set (`url_user` with `url_token`…);
    it looks only at which secrets are set, and a message names them, never shows one."""

    name: str
    chosen: Callable[[Settings], bool]
    check: Callable[[Settings], None]
    build: Build
    check_secrets: Callable[[Settings, Settings], None] = _no_check


# --- this machine -------------------------------------------------------------------------


class LocalFile:
    """A regular file on this machine. It must not change while it is read."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = path
        self.name = os.fspath(path)

    @contextmanager
    def open(self) -> Iterator[BinaryIO]:
        from pbx_connector.sources.csv import file_version, open_regular_file

        file, info = open_regular_file(self.path, self.name)
        with file:
            yield file
            if file_version(os.fstat(file.fileno())) != file_version(info):
                raise SourceError(
                    "the file changed while it was read (is it still being written?)",
                    source=self.name,
                )


def _check_local(settings: Settings) -> None:
    """Nothing to check when set: a profile may be made before its file exists, and a
    missing path is reported when the file is read. (The other kinds' settings are
    checked by their own rows, whichever location is chosen: see `check_location`.)"""


def _local(settings: Settings, _secrets: Settings, _owner: int | None = None) -> Location:
    path = settings.get("path", "").strip()
    if not path:
        raise ConfigError(
            "the path of the file is not set (or set a share, a URL or an upload)",
            field="path",
        )
    return LocalFile(path)


LOCAL = LocationKind("local", lambda _: True, _check_local, _local)


def _table() -> tuple[LocationKind, ...]:
    # Imported here: each kind's module imports this one for `LocationKind`.
    from pbx_connector.sources import http, smb, upload

    return (smb.SHARE, http.URL, upload.UPLOAD, LOCAL)


def location_kind(settings: Settings) -> LocationKind:
    """The kind of location a profile's settings choose (the first that applies)."""
    return next(kind for kind in _table() if kind.chosen(settings))


def check_location(settings: Settings, secrets: Settings | None = None) -> None:
    """Check that the settings choose one place to read the file from, and every
    location setting that has a value, the chosen location's and the others' alike;
    ConfigError names the setting. Empty settings are not checked: a profile may be
    saved before all are set. `secrets` are the secrets that are set, kept apart from
    the settings (only whether each is set matters here)."""
    _check_one_place(settings)
    given = secrets or {}
    for kind in _table():
        kind.check(settings)
        kind.check_secrets(settings, given)


#: How each place a file may be read from is chosen, for a message naming two of them.
_CHOSEN_BY = {"share": "use_share=yes", "url": "url", "upload": "upload=yes"}


def _check_one_place(settings: Settings) -> None:
    """A share, a URL and an upload are not chosen together: all but one would be
    ignored. The error names `upload` when it is one of them (an upload switches the
    profile to itself), else `use_share`."""
    chosen = [k.name for k in _table() if k.name in _CHOSEN_BY and k.chosen(settings)]
    if len(chosen) < 2:
        return
    first, second = (_CHOSEN_BY[name] for name in chosen[:2])
    raise ConfigError(
        f"{first} and {second} are both set, but the file is read from one place: "
        "keep one of them (an upload switches the profile to the uploaded file)",
        field="upload" if "upload" in chosen else "use_share",
    )


def open_location(settings: Settings, secrets: Settings, owner: int | None = None) -> Location:
    """The location of a profile's file, ready to open; `owner` is the profile's id."""
    return location_kind(settings).build(settings, secrets, owner)
