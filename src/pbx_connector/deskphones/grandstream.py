"""Grandstream XML phonebook: `AddressBook > Contact > FirstName, LastName, Phone[@type] >
phonenumber, accountindex`, one contact per entry with a `Phone` for each number. The
phone downloads the whole file (it asks for `phonebook.xml` under the configured path)
and searches it itself; element names are case-sensitive. Some models (WP820) take at
most 1000 contacts, so no more are written.
"""

from __future__ import annotations

from collections.abc import Sequence

from pbx_connector.deskphones.model import Entry, NumberKind, View, document, element, root

ROOT = "AddressBook"
#: The fewest contacts any current model takes (WP820).
MAX_CONTACTS = 1000
TYPES: dict[NumberKind, str] = {
    "work": "Work",
    "mobile": "Mobile",
    "home": "Home",
    "other": "Other",
}
#: The phone's first SIP account dials.
ACCOUNT_INDEX = "0"


def render(entries: Sequence[Entry], view: View) -> bytes:
    book = root(ROOT)
    written = 0
    for entry in entries:
        numbers = [n for n in entry.numbers if n.value.strip()]
        if not numbers:
            continue
        if written == MAX_CONTACTS:
            break
        written += 1
        contact = element(book, "Contact")
        first, last = entry.split_name()
        element(contact, "FirstName", first)
        element(contact, "LastName", last)
        for number in numbers:
            phone = element(contact, "Phone", type=TYPES[number.kind])
            element(phone, "phonenumber", number.value)
            element(phone, "accountindex", ACCOUNT_INDEX)
    return document(book)
