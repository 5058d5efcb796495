"""Fanvil, in two shapes.

- The remote phonebook the phone downloads whole (no search sent): `PhoneBook >
  DirectoryEntry > Name, Telephone, Mobile, Other, Ring, Group`, one entry per contact
  with a number in each typed slot (work in `Telephone`, mobile in `Mobile`, home or
  other in `Other`; a number whose slot is taken goes to a free one).
- Search results (the phone sent `q`, from its input screen): `FanvilIPPhoneDirectory
  > MenuItem > Prompt, URI`, one item per number, 16 a page, with Dial, Previous, Exit
  and Next soft keys (`SoftKey > Name, URI`). Search results in the `DirectoryEntry`
  shape crashed phones, so results never use it.

`search_screen` is the search form (`FanvilIPPhoneInputScreen`) that asks for `q`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from pbx_connector.deskphones.model import (
    Entry,
    Number,
    NumberKind,
    View,
    document,
    element,
    input_screen,
    lines,
    page,
    root,
)

BOOK_ROOT = "PhoneBook"
RESULTS_ROOT = "FanvilIPPhoneDirectory"
SEARCH_ROOT = "FanvilIPPhoneInputScreen"
#: Items of one page of search results.
PAGE_SIZE = 16
#: Each typed slot of a remote phonebook entry, and the kinds of number it prefers.
SLOTS: tuple[tuple[str, tuple[NumberKind, ...]], ...] = (
    ("Telephone", ("work",)),
    ("Mobile", ("mobile",)),
    ("Other", ("home", "other")),
)


def render(entries: Sequence[Entry], view: View) -> bytes:
    if view.search is None:
        return _book(entries)
    return _results(entries, view)


def _book(entries: Sequence[Entry]) -> bytes:
    book = root(BOOK_ROOT)
    for entry in entries:
        slots = _slots([n for n in entry.numbers if n.value.strip()])
        if not any(slots.values()):
            continue
        item = element(book, "DirectoryEntry")
        element(item, "Name", entry.name)
        for slot, _ in SLOTS:
            element(item, slot, slots[slot])
        element(item, "Ring", "Default")
        element(item, "Group", "")
    return document(book)


def _slots(numbers: list[Number]) -> dict[str, str]:
    """Each slot's number: first the numbers of the kinds it prefers, then any number
    left over in a slot still free. A contact has three slots; a fourth number is not
    shown."""
    slots = {slot: "" for slot, _ in SLOTS}
    left = list(numbers)
    for slot, kinds in SLOTS:
        for number in left:
            if number.kind in kinds:
                slots[slot] = number.value
                left.remove(number)
                break
    for slot, _ in SLOTS:
        if not slots[slot] and left:
            slots[slot] = left.pop(0).value
    return slots


def _results(entries: Sequence[Entry], view: View) -> bytes:
    shown = page(lines(entries), view.offset, PAGE_SIZE)
    directory = root(RESULTS_ROOT)
    for line in shown.items:
        item = element(directory, "MenuItem")
        element(item, "Prompt", line.label)
        element(item, "URI", line.number.value)
    previous = shown.previous if view.page_url is not None else None
    following = shown.next if view.page_url is not None else None
    if view.page_url is not None and (previous is not None or following is not None):
        _soft_key(directory, "Dial", "SoftKey:Dial")
        if previous is not None:
            _soft_key(directory, "Previous", view.page_url(previous))
        _soft_key(directory, "Exit", "SoftKey:Exit")
        if following is not None:
            _soft_key(directory, "Next", view.page_url(following))
    return document(directory)


def _soft_key(directory: ET.Element, name: str, uri: str) -> None:
    key = element(directory, "SoftKey")
    element(key, "Name", name)
    element(key, "URI", uri)


def search_screen(url: str, title: str) -> bytes:
    """The search form; `url` is the directory's URL without a search."""
    return input_screen(SEARCH_ROOT, url, title, "q")
