"""Web sessions in the store. Only a SHA-256 hash of a session id is kept: the id is 32
random bytes, so a fast hash is enough, and a copy of the table signs no one in."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, or_, select, update

from pbx_connector.store.tables import web_sessions


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


def insert_session(
    conn: Connection, *, session_id: str, username: str, csrf_token: str, now: datetime
) -> None:
    conn.execute(
        insert(web_sessions).values(
            session_hash=session_hash(session_id),
            username=username,
            csrf_token=csrf_token,
            created_at=now,
            last_seen_at=now,
        )
    )


def find_session(conn: Connection, session_id: str) -> Any | None:
    return conn.execute(
        select(web_sessions).where(web_sessions.c.session_hash == session_hash(session_id))
    ).first()


def touch_session(conn: Connection, row_id: int, now: datetime) -> None:
    conn.execute(update(web_sessions).where(web_sessions.c.id == row_id).values(last_seen_at=now))


def delete_session(conn: Connection, session_id: str) -> int:
    result = conn.execute(
        delete(web_sessions).where(web_sessions.c.session_hash == session_hash(session_id))
    )
    return int(result.rowcount or 0)


def delete_expired(conn: Connection, *, idle_before: datetime, created_before: datetime) -> int:
    """Drop sessions idle since `idle_before` or begun before `created_before`."""
    result = conn.execute(
        delete(web_sessions).where(
            or_(
                web_sessions.c.last_seen_at < idle_before,
                web_sessions.c.created_at < created_before,
            )
        )
    )
    return int(result.rowcount or 0)
