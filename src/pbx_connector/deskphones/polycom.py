"""Polycom (UC software) contact directory file, `000000000000-directory.xml`:
`directory > item_list > item > ln, fn, ct`, one item per number. The phone downloads
the file from its provisioning server; there is no search and no paging.

Limits: `fn` and `ln` hold at most 40 bytes each (cut, never inside a character); the
file stays under 200 KB (items past it are left out); `ct` (the contact number) is
unique in the file, so a number that a contact earlier in the list already has is left
out. `sd` (the phone's speed-dial slot) is not written: directory entries do not take
the phone's line keys.
"""

from __future__ import annotations

from collections.abc import Sequence

from pbx_connector.deskphones.model import (
    XML_DECLARATION,
    Entry,
    View,
    element,
    fragment,
    lines,
    root,
    truncate_bytes,
)

ROOT = "directory"
#: Bytes of `fn` and of `ln`.
NAME_BYTES = 40
#: The whole file, declaration included (200 KB, counted in thousands to be safe).
MAX_BYTES = 200_000

_HEAD = XML_DECLARATION + b"<directory>\n <item_list>\n"
_TAIL = b" </item_list>\n</directory>\n"


def render(entries: Sequence[Entry], view: View) -> bytes:
    parts = [_HEAD]
    size = len(_HEAD) + len(_TAIL)
    seen: set[str] = set()
    for line in lines(entries):
        number = line.number.value.strip()
        if number in seen:
            continue
        item = root("item")
        first, last = line.entry.split_name()
        element(item, "ln", truncate_bytes(last, NAME_BYTES))
        element(item, "fn", truncate_bytes(first, NAME_BYTES))
        element(item, "ct", number)
        raw = b"  " + fragment(item) + b"\n"
        if size + len(raw) > MAX_BYTES:
            break
        seen.add(number)
        parts.append(raw)
        size += len(raw)
    parts.append(_TAIL)
    return b"".join(parts)
