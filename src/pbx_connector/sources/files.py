"""A file source: a location (where the bytes come from) and a format (how they become
rows). The `csv` source kind of every CSV template is one of these."""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping
from contextlib import ExitStack

from pbx_connector.sources.base import SourceRow
from pbx_connector.sources.formats import (
    TableReader,
    check_chosen_format,
    check_format,
    open_table,
)
from pbx_connector.sources.location import (
    Location,
    check_location,
    location_kind,
    open_location,
)


class FileSource:
    """A file read once per run: `fields()` opens it and reads the header, and the next
    `rows()` reads on from there. Opened twice, a URL would be fetched twice (and could
    change in between: a header of one version, rows of the next) and a share would be
    logged on to twice. A `rows()` without a `fields()` before, or a second one, opens the
    file afresh. The file is closed when its rows are read, or when the source is
    dropped without reading them (a check that failed on the header)."""

    open_ended = False

    def __init__(self, location: Location, settings: Mapping[str, str]) -> None:
        self.location = location
        self.name: str = location.name
        self.settings = dict(settings)
        self._opened: tuple[ExitStack, TableReader] | None = None

    def fields(self) -> list[str]:
        if self._opened is None:
            stack = ExitStack()
            try:
                stream = stack.enter_context(self.location.open())
                table = stack.enter_context(open_table(stream, self.settings, self.name))
            except BaseException:
                stack.close()
                raise
            self._opened = (stack, table)
            weakref.finalize(self, stack.close)
        return self._opened[1].fields

    def rows(self) -> Iterator[SourceRow]:
        if self._opened is not None:
            (stack, table), self._opened = self._opened, None
            with stack:
                yield from table
            return
        with self.location.open() as stream, open_table(stream, self.settings, self.name) as table:
            yield from table


def check_file_settings(
    settings: Mapping[str, str], secrets: Mapping[str, str] | None = None
) -> None:
    """Check where the file comes from and how it is read: every setting that has a
    value, whichever location and format are chosen, and the settings that go together
    with the secrets that are set (`secrets`, kept apart from the settings); ConfigError
    names the setting."""
    check_format(settings)
    check_location(settings, secrets)


def file_is_given(settings: Mapping[str, str]) -> bool:
    """Whether the settings say where the file is: a path, or another location."""
    return location_kind(settings).name != "local" or bool(settings.get("path", "").strip())


def open_file_source(
    settings: Mapping[str, str],
    secrets: Mapping[str, str],
    _attributes: object = None,
    owner: int | None = None,
) -> FileSource:
    """The file source of a profile; `owner` is its id (an uploaded file is read only
    from the profile's own upload directory)."""
    check_chosen_format(settings)
    return FileSource(open_location(settings, secrets, owner), settings)
