"""What every source gives the sync engine: rows, streamed, with where they came from."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

#: A source field holds a string, or a list of strings for multi-valued attributes.
RowValue = str | list[str]


@dataclass(slots=True)
class SourceRow:
    """One row as the source gives it.

    `line` is where the row starts in the source (1-based physical line for files, the
    ordinal for directories), so that every message can point at it. A row the source
    could read but not make sense of (a ragged CSV line) carries `error` instead of
    failing the whole run: the engine reports it as invalid and goes on.
    """

    line: int
    data: dict[str, RowValue] = field(default_factory=dict)
    error: str | None = None
    #: A name for the row that a person recognises (a directory entry's DN).
    ref: str | None = None


class Source(Protocol):
    """A readable origin of rows. `rows()` raises `SourceError` when the source fails;
    it never returns an empty iterator because something broke."""

    #: Shown in messages: a file path, a URL or a server.
    name: str
    #: True when `fields()` lists only what was asked for, not all the source has (a
    #: directory entry may lack any attribute; a CSV file has a fixed header).
    open_ended: bool

    def fields(self) -> list[str]:
        """The field names the source offers (the CSV header), in source order."""
        ...

    def rows(self) -> Iterator[SourceRow]:
        """Stream the rows; one pass, constant memory."""
        ...
