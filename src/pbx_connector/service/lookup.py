"""Caller-name lookup: "who is calling from +49 991 12345?", asked by a PBX for every call.

The number asked for is read as stored numbers are read (`domain.phone`: the instance's
region and outside-line prefix), so `0991 12345`, `+49 (0)991 12345` and `0049 991
12345` all name `+49 991 12345`, and an internal number (`101`) stays as it is. Then one
indexed statement (`store.lookup`) finds the record, by precedence:

1. the private phonebook of the called user (`user`: a username or an extension),
2. the global phonebook,
3. users (extension, direct number, mobile, home number),
4. speed dials (those with a name).

Within one source the record with the lowest id wins, and within one record its numbers
are tried in the order above (a phonebook entry: phone, mobile, home number). Fax numbers
are not looked up. The whole number is compared; with the instance setting
`lookup_match = suffix`, a number whose whole form matches nothing is compared by its last
`lookup_suffix_digits` digits (for PBXes that strip or add prefixes), in the same order.

No record is cached: a record a sync has just written is found by the next lookup. The
instance settings the lookup needs are kept for `SETTINGS_TTL` seconds (any write of this
process drops them at once).

`serve` answers on its event loop when it can: without waiting at all from an SQLite
store (`name_at_once`/`find_at_once`), or awaiting the round trips over asynchronous
connections to a PostgreSQL store (`name_async`/`find_async`), both from the settings in
memory; in a thread otherwise. A hop to a thread cost more than the indexed read itself,
and with PostgreSQL a thread took the interpreter lock back behind the busy event loop
several times a lookup.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from pbx_connector.domain.phone import PhoneNormaliser
from pbx_connector.domain.usernames import fold_username
from pbx_connector.errors import ConfigError, NotFoundError, UsageError
from pbx_connector.models.lookup import LookupResult
from pbx_connector.models.tokens import Principal
from pbx_connector.service.app import WouldWait
from pbx_connector.store import lookup as lookup_store
from pbx_connector.store.async_readers import AsyncReaders
from pbx_connector.store.settings import (
    DEFAULTS,
    MAX_SUFFIX_DIGITS,
    MIN_SUFFIX_DIGITS,
    get_settings,
)

if TYPE_CHECKING:
    from pbx_connector.service.app import App

#: The longest number taken, with its spaces and brackets; no phone number comes close.
MAX_NUMBER = 64
#: The longest `user` taken: a username has at most 64 characters, an extension 20.
MAX_USER = 64

_DIGITS = re.compile(r"[0-9]")


@dataclass(frozen=True, slots=True)
class AskedNumber:
    """A number as a lookup compares it."""

    #: Its E.164 form, when it has one.
    e164: str | None
    #: An internal number's digits (no E.164 form, and not a problem either).
    internal: str | None
    #: The digits a suffix lookup compares the end of: those of the E.164 form, else
    #: those as given (without the outside-line prefix).
    digits: str

    @property
    def compared(self) -> str:
        return self.e164 or self.internal or self.digits


def asked_number(text: str, normaliser: PhoneNormaliser) -> AskedNumber | None:
    """How a lookup compares `text`; None when it holds nothing to compare (no digits, a
    control character). Never raises: a PBX may send anything as a caller's number."""
    text = text.strip()
    if not text or len(text) > MAX_NUMBER or not text.isprintable():
        return None
    normalised = normaliser.normalise(text)
    if normalised.e164 is not None:
        return AskedNumber(normalised.e164, None, normalised.e164[1:])
    digits = "".join(_DIGITS.findall(text))
    prefix = normaliser.outside_line_prefix
    if prefix and not text.startswith("+") and digits.startswith(prefix):
        digits = digits[len(prefix) :]
    if not digits:
        return None
    if normalised.problem is None:
        return AskedNumber(None, digits, digits)
    return AskedNumber(None, None, digits)


@lru_cache(maxsize=16)
def _normaliser(region: str, prefix: str) -> PhoneNormaliser:
    return PhoneNormaliser(region, prefix)


@lru_cache(maxsize=16)
def _networks(text: str) -> tuple[lookup_store.Network, ...]:
    try:
        return lookup_store.parse_networks(text)
    except ConfigError:
        return ()  # set around the checks (by hand in the store): trust nobody


def _suffix_digits(text: str) -> int:
    if text.isascii() and text.isdigit() and MIN_SUFFIX_DIGITS <= int(text) <= MAX_SUFFIX_DIGITS:
        return int(text)
    return int(DEFAULTS["lookup_suffix_digits"][0])


#: Settings read within this many seconds are used again (as a valid token is): a PBX
#: asks for every call, and reading them is a query of its own, a round trip to
#: PostgreSQL. Any write this process commits drops the copy at once; a change saved by
#: another process (the CLI, another worker of `serve`) is seen within this time.
SETTINGS_TTL = 2.0
#: Settings older than this are read again in the background (`App.refresher`) when a
#: lookup uses them, while the copy still answers: lookups in steady use never wait.
SETTINGS_REFRESH_AFTER = 1.0


#: What a lookup found: the record, how it matched (`exact`, `suffix`), what was asked.
_Found = tuple[lookup_store.Match, str, AskedNumber]


class LookupService:
    """Names for numbers, for PBXes, phones and an administrator's shell."""

    def __init__(self, app: App) -> None:
        self.app = app
        #: (when read, `app.commits` then, the settings).
        self._settings: tuple[float, int, dict[str, str]] | None = None

    def _current_settings(self, conn: Connection | None) -> dict[str, str]:
        """The instance settings, read again after `SETTINGS_TTL` or any write (with no
        `conn`: `WouldWait` instead of reading them)."""
        hit = self._settings
        if hit is not None and hit[1] == self.app.commits:
            age = time.monotonic() - hit[0]
            if age < SETTINGS_TTL:
                if age >= SETTINGS_REFRESH_AFTER:
                    self.app.refresher.soon("lookup-settings", self._reread_settings)
                return hit[2]
        if conn is None:
            raise WouldWait("the settings are due to be read again")
        return self._read_settings(conn)

    def _read_settings(self, conn: Connection) -> dict[str, str]:
        # Taken before the read: a write committed after it drops the copy.
        now, commits = time.monotonic(), self.app.commits
        values = get_settings(conn)
        self._settings = (now, commits, values)
        return values

    def _reread_settings(self) -> None:
        with self.app.reading() as conn:
            self._read_settings(conn)

    def find(
        self, number: str, *, user: str | None = None, caller: Principal | None = None
    ) -> LookupResult:
        """The record `number` belongs to (see the module's precedence). `user` is the
        called user, by username or extension: their private phonebook comes first; a
        user who does not exist has none. `NotFoundError` when no record has the number
        (or it is not a number at all); `UsageError` when it is empty or too long.
        `caller` is who asks over HTTP: a `phone` token only ever opens its own user's
        private phonebook (`tokens.directory_user`)."""
        return self._find(number, user, caller, wait=True)

    def find_at_once(
        self, number: str, *, user: str | None = None, caller: Principal | None = None
    ) -> LookupResult | None:
        """`find` without waiting for anything (see `name_at_once`); None when it cannot
        answer so: then ask `find` where waiting is fine."""
        try:
            return self._find(number, user, caller, wait=False)
        except WouldWait:
            return None

    def name(self, number: str, *, user: str | None = None, caller: Principal | None = None) -> str:
        """The name to show for `number`, or "" when there is none: for a dialplan, which
        shows the number when the name is empty. Never refuses a number (`caller` as for
        `find`)."""
        return self._name(number, user, caller, wait=True)

    def name_at_once(
        self, number: str, *, user: str | None = None, caller: Principal | None = None
    ) -> str | None:
        """`name` without waiting for anything, for `serve`'s event loop, where a wait
        holds up every other request: from the settings in memory and one read of an
        SQLite store that does not wait for its lock. None when it cannot answer so (a
        PostgreSQL store, whose reads are round trips; the settings due to be read
        again; a `phone` token naming its user by id or extension; the store busy):
        then ask `name` in a thread."""
        try:
            return self._name(number, user, caller, wait=False)
        except WouldWait:
            return None

    def allows_client(self, address: str) -> bool:
        """Whether a client at `address` may look up without a token: it is in the
        instance setting `lookup_clients`."""
        with self.app.reading() as conn:
            # Read afresh: who may ask without a token is a decision of access.
            text = get_settings(conn)["lookup_clients"]
        return lookup_store.in_networks(address, _networks(text))

    def _find(
        self, number: str, user: str | None, caller: Principal | None, *, wait: bool
    ) -> LookupResult:
        user = self.app.tokens.directory_user(caller, user, wait=wait)
        text = _checked(number)
        return _result(text, self._lookup(text, user, wait=wait))

    def _name(self, number: str, user: str | None, caller: Principal | None, *, wait: bool) -> str:
        user = self.app.tokens.directory_user(caller, user, wait=wait)
        text = _name_text(number)
        if text is None:
            return ""
        found = self._lookup(text, user, wait=wait)
        # The name alone: no result model to build for the most-asked question.
        return "" if found is None else _name(found[0])

    async def find_async(
        self, number: str, *, user: str | None = None, caller: Principal | None = None
    ) -> LookupResult | None:
        """`find` over the asynchronous connections of a PostgreSQL store (see
        `name_async`); None when it cannot answer so."""
        readers = self.app.async_readers
        if readers is None:
            return None
        try:
            user = self.app.tokens.directory_user(caller, user, wait=False)
            text = _checked(number)
            return _result(text, await self._lookup_async(readers, text, user))
        except WouldWait:
            return None

    async def name_async(
        self, number: str, *, user: str | None = None, caller: Principal | None = None
    ) -> str | None:
        """`name` for `serve`'s event loop over the asynchronous connections of a
        PostgreSQL store (`store.async_readers`): the round trips are awaited, no thread
        is involved. None when it cannot answer so (an SQLite store, which has
        `name_at_once`; the settings due to be read again; a `phone` token naming its
        user by id or extension): then ask `name` in a thread."""
        readers = self.app.async_readers
        if readers is None:
            return None
        try:
            user = self.app.tokens.directory_user(caller, user, wait=False)
            text = _name_text(number)
            if text is None:
                return ""
            found = await self._lookup_async(readers, text, user)
        except WouldWait:
            return None
        return "" if found is None else _name(found[0])

    async def _lookup_async(
        self, readers: AsyncReaders, text: str, user: str | None
    ) -> _Found | None:
        questions = _questions(self._current_settings(None), text)
        if questions is None:
            return None
        asked, asks = questions
        owner = None
        if (folded := _owner_asked(user)) is not None:
            owner = await lookup_store.owner_of_async(readers, *folded)
        for kind, value, how in asks:
            match = await lookup_store.find_async(readers, kind, value, owner)
            if match is not None:
                return match, how, asked
        return None

    def _lookup(self, text: str, user: str | None, *, wait: bool) -> _Found | None:
        if wait:
            with self.app.reading(one_snapshot=False) as conn:
                return self._lookup_in(conn, self._current_settings(conn), text, user)
        settings = self._current_settings(None)
        reader = self.app.no_wait_reader()
        try:
            return self._lookup_in(reader, settings, text, user)
        except sqlite3.Error:
            # Busy (a checkpoint resetting the log), or a failure that the same read in
            # a thread reports properly through the store's own errors.
            raise WouldWait("the store cannot answer at once") from None

    def _lookup_in(
        self, conn: lookup_store.Reader, settings: dict[str, str], text: str, user: str | None
    ) -> _Found | None:
        questions = _questions(settings, text)
        if questions is None:
            return None
        asked, asks = questions
        owner = _owner(conn, user)
        for kind, value, how in asks:
            match = lookup_store.find(conn, kind, value, owner)
            if match is not None:
                return match, how, asked
        return None


def _checked(number: str) -> str:
    """The number to look up, stripped; `UsageError` when it is empty or too long."""
    text = number.strip()
    if not text:
        raise UsageError("give a number to look up", field="number")
    if len(text) > MAX_NUMBER:
        raise UsageError(f"the number is longer than {MAX_NUMBER} characters", field="number")
    return text


def _name_text(number: str) -> str | None:
    """The number to name, stripped; None when it is empty or too long (a dialplan gets
    no name, not an error)."""
    text = number.strip()
    return text if text and len(text) <= MAX_NUMBER else None


def _result(text: str, found: _Found | None) -> LookupResult:
    if found is None:
        raise NotFoundError(f"no name for the number {text!r}", field="number")
    match, how, asked = found
    return LookupResult(
        name=_name(match),
        number=match.number,
        e164=match.e164,
        source=match.source,  # type: ignore[arg-type]
        target=match.target,  # type: ignore[arg-type]
        id=match.id,
        field=match.field,
        owner=match.owner or None,
        organisation=match.organisation,
        match=how,  # type: ignore[arg-type]
        asked=asked.compared,
    )


def _questions(
    settings: dict[str, str], text: str
) -> tuple[AskedNumber, list[tuple[lookup_store.Kind, str, str]]] | None:
    """How `text` is compared, and what to ask the store in turn: (kind, value, how it
    matched). None when `text` holds no number."""
    normaliser = _normaliser(settings["default_region"], settings["outside_line_prefix"])
    asked = asked_number(text, normaliser)
    if asked is None:
        return None
    asks: list[tuple[lookup_store.Kind, str, str]] = []
    if asked.e164 is not None:
        asks.append(("e164", asked.e164, "exact"))
    elif asked.internal is not None:
        asks.append(("internal", asked.internal, "exact"))
    if asked.internal is None and settings["lookup_match"] == "suffix":
        count = _suffix_digits(settings["lookup_suffix_digits"])
        if len(asked.digits) >= count:
            asks.append(("suffix", asked.digits[-count:][::-1], "suffix"))
    return asked, asks


def _owner_asked(user: str | None) -> tuple[str, str] | None:
    """The `user` of a lookup as the store is asked for it: (folded, as given); None for
    no user or one that cannot name anybody (never an error: a PBX sends what it has)."""
    if user is None:
        return None
    text = user.strip()
    if not text or len(text) > MAX_USER or not text.isprintable():
        return None
    return fold_username(text), text


def _owner(conn: lookup_store.Reader, user: str | None) -> str | None:
    """The username whose private phonebook comes first; None for no `user`, or one that
    names nobody."""
    folded = _owner_asked(user)
    return None if folded is None else lookup_store.owner_of(conn, *folded)


def _name(match: lookup_store.Match) -> str:
    if match.displayname:
        return match.displayname
    full = f"{match.givenname} {match.surname}".strip()
    return full or match.username
