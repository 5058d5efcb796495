"""How a file source's bytes become rows: one table of formats (`csv`, `xlsx`), chosen
by the profile's `format` setting. A format reads a binary stream from any location and
gives the header's field names and the rows, streamed."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import BinaryIO, Protocol

from pbx_connector.errors import ConfigError
from pbx_connector.sources.base import SourceRow

Settings = Mapping[str, str]


class TableReader(Protocol):
    """An open table: its field names (the header), then its rows."""

    fields: list[str]

    def __iter__(self) -> Iterator[SourceRow]: ...

    def __enter__(self) -> TableReader: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def _csv(stream: BinaryIO, settings: Settings, name: str) -> TableReader:
    from pbx_connector.sources.csv import CsvOptions, read_csv

    return read_csv(stream, CsvOptions.from_settings(settings), name)


def _xlsx(stream: BinaryIO, settings: Settings, name: str) -> TableReader:
    from pbx_connector.sources import xlsx

    return xlsx.read_xlsx(stream, settings, name)


def _check_csv(settings: Settings) -> None:
    from pbx_connector.sources.csv import CsvOptions

    CsvOptions.from_settings(settings)


def _check_xlsx(settings: Settings) -> None:
    from pbx_connector.sources import xlsx

    xlsx.check_settings(settings)


#: format -> (open a stream as a table, check the format's settings)
FORMATS: dict[
    str,
    tuple[Callable[[BinaryIO, Settings, str], TableReader], Callable[[Settings], None]],
] = {
    "csv": (_csv, _check_csv),
    "xlsx": (_xlsx, _check_xlsx),
}


def format_of(settings: Settings) -> str:
    fmt = settings.get("format", "csv") or "csv"
    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}", field="format")
    return fmt


def check_format(settings: Settings) -> None:
    """Check `format`, the chosen format's settings, and those of the other formats that
    have a value (a setting typed is checked when it is typed, not when `format` is
    changed later); ConfigError names the setting."""
    chosen = format_of(settings)
    given = {name: value for name, value in settings.items() if value}
    for fmt, (_, check) in FORMATS.items():
        check(settings if fmt == chosen else given)


def check_chosen_format(settings: Settings) -> None:
    """Check `format` and the chosen format's settings: what a run reads with."""
    FORMATS[format_of(settings)][1](settings)


def open_table(stream: BinaryIO, settings: Settings, name: str) -> TableReader:
    return FORMATS[format_of(settings)][0](stream, settings, name)
