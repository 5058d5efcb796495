"""Queries behind record lists: search, owner, order and paging with a total, and a user
looked up by username with the index rather than a scan of every user.

The caller (the application core) validates what it asks for; these functions only build
the SQL. Writes stay in `store.records`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, String, func, literal, select

from pbx_connector.domain.search import fold
from pbx_connector.domain.targets import TARGETS
from pbx_connector.domain.usernames import fold_username
from pbx_connector.store import search as search_index
from pbx_connector.store.records import profile_names, public_record, table_for
from pbx_connector.store.tables import RECORD_TABLES

#: Kinds of field a search looks in: names, numbers, addresses and codes, not notes.
_SEARCHED_KINDS = frozenset({"text", "username", "email", "phone", "extension", "code"})
#: Formatting people put in numbers (as `domain.phone` ignores it).
_NUMBER_FORMATTING = re.compile(r"[\s\-./()\u00a0\u2010-\u2015]")
_NUMBER = re.compile(r"\+?[0-9]+")


@dataclass(frozen=True)
class RecordFilter:
    """Which records a list shows. `search` is matched inside the searched fields,
    regardless of case and accents; `owner` is a phonebook's owner, '' for the global
    phonebook."""

    search: str | None = None
    owner: str | None = None


@dataclass(frozen=True)
class RecordOrder:
    """A field to sort by (already validated), and its direction. Ties go by id, so that
    pages do not overlap."""

    field: str = "id"
    descending: bool = False


def find_records(
    conn: Connection,
    target: str,
    where: RecordFilter,
    order: RecordOrder,
    *,
    limit: int | None,
    offset: int,
) -> list[dict[str, Any]]:
    """One page of records, each as `store.records.public_record` shows it."""
    table = table_for(target)
    driven = _index_first(conn, target, where) if order.field == "id" else None
    if driven is not None:
        # A search in id order is read from the index in its row order: a page stops
        # after `limit` matches instead of collecting and sorting every match.
        query = _owned(
            select(table).select_from(driven.source).where(driven.condition), target, where
        )
        query = query.order_by(driven.row_id.desc() if order.descending else driven.row_id)
    else:
        query = _filtered(conn, select(table), target, where).order_by(*_order_by(target, order))
    if limit is not None:
        query = query.limit(limit)
    if offset:
        query = query.offset(offset)
    names = profile_names(conn)
    spec = TARGETS[target]
    return [public_record(spec, r._mapping, names) for r in conn.execute(query)]


def count_records(
    conn: Connection, target: str, where: RecordFilter, *, up_to: int | None = None
) -> int:
    """How many records the filter matches, whatever the page; with `up_to`, counting
    stops there (a search for three common letters need not count 16,000 matches to
    say that there are more than a page can show)."""
    table = table_for(target)
    if up_to is None:
        query = _filtered(conn, select(func.count()).select_from(table), target, where)
        return int(conn.execute(query).scalar_one())
    driven = _index_first(conn, target, where)
    if driven is not None:
        matching = _owned(
            select(literal(1)).select_from(driven.source).where(driven.condition), target, where
        )
    else:
        matching = _filtered(conn, select(literal(1)).select_from(table), target, where)
    capped = matching.limit(up_to).subquery()
    return int(conn.execute(select(func.count()).select_from(capped)).scalar_one())


def user_id_by_username(conn: Connection, username: str) -> int | None:
    """The id of the user with this username (compared in its folded spelling)."""
    users = RECORD_TABLES["users"]
    query = select(users.c.id).where(users.c.username == fold_username(username.strip()))
    found = conn.execute(query).scalar_one_or_none()
    return None if found is None else int(found)


def phonebook_owners(conn: Connection) -> list[tuple[str, int]]:
    """Each owner of a private phonebook (by username) and how many entries it holds."""
    table = RECORD_TABLES["phonebook"]
    query = (
        select(table.c.owner, func.count())
        .where(table.c.owner.is_not(None))
        .group_by(table.c.owner)
        .order_by(table.c.owner)
    )
    return [(str(owner), int(count)) for owner, count in conn.execute(query)]


def _filtered(
    conn: Connection, query: Select[Any], target: str, where: RecordFilter
) -> Select[Any]:
    query = _owned(query, target, where)
    if where.search:
        query = query.where(_matches(conn, target, where.search))
    return query


def _owned(query: Select[Any], target: str, where: RecordFilter) -> Select[Any]:
    if where.owner is not None and target == "phonebook":
        owner = table_for(target).c.owner
        query = query.where(
            owner.is_(None) if where.owner == "" else owner == fold_username(where.owner)
        )
    return query


def _terms(search: str) -> list[str]:
    """The folded term, and the digits of a term that looks like a number. Digits are
    added only from three on: fewer are no phone number anyone searches for, and a
    search text holds them nearly everywhere, so that one or two digits (`) 2`) would
    read the whole table for the count instead of the trigram index."""
    terms = [fold(search)]
    digits = _number_fragment(search)
    if digits is not None and len(digits.lstrip("+")) >= 3 and digits not in terms:
        terms.append(digits)
    return terms


def _index_first(
    conn: Connection, target: str, where: RecordFilter
) -> search_index.IndexFirst | None:
    if not where.search:
        return None
    return search_index.index_first(conn, table_for(target), _terms(where.search))


def _matches(conn: Connection, target: str, search: str) -> ColumnElement[bool]:
    """The search term inside a record's folded search text (through the trigram index,
    see `store.search`): case and accents do not matter, `mül` finds `Jürgen Müller`. A
    term that looks like a number also matches the E.164 forms by its digits, so
    `0991 123` finds `+49 991 12345`."""
    return search_index.matches(conn, table_for(target), _terms(search))


def _number_fragment(search: str) -> str | None:
    """A number as it appears inside an E.164 form: without formatting, `00` as `+`,
    and without the trunk `0` of a national number. None if the term is not a number."""
    compact = _NUMBER_FORMATTING.sub("", search)
    if not _NUMBER.fullmatch(compact):
        return None
    if compact.startswith("00"):
        return "+" + compact[2:]
    if compact.startswith("0"):
        return compact[1:] or None
    return compact


def _order_by(target: str, order: RecordOrder) -> list[Any]:
    """Text sorts without regard to case; an empty extension or owner (NULL) sorts with
    the empty strings, first, on both stores."""
    table = table_for(target)
    column: Any = table.c[order.field]
    if isinstance(column.type, String):
        column = func.lower(column)
    if order.descending:
        first = column.desc().nulls_last()
        tie = table.c.id.desc()
    else:
        first = column.asc().nulls_first()
        tie = table.c.id.asc()
    return [tie] if order.field == "id" else [first, tie]
