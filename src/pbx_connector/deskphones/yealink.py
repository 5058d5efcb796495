"""Yealink remote phonebook: `YealinkIPPhoneDirectory > DirectoryEntry > Name,
Telephone[@label]`, one entry per contact with a `Telephone` for each number.

Yealink phones download the whole list (no paging); a search is a second URL with
`q=#SEARCH`, which the phone replaces with what the user typed. A raw `&` in a name
breaks the phone's parser: every value is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence

from pbx_connector.deskphones.model import Entry, NumberKind, View, document, element, root

ROOT = "YealinkIPPhoneDirectory"
LABELS: dict[NumberKind, str] = {
    "work": "Work",
    "mobile": "Mobile",
    "home": "Home",
    "other": "Other",
}


def render(entries: Sequence[Entry], view: View) -> bytes:
    directory = root(ROOT)
    for entry in entries:
        numbers = [n for n in entry.numbers if n.value.strip()]
        if not numbers:
            continue
        item = element(directory, "DirectoryEntry")
        element(item, "Name", entry.name)
        for number in numbers:
            element(item, "Telephone", number.value, label=LABELS[number.kind])
    return document(directory)
