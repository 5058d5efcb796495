"""Applying a plan: one transaction; deletes first (they free usernames and codes that
the new rows may take), then updates, then creates, in batches.

No schema change happens here: dropping lookup indexes for a large first import and
building them after was a little faster on SQLite, but pysqlite runs DDL outside the
transaction, so a kill in between left the store without its indexes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, update

from pbx_connector.domain.search import search_text
from pbx_connector.domain.targets import TARGETS, CleanRecord, TargetSpec
from pbx_connector.store import records as store
from pbx_connector.store.search import index_new, last_id, refresh_search_text
from pbx_connector.sync.plan import NOT_SPOOLED, Hashed, Plan, Write

BATCH = 1000
#: Columns that must stay unique; parked on a placeholder while updates move them around.
_UNIQUE: dict[str, dict[str, str | None]] = {
    "users": {"username": "~{id}", "extension": None},
    "speeddials": {"code": "~{id}"},
}


def apply_plan(
    conn: Connection, plan: Plan, profile_id: int, progress: Callable[[int], None] | None = None
) -> None:
    spec = TARGETS[plan.target]
    now = datetime.now(UTC)
    store.delete_many(conn, plan.target, plan.deletes)
    _park_unique_values(conn, plan)

    table = store.table_for(plan.target)
    # Ids of the records created here are higher (deletes are done): they are added to
    # the search index in one statement at the end.
    before = last_id(conn, table)
    creates: list[dict[str, Any]] = []
    updated: list[int] = []
    updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    done = 0
    for write in plan.spool:
        if write.position in plan.dropped:
            continue
        columns = _columns(spec, write)
        columns["content_hash"] = write.content_hash
        columns["source_hash"] = write.source_hash
        columns["updated_at"] = now
        if write.action == "create":
            columns.update(origin_profile_id=profile_id, origin_key=write.key, created_at=now)
            columns["search_text"] = search_text(spec, write.values, write.e164)
            if plan.target == "users":
                columns["builtin"] = False
            creates.append(columns)
            if len(creates) >= BATCH:
                store.insert_many(conn, plan.target, creates)
                creates = []
        else:
            columns["_id"] = write.record_id
            updated.append(write.record_id or 0)
            group = updates.setdefault(tuple(sorted(columns)), [])
            group.append(columns)
            if len(group) >= BATCH:
                store.update_many(conn, plan.target, group)
                group.clear()
        done += 1
        if progress is not None and done % BATCH == 0:
            progress(done)
    for group in updates.values():
        store.update_many(conn, plan.target, group)
    # An update writes only the fields the profile manages: the search text is made
    # again from all that the record holds now.
    refresh_search_text(conn, plan.target, updated)
    store.insert_many(conn, plan.target, creates)
    # Records that stay as they are, with the digest of the row they were found in.
    store.set_source_hashes(conn, plan.target, plan.kept_sources())
    if plan.counts["created"]:
        index_new(conn, table, before)
    if progress is not None:
        progress(done)


def _columns(spec: TargetSpec, write: Write) -> dict[str, Any]:
    """Store columns of a spooled write; its secrets arrive hashed (see `Hashed`)."""
    values = write.values
    hashed = {n: v for n, v in values.items() if isinstance(v, Hashed)}
    if not hashed:
        return store.to_columns(spec, CleanRecord(values, write.e164, []))
    if NOT_SPOOLED in hashed.values():
        raise AssertionError("a dry run's plan cannot be applied")
    plain = {n: v for n, v in values.items() if n not in hashed}
    columns = store.to_columns(spec, CleanRecord(plain, write.e164, []))
    for name, value in hashed.items():
        columns[f"{name}_hash"] = str(value)
    return columns


def _park_unique_values(conn: Connection, plan: Plan) -> None:
    """Two records may swap extensions (or codes) in one run; without this, the first
    update would collide with the second record's old value."""
    parking = _UNIQUE.get(plan.target)
    if not parking:
        return
    table = store.table_for(plan.target)
    moved: list[Write] = [
        w
        for w in plan.spool
        if w.action == "update"
        and w.position not in plan.dropped
        and any(c in w.values for c in parking)
    ]
    for w in moved:
        values = {
            c: (p.format(id=w.record_id) if p else None)
            for c, p in parking.items()
            if c in w.values
        }
        conn.execute(update(table).where(table.c.id == w.record_id).values(**values))
