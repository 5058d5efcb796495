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
number field, each the lowest id with the number (`ORDER BY id LIMIT 1`, which the
number's index gives in order), so at most one row per source and field; of those the
first by precedence, id and field is picked here. An `ORDER BY rank, id, pos LIMIT 1`
around the union sorted each branch into a temporary B-tree on SQLite: 19 µs a lookup
against 11 µs. The owner of a phonebook entry is compared as `coalesce(owner, '')` so that
no planner reads the owner's index (the whole global phonebook) instead of the number's.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import sqlite3
from collections.abc import Sequence
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
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import ResourceClosedError

from pbx_connector.errors import ConfigError
from pbx_connector.store.async_readers import AsyncReaders
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


# Constants written into the SQL, not bound: SQLite binds each parameter of a statement
# on every execution, and twenty bound constants cost 2.5 µs of a 13 µs lookup.
_EMPTY = _text("")
_ONE: Any = literal_column("1")
_ZERO: Any = literal_column("0")


def _branch(
    rank: int, table: Table, field: str, position: int, order: Any, condition: Any, *extra: Any
) -> Select[Any]:
    c = table.c
    is_user = table is users
    is_phonebook = table is phonebook
    e164 = c[f"{field}_e164"] if f"{field}_e164" in c else cast(null(), String)
    row = select(
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
        (func.coalesce(c.owner, _EMPTY) if is_phonebook else _EMPTY).label("owner"),
    )
    # A subquery: SQLite takes no ORDER BY or LIMIT on a member of a compound SELECT.
    first = row.where(condition, *extra).order_by(order).limit(_ONE).offset(_ZERO).subquery()
    return select(first)


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
    owner = func.coalesce(phonebook.c.owner, _EMPTY)
    if source == "private":
        return owner == bindparam("owner")
    if source == "phonebook":
        return owner == _EMPTY
    if source == "speeddials":
        return speeddials.c.displayname != _EMPTY  # a speed dial without a name names nobody
    return None


def _lowest_id(table: Table, kind: Kind) -> Any:
    """What a branch orders by to take the lowest id. The records with one whole number
    come in id order from the number's index (SQLite keeps the rowid in every index
    entry); a range of suffixes does not, and there `id + 0` keeps a planner from
    walking the whole table in id order to find the first record in the range."""
    if kind in ("e164", "internal"):
        return table.c.id
    return table.c.id + _ZERO


def _statement(kind: Kind, with_owner: bool) -> Any:
    branches: list[Select[Any]] = []
    for rank, source in enumerate(SOURCES):
        if source == "private" and not with_owner:
            continue
        table = _TABLES[source]
        extra = [c for c in (_source_condition(source),) if c is not None]
        order = _lowest_id(table, kind)
        if source == "users" and kind == "internal":
            condition = users.c.extension == bindparam("key_as_given")
            branches.append(_branch(rank, users, "extension", 0, order, condition))
        for position, field in enumerate(LOOKUP_FIELDS[table.name], start=1):
            condition = _conditions(table, field, kind)
            branches.append(_branch(rank, table, field, position, order, condition, *extra))
    return union_all(*branches)


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
    #: Bind names in the driver's order (None: the driver takes a dict).
    order: tuple[str, ...] | None


_COMPILED: dict[tuple[str, str, Kind, bool], _Compiled] = {}
#: A store's connection: SQLAlchemy's, or the driver's own to an SQLite store
#: (`store.db.NoWaitReaders`), for a lookup that must not wait.
Reader = Connection | sqlite3.Connection
#: The columns of a row of the statement, in order (`_branch`).
_COLUMNS = (
    "rank",
    "id",
    "pos",
    "field",
    "number",
    "e164",
    "displayname",
    "givenname",
    "surname",
    "username",
    "organisation",
    "owner",
)


def _dialect(conn: Reader) -> Dialect:
    if isinstance(conn, sqlite3.Connection):
        return _SQLITE
    return conn.dialect


#: Named parameters: each is bound once, where the driver's `?` repeat them per SELECT.
_SQLITE = sqlite_dialect(paramstyle="named")
#: The statements as psycopg takes them (`%(name)s`), for `find_async`.
_PSYCOPG: Dialect = psycopg_dialect()  # type: ignore[no-untyped-call]


def _compiled(dialect: Dialect, kind: Kind, with_owner: bool) -> _Compiled:
    """The statement as SQL of `dialect`, made once per process: SQLAlchemy works out a
    cache key for a statement on every execution, and for this union of up to eleven
    SELECTs that took longer than SQLite takes to answer it."""
    key = (dialect.name, dialect.paramstyle, kind, with_owner)
    found = _COMPILED.get(key)
    if found is None:
        made = statement(kind, with_owner)
        if tuple(c.key for c in made.selected_columns) != _COLUMNS:
            raise AssertionError("the lookup statement's columns are not _COLUMNS")
        compiled = made.compile(dialect=dialect)
        order = tuple(compiled.positiontup) if compiled.positional else None
        found = _COMPILED[key] = _Compiled(str(compiled), order)
    return found


def _first(conn: Reader, made: _Compiled, params: dict[str, str]) -> Any:
    """The first row of the statement by precedence, id and field (its first three
    columns); None when it has none."""
    if isinstance(conn, Connection):
        args = params if made.order is None else tuple(params[n] for n in made.order)
        rows: list[Any] = _driver_rows(conn, made.sql, args)
    else:
        # The driver's own cursor (`store.db.NoWaitReaders`): SQLAlchemy's result object
        # costs more than SQLite takes to answer.
        rows = conn.execute(made.sql, params).fetchall()
    return _best(rows)


def _best(rows: Sequence[Any]) -> Any:
    """The first of the statement's rows by precedence, id and field (its first three
    columns); None when it has none."""
    if not rows:
        return None
    return rows[0] if len(rows) == 1 else min(rows, key=_precedence)


def _driver_rows(conn: Connection, sql: str, args: Any) -> list[Any]:
    """The rows of `sql` from the driver's own cursor of `conn`: SQLAlchemy's execution
    of a statement (its context, its result object) cost more than a round trip to a
    PostgreSQL server on the same machine (95 µs against 137 µs a lookup). When the
    driver fails, the statement is run once more through SQLAlchemy, which raises its
    own error for it, and on a lost server drops the pool's connections."""
    dbapi_conn = conn.connection.dbapi_connection
    if dbapi_conn is None:
        raise ResourceClosedError("the connection is closed")
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(sql, args)
        return list(cursor.fetchall())
    except conn.dialect.loaded_dbapi.Error:
        pass
    finally:
        with contextlib.suppress(Exception):
            cursor.close()
    return list(conn.exec_driver_sql(sql, args).tuples())


def _precedence(row: Any) -> tuple[int, int, int]:
    return int(row[0]), int(row[1]), int(row[2])


def find(conn: Reader, kind: Kind, value: str, owner: str | None = None) -> Match | None:
    """The record that `value` names, by precedence (the owner's private phonebook, the
    global phonebook, users, speed dials) and then by lowest id; None when none does.
    For a suffix lookup `value` is the last digits, reversed."""
    kind = _kind(kind, value)
    made = _compiled(_dialect(conn), kind, bool(owner))
    return _match(_first(conn, made, parameters(kind, value, owner)))


async def find_async(
    readers: AsyncReaders, kind: Kind, value: str, owner: str | None = None
) -> Match | None:
    """`find` over the asynchronous connections of a PostgreSQL store."""
    kind = _kind(kind, value)
    made = _compiled(_PSYCOPG, kind, bool(owner))
    return _match(_best(await readers.rows(made.sql, parameters(kind, value, owner))))


def _kind(kind: Kind, value: str) -> Kind:
    if kind == "suffix" and key_range(value)[1] is None:
        return "suffix_open"
    return kind


def _match(row: Any) -> Match | None:
    if row is None:
        return None
    rank, id_, _, field, number, e164, displayname, givenname, surname, username, org, who = row
    source = SOURCES[int(rank)]
    return Match(
        source=source,
        target="phonebook" if source == "private" else source,
        id=int(id_),
        field=str(field),
        number=str(number or ""),
        e164=e164,
        displayname=str(displayname or ""),
        givenname=str(givenname or ""),
        surname=str(surname or ""),
        username=str(username or ""),
        organisation=str(org or ""),
        owner=str(who or ""),
    )


_BY_USERNAME = "SELECT username FROM users WHERE username = ?"
_BY_EXTENSION = "SELECT username FROM users WHERE extension = ? ORDER BY id LIMIT 1"
#: The same for psycopg (`owner_of_async`).
_BY_USERNAME_PG = _BY_USERNAME.replace("?", "%(name)s")
_BY_EXTENSION_PG = _BY_EXTENSION.replace("?", "%(name)s")


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


async def owner_of_async(readers: AsyncReaders, folded: str, as_given: str) -> str | None:
    """`owner_of` over the asynchronous connections of a PostgreSQL store."""
    rows = await readers.rows(_BY_USERNAME_PG, {"name": folded})
    if not rows and as_given:
        rows = await readers.rows(_BY_EXTENSION_PG, {"name": as_given})
    return str(rows[0][0]) if rows else None


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
