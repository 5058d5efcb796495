"""Desk-phone directories: what the phonebook on a desk phone shows, in its vendor's format
(`deskphones.PHONES`), and the same directory as vCard or CSV (`deskphones.EXPORTS`).

A directory holds, in this order:

1. the private phonebook of `user` (a username or a user's id), when one is given,
2. the global phonebook,
3. users (only enabled ones), when `users` is asked for,
4. speed dials, when `speeddials` is asked for;

each part sorted by name (then by id), and only entries that have a number. With a
`search`, only what the core's record search finds (`records.list(search=…)`: inside
names, organisation, e-mail, codes and numbers, through the search index).

Numbers are shown as the phone dials them: the E.164 form (`+4999112345`) when the store
has one, which every vendor's phones dial and every PBX that takes E.164 routes;
otherwise the number as stored (an internal extension such as `101`). A phonebook entry
shows its phone (work), mobile and home number; a user their extension (work; the direct
number when there is no extension), mobile and home number; a speed dial its number
(other), named by its display name or else its code. Fax numbers are not shown.

A phone's directory holds at most `WINDOW` records (the first ones of each part, by id):
phones page through a few hundred entries at most, and a search finds the rest. Paging
vendors (Cisco, Snom, Fanvil results, Gigaset) page within it. The vCard and CSV exports
hold every match, read `EXPORT_BATCH` records at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any

from pbx_connector.deskphones import EXPORTS, PHONES, Entry, Number, NumberKind, Phone, View
from pbx_connector.errors import NotFoundError
from pbx_connector.models.records import PhonebookEntry, SpeedDial, User
from pbx_connector.models.tokens import Principal

if TYPE_CHECKING:
    from pbx_connector.service.app import App

#: Records a phone's directory holds at most (the largest page of a record list).
WINDOW = 1000
#: The title a phone shows above the directory and its search form.
TITLE = "Directory"
#: Records read at a time for an export.
EXPORT_BATCH = 1000
#: Gigaset's search fields, in the order tried: numbers first (a caller lookup from the
#: phone), then last and first name. `*` is the phone's wildcard.
PHONE_SEARCH_FIELDS = ("hm", "nr", "mb", "ln", "fn")


@dataclass(frozen=True)
class DirectoryQuery:
    """Which entries a directory holds (see the module)."""

    search: str | None = None
    user: str | None = None
    users: bool = False
    speeddials: bool = False
    #: Who asks over HTTP: a `phone` token opens only its own user's private phonebook,
    #: with or without `user` (`tokens.directory_user`). None: the CLI.
    caller: Principal | None = None


@dataclass(frozen=True)
class PhonePage:
    """What a paging phone asked for: the first item (0-based) and how many (Gigaset
    sends `count`; other vendors have a page size of their own), the URL of another page
    (for Next and Previous soft keys), and what Gigaset's answer echoes (`type`, and the
    field named by `notfound`)."""

    offset: int = 0
    count: int | None = None
    page_url: Callable[[int], str] | None = None
    list_type: str = "pb"
    searched: str = "ln"


@dataclass(frozen=True)
class Rendered:
    """A directory in a phone's format: the bytes and what to serve them as."""

    content: bytes
    media_type: str


@dataclass(frozen=True)
class Exported:
    """A directory as a file, in parts, and what to serve it as. The first part is read
    before this is returned, so that a refused request fails before anything is sent."""

    parts: Iterator[bytes]
    media_type: str


def phone_search(q: str | None, fields: dict[str, str | None]) -> tuple[str | None, str]:
    """The search a phone asked for, and the name of the field it searched (which
    Gigaset's `notfound` names): `q` when given, else the first of Gigaset's fields
    (`hm`, `nr`, `mb`, `ln`, `fn`) that holds more than the wildcard `*`."""
    if q is not None:
        return q, "ln"
    for name in PHONE_SEARCH_FIELDS:
        value = (fields.get(name) or "").replace("*", "").strip()
        if value:
            return value, name
    return None, "ln"


class DeskphonesService:
    """The desk-phone directories and their exports."""

    def __init__(self, app: App) -> None:
        self.app = app

    def vendors(self) -> list[str]:
        """The vendors whose directory format is served, by the name in the URL."""
        return sorted(PHONES)

    def with_search_form(self) -> list[str]:
        """The vendors whose phones get a search form (`/directory/{vendor}/search.xml`)."""
        return sorted(name for name, phone in PHONES.items() if phone.search is not None)

    def exports(self) -> list[str]:
        """The file formats of the directory (`vcf`, `csv`)."""
        return sorted(EXPORTS)

    def entries(self, query: DirectoryQuery) -> tuple[list[Entry], bool]:
        """A phone's directory (at most `WINDOW` records), and whether it holds every
        match (False: the store has more; a search narrows them)."""
        found: list[Entry] = []
        complete = True
        left = WINDOW
        for target, owner, convert in self._parts(query):
            page = self.app.records.list(target, search=query.search, owner=owner, limit=left)
            part = [e for e in map(convert, page.items) if e is not None]
            found.extend(sorted(part, key=_by_name))
            left -= len(page.items)
            if not page.total_exact or page.total > len(page.items):
                complete = False
        return found, complete

    def render(
        self, vendor: str, query: DirectoryQuery, asked: PhonePage | None = None
    ) -> Rendered:
        """The directory in `vendor`'s format (`NotFoundError` for a vendor without one,
        or a `user` who does not exist)."""
        phone = self._phone(vendor)
        asked = asked or PhonePage()
        entries, complete = self.entries(query)
        view = View(
            offset=asked.offset,
            count=asked.count,
            page_url=asked.page_url,
            complete=complete,
            title=TITLE,
            search=query.search,
            list_type=asked.list_type,
            searched=asked.searched,
        )
        return Rendered(phone.render(entries, view), phone.media_type)

    def search_screen(self, vendor: str, url: str) -> Rendered:
        """`vendor`'s search form, which opens the directory at `url` (its URL without a
        search) with the text the user typed; `NotFoundError` for a vendor without one
        (its phones search themselves, or send the search in the URL)."""
        phone = self._phone(vendor)
        if phone.search is None:
            raise NotFoundError(
                f"{vendor} phones have no search form here; vendors with one: "
                f"{', '.join(self.with_search_form())}",
                field="vendor",
            )
        return Rendered(phone.search(url, TITLE), phone.media_type)

    def export(self, name: str, query: DirectoryQuery) -> Exported:
        """Every entry of the directory as a file: `vcf` (vCard 3.0) or `csv`."""
        export = EXPORTS.get(name)
        if export is None:
            raise NotFoundError(
                f"no export {name!r}; exports: {', '.join(self.exports())}", field="format"
            )
        batches = self._batches(query)
        first = next(batches, [])  # reads the store now: a refusal comes before any byte
        parts = chain(
            [export.head(), export.body(first)], (export.body(batch) for batch in batches)
        )
        return Exported(parts, export.media_type)

    def _phone(self, vendor: str) -> Phone:
        phone = PHONES.get(vendor)
        if phone is None:
            raise NotFoundError(
                f"no desk-phone directory for {vendor!r}; vendors: {', '.join(self.vendors())}",
                field="vendor",
            )
        return phone

    def _batches(self, query: DirectoryQuery) -> Iterator[list[Entry]]:
        for target, owner, convert in self._parts(query):
            offset = 0
            while True:
                page = self.app.records.list(
                    target, search=query.search, owner=owner, limit=EXPORT_BATCH, offset=offset
                )
                yield [e for e in map(convert, page.items) if e is not None]
                if len(page.items) < EXPORT_BATCH:
                    break
                offset += EXPORT_BATCH

    def _parts(self, query: DirectoryQuery) -> list[tuple[str, str | None, _Convert]]:
        """The lists a directory is made of, in order: target, owner, conversion."""
        parts: list[tuple[str, str | None, _Convert]] = []
        asked = self.app.tokens.directory_user(query.caller, query.user)
        if asked is not None:
            user = self.app.records.get("users", asked.strip())
            parts.append(("phonebook", user.username, _phonebook_entry))
        parts.append(("phonebook", "", _phonebook_entry))
        if query.users:
            parts.append(("users", None, _user_entry))
        if query.speeddials:
            parts.append(("speeddials", None, _speed_dial_entry))
        return parts


_Convert = Callable[[Any], Entry | None]


def _by_name(entry: Entry) -> tuple[str, str]:
    return entry.name.casefold(), entry.id


def _numbers(*pairs: tuple[NumberKind, str | None, str]) -> tuple[Number, ...]:
    """The numbers given, each in its dialable form (E.164 when there is one), empty ones
    left out."""
    found = []
    for kind, e164, stored in pairs:
        value = (e164 or stored or "").strip()
        if value:
            found.append(Number(kind, value))
    return tuple(found)


def _phonebook_entry(record: PhonebookEntry) -> Entry | None:
    numbers = _numbers(
        ("work", record.phone_e164, record.phone),
        ("mobile", record.mobile_e164, record.mobile),
        ("home", record.homephone_e164, record.homephone),
    )
    if not numbers:
        return None
    return Entry(
        id=f"phonebook-{record.id}",
        display_name=record.displayname,
        first_name=record.givenname,
        last_name=record.surname,
        organisation=record.organisation,
        numbers=numbers,
    )


def _user_entry(record: User) -> Entry | None:
    if not record.enabled:
        return None
    # Colleagues dial the extension; the direct number only when there is none.
    work: tuple[NumberKind, str | None, str] = (
        ("work", None, record.extension)
        if record.extension
        else ("work", record.phone_e164, record.phone)
    )
    numbers = _numbers(
        work,
        ("mobile", record.mobile_e164, record.mobile),
        ("home", record.homephone_e164, record.homephone),
    )
    if not numbers:
        return None
    return Entry(
        id=f"user-{record.id}",
        display_name=record.displayname
        or " ".join(n for n in (record.givenname, record.surname) if n)
        or record.username,
        first_name=record.givenname,
        last_name=record.surname,
        organisation=record.organisation,
        numbers=numbers,
    )


def _speed_dial_entry(record: SpeedDial) -> Entry | None:
    numbers = _numbers(("other", record.number_e164, record.number))
    if not numbers:
        return None
    return Entry(
        id=f"speeddial-{record.id}",
        display_name=record.displayname or record.code,
        numbers=numbers,
    )
