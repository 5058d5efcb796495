"""Desk-phone directories: the directory in each vendor's remote-phonebook format, and
as vCard and CSV.

Pure: entries in, bytes out. Which entries a directory holds is the application core's
(`service.deskphones`); this package only knows how each phone wants them. One table
names every format: `PHONES` (vendor → renderer) and `EXPORTS` (file → writer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pbx_connector.deskphones import (
    cisco,
    fanvil,
    gigaset,
    grandstream,
    polycom,
    snom,
    table,
    vcard,
    yealink,
)
from pbx_connector.deskphones.model import (
    KINDS,
    XML_MEDIA_TYPE,
    Entry,
    Number,
    NumberKind,
    View,
)

__all__ = [
    "EXPORTS",
    "KINDS",
    "PHONES",
    "XML_MEDIA_TYPE",
    "Entry",
    "Export",
    "Number",
    "NumberKind",
    "Phone",
    "View",
]


@dataclass(frozen=True)
class Phone:
    """A vendor's XML directory: how it is rendered, its search form when the vendor has
    one (`search(url, title)`: the form that opens the directory at `url` with a search),
    and what both are served as."""

    render: Callable[[Sequence[Entry], View], bytes]
    search: Callable[[str, str], bytes] | None = None
    media_type: str = XML_MEDIA_TYPE


@dataclass(frozen=True)
class Export:
    """A file of the directory, written in parts: `head()` once, then `body(entries)`
    for each batch of entries, so that a large directory need not be held at once."""

    head: Callable[[], bytes]
    body: Callable[[Sequence[Entry]], bytes]
    media_type: str


#: Each vendor's directory, by the name in its URL (`/directory/{vendor}.xml`).
PHONES: dict[str, Phone] = {
    "yealink": Phone(yealink.render),
    "snom": Phone(snom.render, snom.search_screen),
    "grandstream": Phone(grandstream.render),
    "cisco": Phone(cisco.render, cisco.search_screen),
    "fanvil": Phone(fanvil.render, fanvil.search_screen),
    "gigaset": Phone(gigaset.render),
    "polycom": Phone(polycom.render),
}

#: The directory as a file, by its extension (`/directory/contacts.{name}`).
EXPORTS: dict[str, Export] = {
    "vcf": Export(vcard.head, vcard.body, vcard.MEDIA_TYPE),
    "csv": Export(table.head, table.body, table.MEDIA_TYPE),
}
