"""The directory as CSV (`contacts.csv`, RFC 4180: comma, double quotes, CRLF), one row
per entry: `id, displayname, givenname, surname, organisation, work, mobile, home,
other`. Numbers as a phone dials them; two numbers of one kind share a cell, separated
by `, `.

A text cell that a spreadsheet would run as a formula (it starts with `=`, `+`, `-`,
`@`, a tab or a carriage return) gets a leading `'`. Number cells are left as they are:
they hold only digits and a leading `+`, which a spreadsheet reads as a number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from pbx_connector.deskphones.model import KINDS, Entry

MEDIA_TYPE = "text/csv; charset=utf-8"
HEADER = ("id", "displayname", "givenname", "surname", "organisation", *KINDS)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def _rows(entries: Sequence[Entry]) -> list[list[str]]:
    rows = []
    for entry in entries:
        numbers = {
            kind: ", ".join(n.value for n in entry.numbers if n.kind == kind and n.value.strip())
            for kind in KINDS
        }
        text = [entry.id, entry.name, entry.first_name, entry.last_name, entry.organisation]
        rows.append([_cell(v) for v in text] + [numbers[k] for k in KINDS])
    return rows


def _write(rows: Iterable[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode("utf-8", errors="replace")


def head() -> bytes:
    return _write([HEADER])


def body(entries: Sequence[Entry]) -> bytes:
    return _write(_rows(entries))


def render(entries: Iterable[Entry]) -> bytes:
    """The whole file."""
    return head() + body(list(entries))
