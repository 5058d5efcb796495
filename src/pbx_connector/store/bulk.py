"""Inserting rows without SQLAlchemy's per-row work.

SQLAlchemy prepares every row's parameters in Python (cache keys, coercion, processing),
which costs as much as the database's own work on a large import, and about as much as
a whole LDAP bind for one audit-log row. Here a statement is compiled once per dialect,
table and column list, each column's bind processor (dates, JSON, booleans) is looked up
once, and the driver gets plain tuples or dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, insert


@dataclass(frozen=True)
class _Prepared:
    sql: str
    #: For each driver parameter: the index of its column in the caller's column list.
    order: tuple[int, ...]
    #: Bind parameter names, for drivers that take a dict (None: positional).
    names: tuple[str, ...] | None
    procs: tuple[Callable[[Any], Any] | None, ...]


_prepared: dict[tuple[str, str, tuple[str, ...]], _Prepared | None] = {}


def _prepare(conn: Connection, table: Table, columns: tuple[str, ...]) -> _Prepared | None:
    key = (conn.dialect.name, table.name, columns)
    if key in _prepared:
        return _prepared[key]
    dialect = conn.dialect
    compiled = insert(table).compile(
        dialect=dialect, column_keys=list(columns), for_executemany=True
    )
    prepared: _Prepared | None = None
    if set(compiled.binds) == set(columns):  # else a column default is filled in: fall back
        procs = tuple(
            table.c[n].type.dialect_impl(dialect).bind_processor(dialect) for n in columns
        )
        if compiled.positional:
            order = tuple(columns.index(k) for k in compiled.positiontup or ())
            prepared = _Prepared(str(compiled), order, None, procs)
        else:
            names = tuple(compiled.binds)
            prepared = _Prepared(
                str(compiled), tuple(columns.index(b) for b in names), names, procs
            )
    _prepared[key] = prepared
    return prepared


def _processed(proc: Callable[[Any], Any], values: list[Any]) -> list[Any]:
    """Bind-process a column; a value repeated from the row before (a run's timestamp in
    every row) is processed once."""
    out: list[Any] = []
    last: Any = _processed
    done: Any = None
    for value in values:
        if value is not last:
            last, done = value, proc(value)
        out.append(done)
    return out


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows that all have the same columns (others go through SQLAlchemy)."""
    if not rows:
        return
    columns = tuple(rows[0])
    prepared = None
    if all(len(r) == len(columns) for r in rows):
        prepared = _prepare(conn, table, columns)
    if prepared is None:
        conn.execute(insert(table), list(rows))
        return
    plain = [
        [r[n] for r in rows] if p is None else _processed(p, [r[n] for r in rows])
        for n, p in zip(columns, prepared.procs, strict=True)
    ]
    if prepared.names is None:
        params: list[Any] = list(zip(*(plain[i] for i in prepared.order), strict=True))
    else:
        pairs = list(zip(prepared.names, prepared.order, strict=True))
        params = [{k: plain[i][j] for k, i in pairs} for j in range(len(rows))]
    if len(params) == 1:
        conn.exec_driver_sql(prepared.sql, params[0])
    else:
        conn.exec_driver_sql(prepared.sql, params)
