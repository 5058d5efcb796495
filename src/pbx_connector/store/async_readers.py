"""Reads of a PostgreSQL store on `serve`'s event loop, for the questions a PBX asks on
every call (a caller's name).

Every read of a PostgreSQL store is a round trip. Made in a thread (as every other read
of the core is), a lookup hopped to the thread and back and took the interpreter lock
back several times behind the busy event loop: 570 µs of serve's CPU a lookup against
the constant's 67, and a p99 of 14 ms at 16 concurrent requests. Here the lookup's
statements go over psycopg's own asyncio connections instead, so that the event loop
serves the other requests while a round trip is under way, with no thread at all.

The connections are opened when first needed, read in autocommit (each statement sees
what was committed before it: a sync's changes are seen by the next lookup), and kept
for the event loop that opened them; at most `size` at once, further reads wait for one.
A connection that fails is closed and not used again, and the failure is a `StoreError`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy import Engine

from pbx_connector.errors import StoreError
from pbx_connector.store.db import postgres_options

#: Connections per worker process: a lookup holds one for one or two round trips.
SIZE = 4


class AsyncReaders:
    """psycopg `AsyncConnection`s to one PostgreSQL store, for one event loop at a time
    (a new loop, as a test's client starts, gets new connections)."""

    def __init__(
        self, conninfo: str, where: str, size: int = SIZE, options: dict[str, str] | None = None
    ) -> None:
        # With libpq's settings besides the URL's (`store.db.postgres_options`).
        self._conninfo = make_conninfo(conninfo, **(options or {}))
        self._where = where
        self._size = size
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._free: asyncio.Semaphore | None = None

    def _for_this_loop(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._free is None:
            # Connections of another loop cannot be used (nor closed) from this one.
            self._loop, self._idle, self._free = loop, [], asyncio.Semaphore(self._size)
        return self._free

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with self._for_this_loop():
            conn = self._idle.pop() if self._idle else None
            try:
                if conn is None:
                    conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
                yield conn
            except psycopg.Error as exc:
                if conn is not None:
                    await _close(conn)
                raise self._error(exc, connecting=conn is None) from None
            except BaseException:
                if conn is not None:
                    await _close(conn)
                raise
            else:
                self._idle.append(conn)

    async def rows(self, sql: str, params: dict[str, Any]) -> list[Sequence[Any]]:
        """The rows of one statement (`%(name)s` parameters)."""
        async with self._connection() as conn:
            cursor = await conn.execute(sql, params)
            return list(await cursor.fetchall())

    async def close(self) -> None:
        """Close the idle connections of the running loop (at shutdown)."""
        idle, self._idle = self._idle, []
        if self._loop is asyncio.get_running_loop():
            for conn in idle:
                await _close(conn)

    def _error(self, exc: psycopg.Error, *, connecting: bool = False) -> StoreError:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if connecting:
            return StoreError(f"cannot connect to {self._where}: {text}")
        if isinstance(exc, psycopg.OperationalError):
            return StoreError(f"lost the connection to {self._where}: {text}")
        return StoreError(f"{self._where}: database error: {text}")


async def _close(conn: psycopg.AsyncConnection[Any]) -> None:
    with contextlib.suppress(Exception):
        await conn.close()


def async_readers(engine: Engine, where: str) -> AsyncReaders | None:
    """`AsyncReaders` of a PostgreSQL store (psycopg); None for SQLite, whose reads on the
    event loop are `store.db.NoWaitReaders`."""
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg":
        return None
    url = engine.url.set(drivername="postgresql")
    options = postgres_options(url.query)
    return AsyncReaders(url.render_as_string(hide_password=False), where, options=options)
