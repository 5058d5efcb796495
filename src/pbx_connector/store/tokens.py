"""API tokens in the store: only SHA-256 hashes of the tokens are kept (a token is 32
random bytes, so a fast hash is enough: there is nothing to guess)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from pbx_connector.errors import NotFoundError
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


def find_token(conn: Connection, token: str) -> Any | None:
    return conn.execute(
        select(api_tokens).where(api_tokens.c.token_hash == token_hash(token))
    ).first()


def revoke_token(conn: Connection, token_id: int, now: datetime) -> None:
    get_token(conn, token_id)
    conn.execute(
        update(api_tokens)
        .where((api_tokens.c.id == token_id) & api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def touch_token(conn: Connection, token_id: int, now: datetime) -> None:
    conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=now))


def owner_row(conn: Connection, username: str) -> Any | None:
    """What decides whether a user may hold a token: enabled, built-in, roles."""
    return conn.execute(
        select(users.c.username, users.c.enabled, users.c.builtin, users.c.roles).where(
            users.c.username == username
        )
    ).first()
