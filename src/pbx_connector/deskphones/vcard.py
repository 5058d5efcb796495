"""vCard 3.0 (RFC 2426) of the directory, for softphones and mobile clients
(`contacts.vcf`): one card per entry with `FN`, `N`, `ORG` and a `TEL` for each number.

Text values are escaped as RFC 2426 says (`\\`, `\\,`, `\\;`, line breaks as `\\n`);
lines end with CRLF and are folded at 75 octets (a continuation line starts with one
space), never inside a UTF-8 character.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from pbx_connector.deskphones.model import Entry, NumberKind

MEDIA_TYPE = "text/vcard; charset=utf-8"
#: Octets of a line, the line break not counted.
FOLD_AT = 75
TEL_TYPES: dict[NumberKind, str] = {
    "work": "WORK,VOICE",
    "mobile": "CELL,VOICE",
    "home": "HOME,VOICE",
    "other": "VOICE",
}

_SPECIAL = re.compile(r"([\\,;])")
_BREAK = re.compile(r"\r\n|\r|\n")
#: Control characters other than line breaks have no place in a text value.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def escape(value: str) -> str:
    """A text value as RFC 2426 writes it."""
    clean = _CONTROL.sub("", value)
    return _BREAK.sub(r"\\n", _SPECIAL.sub(r"\\\1", clean))


def fold(line: str) -> bytes:
    """One content line as CRLF-terminated UTF-8, folded so that no line is longer than
    75 octets."""
    raw = line.encode("utf-8")
    out: list[bytes] = []
    limit = FOLD_AT
    while len(raw) > limit:
        cut = limit
        while cut > 0 and (raw[cut] & 0xC0) == 0x80:  # inside a character: back off
            cut -= 1
        out.append(raw[:cut])
        raw = raw[cut:]
        limit = FOLD_AT - 1  # a continuation line starts with a space
    out.append(raw)
    return b"\r\n ".join(out) + b"\r\n"


def card(entry: Entry) -> bytes:
    first, last = entry.first_name.strip(), entry.last_name.strip()
    content = [
        "BEGIN:VCARD",
        "VERSION:3.0",
        f"UID:{escape(entry.id)}",
        f"FN:{escape(entry.name)}",
        f"N:{escape(last)};{escape(first)};;;",
    ]
    if entry.organisation.strip():
        content.append(f"ORG:{escape(entry.organisation.strip())}")
    content.extend(
        f"TEL;TYPE={TEL_TYPES[n.kind]}:{escape(n.value)}" for n in entry.numbers if n.value.strip()
    )
    content.append("END:VCARD")
    return b"".join(fold(line) for line in content)


def head() -> bytes:
    return b""


def body(entries: Sequence[Entry]) -> bytes:
    return b"".join(card(e) for e in entries)


def render(entries: Iterable[Entry]) -> bytes:
    """The whole file."""
    return head() + body(list(entries))
