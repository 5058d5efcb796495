"""API tokens in the store: only SHA-256 hashes of the tokens are kept (a token is 32
random bytes, so a fast hash is enough: there is nothing to guess)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, insert, select, update
from sqlalchemy.exc import OperationalError

from pbx_connector.errors import NotFoundError
from pbx_connector.store.db import busy_timeout_ms
from pbx_connector.store.tables import api_tokens, users


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def insert_token(
    conn: Connection,
    *,
    name: str,
    token: str,
    role: str,
    owner: str,
    now: datetime,
    expires_at: datetime | None,
) -> int:
    result = conn.execute(
        insert(api_tokens).values(
            name=name,
            token_hash=token_hash(token),
            prefix=token[:12],
            role=role,
            owner=owner,
            created_at=now,
            expires_at=expires_at,
        )
    )
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


def list_tokens(conn: Connection) -> list[Any]:
    return list(conn.execute(select(api_tokens).order_by(api_tokens.c.id)))


def get_token(conn: Connection, token_id: int) -> Any:
    row = conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).first()
    if row is None:
        raise NotFoundError(f"no API token with id {token_id}")
    return row


#: Built once: constructing a statement costs more than SQLite takes to run it, and a
#: token is checked on every request.
_FIND_TOKEN = select(api_tokens).where(api_tokens.c.token_hash == bindparam("hash"))
_OWNER_ROW = select(users.c.username, users.c.enabled, users.c.builtin, users.c.roles).where(
    users.c.username == bindparam("username")
)


def find_token(conn: Connection, token: str) -> Any | None:
    return conn.execute(_FIND_TOKEN, {"hash": token_hash(token)}).first()


def revoke_token(conn: Connection, token_id: int, now: datetime) -> None:
    get_token(conn, token_id)
    conn.execute(
        update(api_tokens)
        .where((api_tokens.c.id == token_id) & api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def touch_token(conn: Connection, token_id: int, now: datetime) -> None:
    conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=now))


#: A token's last use is written at most this often: the list shows it to the minute,
#: and a write per request would make every request wait behind a running sync.
TOUCH_EVERY = timedelta(minutes=1)
#: How long recording a last use may wait for another writer (SQLite) before giving up.
_TOUCH_WAIT_MS = 20


def record_use(engine: Engine, token_id: int, last_used: datetime | None, now: datetime) -> bool:
    """Record a token's use if the recorded one is older than `TOUCH_EVERY`; whether it
    committed a write. Best effort: when a sync holds SQLite's write lock, the request
    goes on and a later one records the use."""
    if last_used is not None and now - last_used < TOUCH_EVERY:
        return False
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql(f"PRAGMA busy_timeout={_TOUCH_WAIT_MS}")
            try:
                touch_token(conn, token_id, now)
            finally:
                if conn.dialect.name == "sqlite":
                    conn.exec_driver_sql(f"PRAGMA busy_timeout={busy_timeout_ms()}")
    except OperationalError:
        return False
    return True


def user_numbers(conn: Connection, username: str) -> Any | None:
    """The id and extension of a user: the other names a phone may give its own user by."""
    return conn.execute(
        select(users.c.id, users.c.extension).where(users.c.username == username)
    ).first()


def owner_row(conn: Connection, username: str) -> Any | None:
    """What decides whether a user may hold a token: enabled, built-in, roles."""
    return conn.execute(_OWNER_ROW, {"username": username}).first()
