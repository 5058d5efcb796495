"""Snom (current firmware): an XML minibrowser menu, `SnomIPPhoneMenu > Title,
MenuItem[@name] > Url, ExtraText`, one item per number; selecting it dials
(`snom://mb_nop#numberdial=N`). At most 100 items a page; the F4 soft key opens the next
page, F2 the previous one. (The old `SnomIPPhoneDirectory` is deprecated.)

`search_screen` is the search form (`SnomIPPhoneInput > InputItem > InputToken`): the
phone puts what the user typed in place of `__X__` in the URL.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from pbx_connector.deskphones.model import (
    SEARCH_PROMPT,
    Entry,
    View,
    document,
    element,
    lines,
    page,
    root,
)

ROOT = "SnomIPPhoneMenu"
#: Lines of one menu.
PAGE_SIZE = 100
DIAL = "snom://mb_nop#numberdial="
SEARCH_ROOT = "SnomIPPhoneInput"
#: What the phone replaces with the text typed.
TOKEN = "__X__"


def render(entries: Sequence[Entry], view: View) -> bytes:
    shown = page(lines(entries), view.offset, PAGE_SIZE)
    menu = root(ROOT)
    element(menu, "Title", view.title if shown.total else f"{view.title}: no entries")
    for line in shown.items:
        item = element(menu, "MenuItem", name=line.label)
        element(item, "Url", DIAL + line.number.value)
        element(item, "ExtraText", line.number.value)
    if view.page_url is not None:
        if shown.previous is not None:
            _soft_key(menu, "F2", "Previous", view.page_url(shown.previous))
        if shown.next is not None:
            _soft_key(menu, "F4", "Next", view.page_url(shown.next))
    return document(menu)


def _soft_key(menu: ET.Element, key: str, label: str, url: str) -> None:
    item = element(menu, "SoftKeyItem")
    element(item, "Name", key)
    element(item, "Label", label)
    element(item, "URL", url)


def search_screen(url: str, title: str) -> bytes:
    """The search form; `url` is the directory's URL without a search."""
    screen = root(SEARCH_ROOT)
    element(screen, "Title", title)
    element(screen, "Url", f"{url}{'&' if '?' in url else '?'}q={TOKEN}")
    item = element(screen, "InputItem")
    element(item, "DisplayName", SEARCH_PROMPT)
    element(item, "InputToken", TOKEN)
    element(item, "DefaultValue", "")
    element(item, "InputFlags", "a")
    return document(screen)
