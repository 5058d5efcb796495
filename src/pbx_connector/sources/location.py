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


@dataclass(frozen=True)
class LocationKind:
    """One row of the table: when a profile's file is read from here, how its settings
    are checked (when they are set), and how the location is built for a run."""

    name: str
    chosen: Callable[[Settings], bool]
    check: Callable[[Settings], None]
    build: Callable[[Settings, Settings], Location]


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
    missing path is reported when the file is read."""


def _local(settings: Settings, _secrets: Settings) -> Location:
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


def check_location(settings: Settings) -> None:
    """Check the settings of the chosen location; ConfigError names the setting."""
    location_kind(settings).check(settings)


def open_location(settings: Settings, secrets: Settings) -> Location:
    """The location of a profile's file, ready to open."""
    return location_kind(settings).build(settings, secrets)
