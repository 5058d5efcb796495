"""Records of the three targets: hand edits, listings, and what a sync needs to diff."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from pbx_connector.domain.identity import Identity, identities
from pbx_connector.domain.passwords import hash_secret
from pbx_connector.domain.search import search_text
from pbx_connector.domain.targets import ADMIN_USERNAME, TARGETS, CleanRecord, TargetSpec
from pbx_connector.domain.usernames import fold_username, username_skeleton
from pbx_connector.errors import ConflictError, NotFoundError, ProtectedRecordError, UsageError
from pbx_connector.store.bulk import insert_rows
from pbx_connector.store.lookup import number_key
from pbx_connector.store.search import index_new, refresh_search_text
from pbx_connector.store.tables import (
    LOOKUP_FIELDS,
    RECORD_TABLES,
    column_names,
    profiles,
    reversed_column,
)

#: A row as SQLAlchemy returns it (`RowMapping` is keyed by names or columns).
StoredRow = Mapping[Any, Any]

#: The largest limit a store takes (a signed 64-bit integer, SQL's BIGINT).
MAX_LIMIT = 2**63 - 1

#: Fields that a unique index guards, by target.
_UNIQUE = {"users": ("username", "extension"), "speeddials": ("code",), "phonebook": ()}


def table_for(target: str) -> Table:
    return RECORD_TABLES[target]


def to_columns(spec: TargetSpec, clean: CleanRecord) -> dict[str, Any]:
    """Column values for a validated record; secrets are hashed here, once."""
    row: dict[str, Any] = {}
    looked_up = LOOKUP_FIELDS.get(spec.name, ())
    for f in spec.fields:
        if f.name not in clean.values:
            continue
        value = clean.values[f.name]
        if f.kind in ("secret", "pin"):
            row[f"{f.name}_hash"] = hash_secret(value) if value else None
        elif f.kind == "owner":
            row[f.name] = value or None
        else:
            row[f.name] = value
        if f.kind == "phone":
            row[f"{f.name}_e164"] = clean.e164.get(f.name)
            if f.name in looked_up:
                row[reversed_column(f.name)] = number_key(value, clean.e164.get(f.name))
    return row


def public_record(
    spec: TargetSpec, row: StoredRow, profile_names: Mapping[int, str]
) -> dict[str, Any]:
    """A record as listings and the JSON output show it."""
    out: dict[str, Any] = {"id": row["id"]}
    for f in spec.fields:
        if f.kind in ("secret", "pin"):
            out[f"{f.name}_set"] = row[f"{f.name}_hash"] is not None
            continue
        for col in column_names(f):
            value = row[col]
            out[col] = "" if value is None and f.kind == "owner" else value
    if spec.name == "users":
        out["builtin"] = bool(row["builtin"])
    pid = row["origin_profile_id"]
    out["origin"] = (
        {"profile": profile_names.get(pid, str(pid)), "key": row["origin_key"]}
        if pid is not None
        else None
    )
    return out


def profile_names(conn: Connection) -> dict[int, str]:
    return {r.id: r.name for r in conn.execute(select(profiles.c.id, profiles.c.name))}


def list_records(
    conn: Connection, target: str, *, owner: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    spec = TARGETS[target]
    table = table_for(target)
    query = select(table).order_by(table.c.id)
    if owner is not None and target == "phonebook":
        query = query.where(
            table.c.owner.is_(None) if owner == "" else table.c.owner == fold_username(owner)
        )
    if limit is not None:
        if not 0 <= limit <= MAX_LIMIT:
            raise UsageError(f"the limit must be a number from 0 to {MAX_LIMIT}", field="limit")
        query = query.limit(limit)
    names = profile_names(conn)
    return [public_record(spec, r._mapping, names) for r in conn.execute(query)]


def _largest_id(conn: Connection) -> int:
    """Ids are INTEGER columns: 64 bits on SQLite, 32 on PostgreSQL (where a larger number
    is not even a valid parameter). Nothing outside 1…this names a record."""
    return 2**63 - 1 if conn.dialect.name == "sqlite" else 2**31 - 1


def get_row(conn: Connection, target: str, record_id: int) -> StoredRow:
    table = table_for(target)
    if not 1 <= record_id <= _largest_id(conn):
        raise NotFoundError(f"no {TARGETS[target].label} with id {record_id}")
    row = conn.execute(select(table).where(table.c.id == record_id)).first()
    if row is None:
        raise NotFoundError(f"no {TARGETS[target].label} with id {record_id}")
    return row._mapping


def get_record(conn: Connection, target: str, record_id: int) -> dict[str, Any]:
    return public_record(TARGETS[target], get_row(conn, target, record_id), profile_names(conn))


def stored_values(spec: TargetSpec, row: StoredRow) -> dict[str, Any]:
    """The field values of a stored record, in the shape `clean_record` produces."""
    values: dict[str, Any] = {}
    for f in spec.fields:
        if f.kind in ("secret", "pin"):
            continue
        value = row[f.name]
        values[f.name] = "" if value is None and f.kind == "owner" else value
    return values


def check_unique(
    conn: Connection,
    target: str,
    values: StoredRow,
    record_id: int | None = None,
    changed: Collection[str] | None = None,
) -> None:
    """Refuse a hand-made record that would clash with an existing one. A username also
    clashes with one that merely looks like it (the same skeleton). With `changed`, only
    the fields being written are checked: an edit of a user's e-mail is not refused for a
    look-alike username that the store held before this rule."""
    table = table_for(target)
    label = TARGETS[target].label
    for ident in identities(target, values):
        name = ident[0]
        if changed is not None and name not in changed:
            continue
        if name == "username":
            _check_username(conn, str(values.get("username") or ""), ident[1], record_id)
        elif name in ("extension", "code"):
            found = conn.execute(select(table.c.id).where(table.c[name] == ident[1])).first()
            if found is not None and found.id != record_id:
                raise ConflictError(
                    f"{name} {ident[1]!r} is used by {label} {found.id}", field=name
                )


def _check_username(conn: Connection, username: str, skeleton: str, record_id: int | None) -> None:
    users = RECORD_TABLES["users"]
    found = conn.execute(select(users.c.id).where(users.c.username == username)).first()
    if found is not None and found.id != record_id:
        raise ConflictError(f"username {username!r} is used by user {found.id}", field="username")
    # Few users; a hand edit may read them all (a skeleton is not a column to search).
    for r in conn.execute(select(users.c.id, users.c.username)):
        if r.id != record_id and username_skeleton(r.username) == skeleton:
            raise ConflictError(
                f"username {username!r} looks like {r.username!r}, the username of "
                f"user {r.id}: one could pass for the other",
                field="username",
            )


def _clash(exc: IntegrityError, target: str, row: Mapping[str, Any]) -> ConflictError:
    """A unique index refused a write that `check_unique` let through: another writer
    took the value in the meantime. Say which field, as `check_unique` would have."""
    text = str(exc.orig)
    for name in _UNIQUE[target]:
        if f"{target}.{name}" in text or f"uq_{target}_{name}" in text:
            return ConflictError(
                f"{name} {row.get(name)!r} is already used by another "
                f"{TARGETS[target].label} (saved at the same moment)",
                field=name,
            )
    raise exc


def check_owner(conn: Connection, owner: str) -> None:
    if owner and owner not in usernames(conn):
        raise UsageError(f"owner {owner!r} is not a user", field="owner")


def insert_record(conn: Connection, target: str, clean: CleanRecord) -> int:
    spec = TARGETS[target]
    check_unique(conn, target, clean.values)
    if target == "phonebook":
        check_owner(conn, clean.values.get("owner") or "")
    now = datetime.now(UTC)
    row = to_columns(spec, clean)
    row["search_text"] = search_text(spec, clean.values, clean.e164)
    if target == "users":
        row["builtin"] = False
    try:
        result = conn.execute(
            insert(table_for(target)).values(**row, created_at=now, updated_at=now)
        )
    except IntegrityError as exc:
        raise _clash(exc, target, row) from None
    assert result.inserted_primary_key is not None
    new_id = int(result.inserted_primary_key[0])
    index_new(conn, table_for(target), new_id - 1)
    return new_id


def update_record(conn: Connection, target: str, record_id: int, clean: CleanRecord) -> None:
    """A hand edit. An imported record keeps its origin but loses its content hash (and
    its source row's digest), so the next run of its profile writes the source's values
    again."""
    spec = TARGETS[target]
    current = get_row(conn, target, record_id)
    if (
        target == "users"
        and current["builtin"]
        and "username" in clean.values
        and clean.values["username"] != ADMIN_USERNAME
    ):
        raise ProtectedRecordError("the built-in admin user cannot be renamed")
    merged = {**stored_values(spec, current), **clean.values}
    check_unique(conn, target, merged, record_id, changed=clean.values.keys())
    if target == "phonebook" and "owner" in clean.values:
        check_owner(conn, clean.values.get("owner") or "")
    table = table_for(target)
    row = to_columns(spec, clean)
    try:
        conn.execute(
            update(table)
            .where(table.c.id == record_id)
            .values(**row, content_hash=None, source_hash=None, updated_at=datetime.now(UTC))
        )
    except IntegrityError as exc:
        raise _clash(exc, target, row) from None
    refresh_search_text(conn, target, [record_id])


def delete_record(conn: Connection, target: str, record_id: int) -> None:
    current = get_row(conn, target, record_id)
    if target == "users" and current["builtin"]:
        raise ProtectedRecordError("the built-in admin user cannot be deleted")
    table = table_for(target)
    conn.execute(delete(table).where(table.c.id == record_id))


def usernames(conn: Connection) -> set[str]:
    users = RECORD_TABLES["users"]
    return {r.username for r in conn.execute(select(users.c.username))}


# --- what a sync needs -------------------------------------------------------------------


def iter_own_index(
    conn: Connection, target: str, profile_id: int
) -> Iterator[tuple[str, int, str | None, str | None]]:
    """(origin key, record id, content hash, source row digest) of every record this
    profile imported, streamed: the caller keeps them compactly (see sync.keyindex)."""
    table = table_for(target)
    query = select(table.c.origin_key, table.c.id, table.c.content_hash, table.c.source_hash).where(
        table.c.origin_profile_id == profile_id
    )
    # Handed on as they come: named access on each row cost more than the rest of the loop.
    yield from conn.execution_options(yield_per=5000).execute(query)


def origin_key(conn: Connection, target: str, record_id: int) -> str:
    """The key a record has at the profile that imported it ("" if none)."""
    table = table_for(target)
    found = conn.execute(select(table.c.origin_key).where(table.c.id == record_id)).scalar()
    return found or ""


def reserved_roles(
    conn: Connection, profile_id: int, reserved: frozenset[str]
) -> dict[int, list[str]]:
    """record id → the reserved roles (admin, viewer) of the users this profile imported
    that hold one: given by hand, an import must keep them."""
    users = RECORD_TABLES["users"]
    query = select(users.c.id, users.c.roles).where(users.c.origin_profile_id == profile_id)
    out: dict[int, list[str]] = {}
    for r in conn.execute(query):
        kept = sorted(set(r.roles or []) & reserved)
        if kept:
            out[r.id] = kept
    return out


def own_identities(
    conn: Connection, target: str, profile_id: int
) -> dict[str, tuple[int, list[Identity]]]:
    """origin key → (record id, identities) of every record this profile imported."""
    table = table_for(target)
    query = select(table).where(table.c.origin_profile_id == profile_id)
    return {
        r.origin_key: (r.id, identities(target, stored_values(TARGETS[target], r._mapping)))
        for r in conn.execute(query)
    }


def foreign_identities(conn: Connection, target: str, profile_id: int) -> dict[Identity, str]:
    """Identities held by records made by hand or by other profiles → who holds them."""
    table = table_for(target)
    spec = TARGETS[target]
    names = profile_names(conn)
    query = select(table).where(
        (table.c.origin_profile_id != profile_id) | table.c.origin_profile_id.is_(None)
    )
    held: dict[Identity, str] = {}
    for r in conn.execute(query):
        m = r._mapping
        if target == "users" and m["builtin"]:
            holder = "the built-in admin user, which no import may change"
        elif m["origin_profile_id"] is None:
            holder = f"{spec.label} {m['id']}, made by hand"
        else:
            holder = (
                f"{spec.label} {m['id']}, imported by profile "
                f"{names.get(m['origin_profile_id'], '?')!r}"
            )
        for ident in identities(target, stored_values(spec, m)):
            held[ident] = holder
    return held


def load_rows(conn: Connection, target: str, ids: Sequence[int]) -> dict[int, StoredRow]:
    table = table_for(target)
    out: dict[int, StoredRow] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for r in conn.execute(select(table).where(table.c.id.in_(chunk))):
            out[r.id] = r._mapping
    return out


def insert_many(conn: Connection, target: str, rows: Iterable[dict[str, Any]]) -> None:
    """Insert rows that all have the same columns (see store.bulk)."""
    insert_rows(conn, table_for(target), list(rows))


def update_many(conn: Connection, target: str, rows: list[dict[str, Any]]) -> None:
    """Rows carry `_id` and the same set of columns each."""
    if not rows:
        return
    table = table_for(target)
    columns = [c for c in rows[0] if c != "_id"]
    # Bind names must differ from column names in an executemany UPDATE.
    stmt = (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values({c: bindparam(f"b_{c}") for c in columns})
    )
    conn.execute(
        stmt, [{f"b{k}" if k == "_id" else f"b_{k}": v for k, v in r.items()} for r in rows]
    )


def set_source_hashes(conn: Connection, target: str, hashes: Iterable[tuple[int, str]]) -> None:
    """Store the source row digest of records whose values stay as they are (record id,
    digest), in batches; nothing else of them changes, not even `updated_at`."""
    table = table_for(target)
    stmt = update(table).where(table.c.id == bindparam("b_id")).values(source_hash=bindparam("b_h"))
    batch: list[dict[str, Any]] = []
    for record_id, digest in hashes:
        batch.append({"b_id": record_id, "b_h": digest})
        if len(batch) >= 1000:
            conn.execute(stmt, batch)
            batch = []
    if batch:
        conn.execute(stmt, batch)


def delete_many(conn: Connection, target: str, ids: Sequence[int]) -> None:
    table = table_for(target)
    for start in range(0, len(ids), 500):
        conn.execute(delete(table).where(table.c.id.in_(ids[start : start + 500])))


def set_first_admin_password(conn: Connection, plain: str) -> bool:
    """Give the built-in admin `plain` as its password if it has none and signs in with
    a local password; False when it has one already. One conditional update, so that two
    processes starting at once cannot both believe that their password is the one."""
    users = RECORD_TABLES["users"]
    done = conn.execute(
        update(users)
        .where(
            (users.c.username == ADMIN_USERNAME)
            & users.c.builtin.is_(True)
            & (users.c.password_hash.is_(None) | (users.c.password_hash == ""))
            & (users.c.auth == "internal")
        )
        .values(password_hash=hash_secret(plain), updated_at=datetime.now(UTC))
    )
    return done.rowcount == 1
