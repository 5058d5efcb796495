"""Snom (current firmware): an XML minibrowser menu, `SnomIPPhoneMenu > Title,
MenuItem[@name] > Url, ExtraText`, one item per number; selecting it dials
(`snom://mb_nop#numberdial=N`). At most 100 items a page; the F4 soft key opens the next
page, F2 the previous one. (The old `SnomIPPhoneDirectory` is deprecated.)
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from pbx_connector.deskphones.model import Entry, View, document, element, lines, page, root

ROOT = "SnomIPPhoneMenu"
#: Lines of one menu.
PAGE_SIZE = 100
DIAL = "snom://mb_nop#numberdial="


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
