"""A file source: a location (where the bytes come from) and a format (how they become
rows). The `csv` source kind of every CSV template is one of these."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from pbx_connector.sources.base import SourceRow
from pbx_connector.sources.formats import check_format, open_table
from pbx_connector.sources.location import (
    Location,
    check_location,
    location_kind,
    open_location,
)


class FileSource:
    """Reads its file afresh on every `fields()` and `rows()`."""

    open_ended = False

    def __init__(self, location: Location, settings: Mapping[str, str]) -> None:
        self.location = location
        self.name: str = location.name
        self.settings = dict(settings)

    def fields(self) -> list[str]:
        with self.location.open() as stream, open_table(stream, self.settings, self.name) as table:
            return table.fields

    def rows(self) -> Iterator[SourceRow]:
        with self.location.open() as stream, open_table(stream, self.settings, self.name) as table:
            yield from table


def check_file_settings(settings: Mapping[str, str]) -> None:
    """Check where the file comes from and how it is read; ConfigError names the setting."""
    check_format(settings)
    check_location(settings)


def file_is_given(settings: Mapping[str, str]) -> bool:
    """Whether the settings say where the file is: a path, or another location."""
    return location_kind(settings).name != "local" or bool(settings.get("path", "").strip())


def open_file_source(
    settings: Mapping[str, str], secrets: Mapping[str, str], _attributes: object = None
) -> FileSource:
    check_format(settings)
    return FileSource(open_location(settings, secrets), settings)
