"""Cisco IP Phone Services: `CiscoIPPhoneDirectory > Title, Prompt, DirectoryEntry >
Name, Telephone`, one entry per number, at most 32 entries a page. When there is more
than one page, soft keys replace the phone's defaults: Dial, Previous, Exit and Next
(`SoftKeyItem > Name, URL, Position`), Next and Previous opening the URL of that page.

`search_screen` is the search form (`CiscoIPPhoneInput > InputItem > QueryStringParam`):
the phone adds `q=TEXT` to the directory's URL; an empty search lists everything.

The encoding is declared (UTF-8, as the bytes are); very old models that read only
ISO-8859-1 are not served.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from pbx_connector.deskphones.model import (
    Entry,
    View,
    document,
    element,
    input_screen,
    lines,
    page,
    root,
)

ROOT = "CiscoIPPhoneDirectory"
SEARCH_ROOT = "CiscoIPPhoneInput"
#: The most `DirectoryEntry` elements a Cisco phone takes in one object.
PAGE_SIZE = 32


def render(entries: Sequence[Entry], view: View) -> bytes:
    shown = page(lines(entries), view.offset, PAGE_SIZE)
    directory = root(ROOT)
    element(directory, "Title", view.title)
    element(directory, "Prompt", _prompt(shown.first, shown.last, shown.total, view.complete))
    for line in shown.items:
        item = element(directory, "DirectoryEntry")
        element(item, "Name", line.label)
        element(item, "Telephone", line.number.value)
    previous = shown.previous if view.page_url is not None else None
    following = shown.next if view.page_url is not None else None
    if view.page_url is not None and (previous is not None or following is not None):
        _soft_key(directory, "Dial", "SoftKey:Dial", 1)
        if previous is not None:
            _soft_key(directory, "Previous", view.page_url(previous), 2)
        _soft_key(directory, "Exit", "SoftKey:Exit", 3)
        if following is not None:
            _soft_key(directory, "Next", view.page_url(following), 4)
    return document(directory)


def _prompt(first: int, last: int, total: int, complete: bool) -> str:
    if not total:
        return "No entries"
    more = "" if complete else "+"
    if last < first:
        return f"{total}{more} entries"
    return f"{first}-{last} of {total}{more}"


def _soft_key(directory: ET.Element, name: str, url: str, position: int) -> None:
    key = element(directory, "SoftKeyItem")
    element(key, "Name", name)
    element(key, "URL", url)
    element(key, "Position", str(position))


def search_screen(url: str, title: str) -> bytes:
    """The search form; `url` is the directory's URL without a search."""
    return input_screen(SEARCH_ROOT, url, title, "q")
