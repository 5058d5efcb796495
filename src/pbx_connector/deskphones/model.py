"""What every desk-phone format renders: directory entries, the page a phone asked for,
and the pieces of XML that each vendor module shares.

Pure: no I/O, nothing of the store. The application core turns records into `Entry`
values; a vendor module turns a list of them into the bytes its phones read.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

T = TypeVar("T")

NumberKind = Literal["work", "mobile", "home", "other"]
#: The kinds of number an entry may have, in the order a phone lists them.
KINDS: tuple[NumberKind, ...] = ("work", "mobile", "home", "other")

#: What every XML directory is served as. The bytes are UTF-8 and say so.
XML_MEDIA_TYPE = "text/xml; charset=utf-8"
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


@dataclass(frozen=True)
class Number:
    """One number of an entry, in the form a phone dials (E.164 `+49…` or an internal
    extension), and what kind of number it is."""

    kind: NumberKind
    value: str


@dataclass(frozen=True)
class Entry:
    """One contact of a directory: a phonebook entry, a user or a speed dial."""

    id: str
    display_name: str
    first_name: str = ""
    last_name: str = ""
    organisation: str = ""
    numbers: tuple[Number, ...] = ()

    @property
    def name(self) -> str:
        """The name a phone shows: the display name, else first and last name, else the
        organisation, else the first number."""
        full = " ".join(p for p in (self.first_name.strip(), self.last_name.strip()) if p)
        fallback = self.numbers[0].value if self.numbers else ""
        return self.display_name.strip() or full or self.organisation.strip() or fallback

    def split_name(self) -> tuple[str, str]:
        """(first, last) for formats with name fields: the entry's own, or the whole
        name as the last name when it has none."""
        first, last = self.first_name.strip(), self.last_name.strip()
        if first or last:
            return first, last
        return "", self.name


@dataclass(frozen=True)
class Line:
    """One number of one entry: the unit of formats that list one item per number."""

    entry: Entry
    number: Number
    position: int  # 1 for an entry's first number, 2 for its second…

    @property
    def label(self) -> str:
        """The entry's name, with the kind of number when it is not the usual one."""
        suffix = _KIND_SUFFIX[self.number.kind]
        return f"{self.entry.name}{suffix}"

    @property
    def id(self) -> str:
        return f"{self.entry.id}-{self.position}"


_KIND_SUFFIX: dict[NumberKind, str] = {
    "work": "",
    "mobile": " (mobile)",
    "home": " (home)",
    "other": "",
}


def lines(entries: Sequence[Entry]) -> list[Line]:
    """Every number of every entry, in order; numbers that are empty are left out."""
    return [
        Line(entry, number, position)
        for entry in entries
        for position, number in enumerate((n for n in entry.numbers if n.value.strip()), start=1)
    ]


@dataclass(frozen=True)
class View:
    """What the phone asked for besides the entries.

    `offset` is the first item (0-based) of the page, `count` how many items the phone
    wants (Gigaset's `count`; other vendors have a page size of their own).
    `page_url(offset)` is the URL of another page, for Next and Previous soft keys.
    `complete` is False when the store holds more matches than the entries given.
    `search` is the search the phone sent (None: it sent none). `list_type` and
    `searched` are echoed in Gigaset's answer (`type`, `notfound`)."""

    offset: int = 0
    count: int | None = None
    page_url: Callable[[int], str] | None = None
    complete: bool = True
    title: str = "Directory"
    search: str | None = None
    list_type: str = "pb"
    searched: str = "ln"


@dataclass(frozen=True)
class Slice(Generic[T]):
    """One page of items and where it sits among all of them."""

    items: Sequence[T]
    offset: int
    size: int
    total: int

    @property
    def next(self) -> int | None:
        """Where the next page starts, or None on the last page."""
        end = self.offset + self.size
        return end if end < self.total else None

    @property
    def previous(self) -> int | None:
        """Where the previous page starts, or None on the first page."""
        if self.offset <= 0:
            return None
        return max(0, min(self.offset, self.total) - self.size)

    @property
    def first(self) -> int:
        """The 1-based position of the page's first item (one past the end when the
        page is empty)."""
        return self.offset + 1

    @property
    def last(self) -> int:
        """The 1-based position of the page's last item (`first - 1` when empty)."""
        return self.offset + len(self.items)


def page(items: Sequence[T], offset: int, size: int) -> Slice[T]:
    """The `size` items from `offset` on."""
    offset = max(0, offset)
    size = max(1, size)
    return Slice(items[offset : offset + size], offset, size, len(items))


# --- XML ------------------------------------------------------------------------------

#: Characters XML 1.0 cannot carry at all (C0 controls, lone surrogates, U+FFFE/FFFF).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
#: Line breaks and tabs: a name on a phone's display is one line.
_BREAKS = re.compile("[\t\n\r]")


def text(value: str) -> str:
    """What of `value` an XML document can carry, on one line: characters XML 1.0 has
    no place for are dropped, line breaks and tabs become spaces. Escaping (`&`, `<`,
    quotes) is the serialiser's."""
    return _BREAKS.sub(" ", _NOT_XML.sub("", value))


def element(parent: ET.Element, tag: str, value: str | None = None, **attrib: str) -> ET.Element:
    """A child element `tag` of `parent`, with `value` as its text."""
    child = ET.SubElement(parent, tag, {k: text(v) for k, v in attrib.items()})
    if value is not None:
        child.text = text(value)
    return child


def root(tag: str, **attrib: str) -> ET.Element:
    return ET.Element(tag, {k: text(v) for k, v in attrib.items()})


def fragment(node: ET.Element) -> bytes:
    """One element as UTF-8 bytes, escaped; empty elements written out in full
    (`<Mobile></Mobile>`), which the simplest phone parsers read too."""
    return ET.tostring(node, encoding="unicode", short_empty_elements=False).encode("utf-8")


def document(node: ET.Element) -> bytes:
    """A whole document: the declaration (UTF-8, as the bytes are) and `node`, one
    element a line."""
    ET.indent(node, space=" ")
    return XML_DECLARATION + fragment(node) + b"\n"


#: What an input screen asks for.
SEARCH_PROMPT = "Name or number"


def input_screen(tag: str, url: str, title: str, param: str) -> bytes:
    """A search form of the Cisco kind (`CiscoIPPhoneInput`, `FanvilIPPhoneInputScreen`):
    the phone asks for the text and opens `url` with `param=TEXT` added to its query."""
    screen = root(tag)
    element(screen, "Title", title)
    element(screen, "Prompt", SEARCH_PROMPT)
    element(screen, "URL", url)
    item = element(screen, "InputItem")
    element(item, "DisplayName", SEARCH_PROMPT)
    element(item, "QueryStringParam", param)
    element(item, "DefaultValue", "")
    element(item, "InputFlags", "A")
    return document(screen)


def truncate_bytes(value: str, limit: int) -> str:
    """`value` cut to at most `limit` UTF-8 bytes, never inside a character."""
    raw = value.encode("utf-8")
    if len(raw) <= limit:
        return value
    return raw[:limit].decode("utf-8", errors="ignore")
