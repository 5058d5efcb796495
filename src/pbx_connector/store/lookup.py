"""Caller-name lookup in the store: which record a number belongs to, read from indexes.

Every number a lookup finds a record by (`tables.LOOKUP_FIELDS`) is kept twice besides
the number as given, both made when the record is written, never when it is asked for:

- `{field}_e164`: its E.164 form (none for an internal or unusable number);
- `{field}_rev`: its digits, last digit first (`number_key`): the digits of the E.164
  form when there is one, else the digits as given. An internal number (`101`) is found
  by it, and so is a number by its last N digits: they are the first N of the key, a
  range of an ordinary B-tree index (`>= '54321' AND < '54322'`), which SQLite and
  PostgreSQL both read without a scan and whatever the column's collation (the keys
  hold ASCII digits only).

One statement answers a lookup: a `UNION ALL` of one indexed `SELECT` per source and
number field, ordered by precedence and id, `LIMIT 1`. The owner of a phonebook entry is
compared as `coalesce(owner, '')` so that no planner reads the owner's index (the whole
global phonebook) instead of the number's.
"""

from __future__ import annotations

import ipaddress
import re
import sqlite3
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    Connection,
    Select,
    String,
    Table,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.engine import Dialect

from pbx_connector.errors import ConfigError
from pbx_connector.store.tables import LOOKUP_FIELDS, phonebook, reversed_column, speeddials, users

#: Where a name comes from, in the order of precedence.
SOURCES: tuple[str, ...] = ("private", "phonebook", "users", "speeddials")

#: How the number is compared: its E.164 form, an internal number's digits, or the
#: last digits (with an upper bound, or without one when they are all nines).
Kind = Literal["e164", "internal", "suffix", "suffix_open"]

_DIGITS = re.compile(r"[0-9]+")
#: Networks a `lookup_clients` setting may list.
MAX_NETWORKS = 100

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def number_key(number: str, e164: str | None) -> str | None:
    """The stored key of a number: the digits of its E.164 form, or else of the number as
    given, last digit first; None when it has no digits."""
    digits = e164[1:] if e164 else "".join(_DIGITS.findall(number))
    return digits[::-1] or None


def key_range(reversed_digits: str) -> tuple[str, str | None]:
    """The keys that start with `reversed_digits`, as a half-open range: the upper bound
    is the next digit string of the same length or shorter ('5439' -> '544'); None when
    the digits are all nines (every key from the lower bound up starts with them)."""
    stem = reversed_digits.rstrip("9")
    if not stem:
        return reversed_digits, None
    return reversed_digits, stem[:-1] + chr(ord(stem[-1]) + 1)


@dataclass(frozen=True, slots=True)
class Match:
    """The record a lookup found, as the store holds it."""

    source: str
    target: str
    id: int
    field: str
    number: str
    e164: str | None
    displayname: str
    givenname: str
    surname: str
    username: str
    organisation: str
    owner: str


def _text(value: str) -> Any:
    return literal_column(f"'{value}'", String)


def _branch(
    rank: int, table: Table, field: str, position: int, condition: Any, *extra: Any
) -> Select[Any]:
    c = table.c
    is_user = table is users
    is_phonebook = table is phonebook
    e164 = c[f"{field}_e164"] if f"{field}_e164" in c else cast(null(), String)
    return select(
        literal_column(str(rank)).label("rank"),
        c.id.label("id"),
        literal_column(str(position)).label("pos"),
        _text(field).label("field"),
        c[field].label("number"),
        e164.label("e164"),
        c.displayname.label("displayname"),
        (c.givenname if table is not speeddials else _text("")).label("givenname"),
        (c.surname if table is not speeddials else _text("")).label("surname"),
        (c.username if is_user else _text("")).label("username"),
        (c.organisation if table is not speeddials else _text("")).label("organisation"),
        (func.coalesce(c.owner, "") if is_phonebook else _text("")).label("owner"),
    ).where(condition, *extra)


def _conditions(table: Table, field: str, kind: Kind) -> Any:
    c = table.c
    if kind == "e164":
        return c[f"{field}_e164"] == bindparam("e164")
    key = c[reversed_column(field)]
    if kind == "internal":
        return (key == bindparam("key")) & c[f"{field}_e164"].is_(None)
    if kind == "suffix":
        return (key >= bindparam("low")) & (key < bindparam("high"))
    return key >= bindparam("low")


#: The records of each source, and what else a record must be to be found there.
_TABLES: dict[str, Table] = {
    "private": phonebook,
    "phonebook": phonebook,
    "users": users,
    "speeddials": speeddials,
}


def _source_condition(source: str) -> Any:
    owner = func.coalesce(phonebook.c.owner, "")
    if source == "private":
        return owner == bindparam("owner")
    if source == "phonebook":
        return owner == ""
    if source == "speeddials":
        return speeddials.c.displayname != ""  # a speed dial without a name names nobody
    return None


def _statement(kind: Kind, with_owner: bool) -> Any:
    branches: list[Select[Any]] = []
    for rank, source in enumerate(SOURCES):
        if source == "private" and not with_owner:
            continue
        table = _TABLES[source]
        extra = [c for c in (_source_condition(source),) if c is not None]
        if source == "users" and kind == "internal":
            condition = users.c.extension == bindparam("key_as_given")
            branches.append(_branch(rank, users, "extension", 0, condition))
        for position, field in enumerate(LOOKUP_FIELDS[table.name], start=1):
            condition = _conditions(table, field, kind)
            branches.append(_branch(rank, table, field, position, condition, *extra))
    return union_all(*branches).order_by("rank", "id", "pos").limit(1)


_STATEMENTS: dict[tuple[Kind, bool], Any] = {}


def statement(kind: Kind, with_owner: bool) -> Any:
    """The one statement of a lookup of this kind, made once per process."""
    key = (kind, with_owner)
    found = _STATEMENTS.get(key)
    if found is None:
        found = _STATEMENTS[key] = _statement(kind, with_owner)
    return found


def parameters(kind: Kind, value: str, owner: str | None) -> dict[str, str]:
    """The parameters of `statement(kind, …)` for the asked `value`: an E.164 number, an
    internal number's digits, or the reversed last digits."""
    params: dict[str, str] = {}
    if kind == "e164":
        params["e164"] = value
    elif kind == "internal":
        params["key"] = value[::-1]
        params["key_as_given"] = value
    else:
        low, high = key_range(value)
        params["low"] = low
        if high is not None:
            params["high"] = high
    if owner:
        params["owner"] = owner
    return params


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    #: The statement's own constants (`''` of the owner comparisons), by bind name.
    constants: dict[str, Any]
    #: Bind names in the driver's order (None: the driver takes a dict).
    order: tuple[str, ...] | None
    #: The names of the columns of a row, in order.
    columns: tuple[str, ...]


_COMPILED: dict[tuple[str, str, Kind, bool], _Compiled] = {}
#: Any value of each parameter, to make the statement's constants come out when compiling.
_SAMPLE = {"e164": "", "key": "", "key_as_given": "", "low": "", "high": "", "owner": ""}
#: A store's connection: SQLAlchemy's, or the driver's own to an SQLite store
#: (`store.db.NoWaitReaders`), for a lookup that must not wait.
Reader = Connection | sqlite3.Connection


def _dialect(conn: Reader) -> Dialect:
    if isinstance(conn, sqlite3.Connection):
        return _SQLITE
    return conn.dialect


#: Named parameters: each is bound once, where the driver's `?` repeat them per SELECT.
_SQLITE = sqlite_dialect(paramstyle="named")


def _compiled(dialect: Dialect, kind: Kind, with_owner: bool) -> _Compiled:
    """The statement as SQL of `dialect`, made once per process: SQLAlchemy works out a
    cache key for a statement on every execution, and for this union of up to eleven
    SELECTs that took longer than SQLite takes to answer it."""
    key = (dialect.name, dialect.paramstyle, kind, with_owner)
    found = _COMPILED.get(key)
    if found is None:
        compiled = statement(kind, with_owner).compile(dialect=dialect)
        asked = set(_SAMPLE)
        constants = {k: v for k, v in compiled.construct_params(_SAMPLE).items() if k not in asked}
        order = tuple(compiled.positiontup) if compiled.positional else None
        columns = tuple(c.key for c in statement(kind, with_owner).selected_columns)
        found = _COMPILED[key] = _Compiled(str(compiled), constants, order, columns)
    return found


def _first(conn: Reader, made: _Compiled, params: dict[str, Any]) -> dict[str, Any] | None:
    """The first row of the statement, by column name."""
    if isinstance(conn, Connection):
        args = params if made.order is None else tuple(params[n] for n in made.order)
        row = conn.exec_driver_sql(made.sql, args).first()
        return None if row is None else dict(row._mapping)
    # The driver's own cursor (`store.db.NoWaitReaders`): SQLAlchemy's result object
    # costs more than SQLite takes to answer.
    got = conn.execute(made.sql, params).fetchone()
    return None if got is None else dict(zip(made.columns, got, strict=True))


def find(conn: Reader, kind: Kind, value: str, owner: str | None = None) -> Match | None:
    """The record that `value` names, by precedence (the owner's private phonebook, the
    global phonebook, users, speed dials) and then by lowest id; None when none does.
    For a suffix lookup `value` is the last digits, reversed."""
    if kind == "suffix" and key_range(value)[1] is None:
        kind = "suffix_open"
    made = _compiled(_dialect(conn), kind, bool(owner))
    m = _first(conn, made, {**made.constants, **parameters(kind, value, owner)})
    if m is None:
        return None
    source = SOURCES[int(m["rank"])]
    return Match(
        source=source,
        target="phonebook" if source == "private" else source,
        id=int(m["id"]),
        field=str(m["field"]),
        number=str(m["number"] or ""),
        e164=m["e164"],
        displayname=str(m["displayname"] or ""),
        givenname=str(m["givenname"] or ""),
        surname=str(m["surname"] or ""),
        username=str(m["username"] or ""),
        organisation=str(m["organisation"] or ""),
        owner=str(m["owner"] or ""),
    )


_BY_USERNAME = "SELECT username FROM users WHERE username = ?"
_BY_EXTENSION = "SELECT username FROM users WHERE extension = ? ORDER BY id LIMIT 1"


def owner_of(conn: Reader, folded: str, as_given: str) -> str | None:
    """The username of the user that a lookup's `user` names: by username (`folded`),
    else by extension (`as_given`, the lowest id if several have it); None when no user
    has either."""
    if isinstance(conn, sqlite3.Connection):
        found = conn.execute(_BY_USERNAME, (folded,)).fetchone()
        if found is None and as_given:
            found = conn.execute(_BY_EXTENSION, (as_given,)).fetchone()
        return None if found is None else str(found[0])
    row = conn.execute(select(users.c.username).where(users.c.username == folded)).first()
    if row is None and as_given:
        row = conn.execute(
            select(users.c.username)
            .where(users.c.extension == as_given)
            .order_by(users.c.id)
            .limit(1)
        ).first()
    return None if row is None else str(row.username)


# --- the clients that may look up without a token -----------------------------------------


def parse_networks(text: str, field: str = "lookup_clients") -> tuple[Network, ...]:
    """`10.0.0.0/8, 192.168.1.5 2001:db8::/32` as networks (a plain address is a network
    of one). Raises `ConfigError` naming the entry that is not one."""
    entries = [e for e in re.split(r"[\s,;]+", text.strip()) if e]
    if len(entries) > MAX_NETWORKS:
        raise ConfigError(f"at most {MAX_NETWORKS} networks may be listed", field=field)
    networks: list[Network] = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ConfigError(
                f"{entry[:60]!r} is not an IP address or network (e.g. 192.168.1.0/24)",
                field=field,
            ) from None
    return tuple(networks)


def in_networks(address: str, networks: tuple[Network, ...]) -> bool:
    """Whether `address` (as a server sees a client's) is in one of `networks`; an IPv4
    address in IPv6 form (`::ffff:10.0.0.5`) counts as the IPv4 address."""
    if not networks or not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in networks)
