"""What every source gives the sync engine: rows, streamed, with where they came from;
and how a message may quote what a source holds."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, cast, runtime_checkable

from pbx_connector.domain.rows import RowValue

__all__ = [
    "DigestsEntries",
    "KeepsState",
    "NamesCells",
    "RowValue",
    "Source",
    "SourceRow",
    "describe_fields",
    "excerpt",
    "state_keeper",
]

#: How much of a text from a source (a field name, a value) a message may quote.
EXCERPT_CHARS: Final = 40
#: How many field names a message may list.
LISTED_FIELDS: Final = 20


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """`text` made fit to quote in a message: non-printable characters and backslashes
    escaped as `repr` escapes them, cut after about `limit` characters with `…`.

    A source may hold anything (a path can point at a file that is not meant for the
    reader of a run report), so messages quote source content only through this."""
    if len(text) <= limit and text.isprintable() and "\\" not in text:
        return text
    parts: list[str] = []
    size = 0
    for char in text:
        if size >= limit:
            parts.append("…")
            break
        piece = char if char.isprintable() and char != "\\" else repr(char)[1:-1]
        parts.append(piece)
        size += len(piece)
    return "".join(parts)


def describe_fields(fields: Sequence[str], limit: int = LISTED_FIELDS) -> str:
    """Field names for a message: the first `limit`, each an `excerpt`, then
    `… and N more`. A header of 100,000 columns stays one short line."""
    if not fields:
        return "(none)"
    shown = ", ".join(excerpt(name) for name in fields[:limit])
    more = len(fields) - limit
    return f"{shown}, … and {more:,} more" if more > 0 else shown


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
    #: The digest of what the source received for this row, from a source that digests
    #: its entries (`DigestsEntries`); None from any other.
    digest: bytes | None = None
    #: Recognised by `known` when its page came, but not taken: no data comes with it.
    known: bool = False


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


@runtime_checkable
class DigestsEntries(Protocol):
    """What a source may offer so that a re-sync need not decode the entries whose
    records were made from them unchanged (`sync.plan.SourceDigests`)."""

    def digest_entries(
        self,
        base: hashlib.blake2b,
        known: Callable[[bytes], bool],
        take: Callable[[bytes], bool],
    ) -> bool:
        """Give every row the digest of its entry as received (a copy of `base` over
        it). An entry for which `known(digest)` is true when its page arrives is not
        decoded; where its row would come, `take(digest)` is asked: true, and no row
        comes for it; false, and its row comes with `known` set and no data. Returns
        whether this source will digest (it may not, e.g. a search for all attributes)."""
        ...


@runtime_checkable
class NamesCells(Protocol):
    """A row that can name the cell of each of its fields (a sheet's row,
    `sources.xlsx.SheetRow`): an error about a field read from one column names its cell."""

    def cell(self, name: str) -> str | None:
        """The cell of the source field `name` in this row (`People!B7`), or None."""
        ...


class KeepsState(Protocol):
    """What a source (or the location a file source reads through) may offer to keep a
    little state between runs of a profile, e.g. an HTTP ETag: the run sets
    `previous_state` before reading (None: there is none, or it must not be used) and,
    when its changes are written, keeps `new_state()` under `state_name`, in the same
    transaction. Whoever else reads the source (a preview) leaves `previous_state` None
    and so always reads it fully."""

    state_name: str
    previous_state: Any

    def new_state(self) -> dict[str, Any] | None:
        """What to keep after a successful read (None: nothing; forget what was kept)."""
        ...


def state_keeper(source: object) -> KeepsState | None:
    """The part of `source` that keeps state between runs, if any: the source itself,
    or the location a file source reads through."""
    for part in (source, getattr(source, "location", None)):
        if isinstance(getattr(part, "state_name", None), str) and callable(
            getattr(part, "new_state", None)
        ):
            return cast(KeepsState, part)
    return None
