"""What a record is found by: one folded text of its names, addresses and numbers.

A search is a substring search that ignores case and accents (`mül` and `mul` both find
`Jürgen Müller`), so both the stored text and the term are folded the same way: Unicode
compatibility forms unified, accents dropped, case folded. The stored text is what the
trigram indexes (SQLite FTS5, PostgreSQL pg_trgm) are built on."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from pbx_connector.domain.targets import TargetSpec

#: Kinds of field a search looks in: names, numbers, addresses and codes, not notes.
SEARCHED_KINDS = frozenset({"text", "username", "email", "phone", "extension", "code"})
#: Between fields, so that a term never matches across two of them.
_SEPARATOR = " \x1f "


def fold(text: str) -> str:
    """`Jürgen MÜLLER` → `jurgen muller`; `ｃａｒｏｌ` → `carol`; `Straße` → `strasse`."""
    if text.isascii():  # most of a directory: nothing to decompose
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return stripped.casefold()


def searched_fields(spec: TargetSpec) -> tuple[str, ...]:
    return tuple(f.name for f in spec.fields if f.kind in SEARCHED_KINDS and not f.multiline)


def search_text(spec: TargetSpec, values: Mapping[str, Any], e164: Mapping[str, str | None]) -> str:
    """The folded text a record is found by: its searched fields and the E.164 forms of
    its numbers (so that `0991 123` finds `+49 991 12345`)."""
    parts = [fold(str(values.get(name) or "")) for name in searched_fields(spec)]
    parts += [v for v in e164.values() if v]
    return _SEPARATOR.join(p for p in parts if p)
