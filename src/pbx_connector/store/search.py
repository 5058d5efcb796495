"""The search index of the record tables: a trigram index over each record's folded
`search_text` (see `domain.search`), so that a substring search of a 100,000-entry
phonebook reads the index, not the table.

- SQLite: an FTS5 table with the trigram tokenizer, kept in step with the record table in
  the same transaction as the write: by triggers for updates and deletes, and by
  `index_new` for inserts (a trigger per inserted row made a 100,000-row import three
  times slower; one INSERT … SELECT after the rows costs a third of that). FTS5's LIKE
  uses the trigrams.
- PostgreSQL: a GIN index with pg_trgm's operator class; LIKE uses it.

Neither is in `tables.metadata` (SQLAlchemy cannot describe them); `db check` looks for
them and `db upgrade` makes them again. An SQLite batch migration that recreates a record
table drops its triggers: such a migration must call `create_search_index` again."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Table,
    bindparam,
    column,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy import (
    table as table_clause,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import Join

from pbx_connector.domain.search import search_text
from pbx_connector.domain.targets import TARGETS
from pbx_connector.store.tables import RECORD_TABLES, column_names

_ESCAPE = "\\"


def _fts(table: str) -> str:
    return f"{table}_search"


def _sqlite_ddl(table: str) -> list[str]:
    fts = _fts(table)
    return [
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5(search_text, "
        f"content='{table}', content_rowid='id', tokenize='trigram', detail='none', columnsize=0)",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_ad AFTER DELETE ON {table} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, search_text) "
        f"VALUES ('delete', old.id, old.search_text); END",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_au AFTER UPDATE OF search_text ON {table} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, search_text) "
        f"VALUES ('delete', old.id, old.search_text); "
        f"INSERT INTO {fts}(rowid, search_text) VALUES (new.id, new.search_text); END",
    ]


def _sqlite_objects(table: str) -> list[str]:
    fts = _fts(table)
    return [fts, f"{fts}_ad", f"{fts}_au"]


def _pg_index(table: str) -> str:
    return f"ix_{table}_search_trgm"


def create_search_index(conn: Connection, table: str) -> None:
    """Make the search index of one record table (and fill it from the table)."""
    if conn.dialect.name == "sqlite":
        for statement in _sqlite_ddl(table):
            conn.exec_driver_sql(statement)
        conn.exec_driver_sql(f"INSERT INTO {_fts(table)}({_fts(table)}) VALUES ('rebuild')")
    elif conn.dialect.name == "postgresql":
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        conn.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS {_pg_index(table)} ON {table} "
            "USING gin (search_text gin_trgm_ops)"
        )


def last_id(conn: Connection, table: Table) -> int:
    """The highest id now: records inserted after this call have higher ones."""
    return int(conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one())


def index_new(conn: Connection, table: Table, after_id: int) -> None:
    """Add the records inserted since `last_id` said `after_id` to the search index
    (SQLite; PostgreSQL's index follows by itself)."""
    if conn.dialect.name == "sqlite":
        fts = _fts(table.name)
        conn.exec_driver_sql(
            f"INSERT INTO {fts}(rowid, search_text) "
            f"SELECT id, search_text FROM {table.name} WHERE id > ?",
            (after_id,),
        )


def missing_search_index(conn: Connection) -> list[str]:
    """What `db check` reports of the search indexes: `search index … is missing`."""
    missing: list[str] = []
    for table in RECORD_TABLES:
        if conn.dialect.name == "sqlite":
            names = {
                r[0]
                for r in conn.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE name LIKE ?", (f"{_fts(table)}%",)
                )
            }
            missing += [
                f"search index {name} is missing"
                for name in _sqlite_objects(table)
                if name not in names
            ]
        elif conn.dialect.name == "postgresql":
            found = conn.exec_driver_sql(
                "SELECT 1 FROM pg_indexes WHERE indexname = %(name)s",
                {"name": _pg_index(table)},
            ).first()
            if found is None:
                missing.append(f"search index {_pg_index(table)} is missing")
    return missing


def repair_search_index(conn: Connection) -> None:
    for table in RECORD_TABLES:
        create_search_index(conn, table)


def is_search_object(name: str) -> bool:
    """Whether a table or index name is part of a search index (for schema comparisons
    that know only `tables.metadata`)."""
    return any(name.startswith(_fts(t)) or name == _pg_index(t) for t in RECORD_TABLES)


def matches(conn: Connection, table: Table, terms: Sequence[str]) -> ColumnElement[bool]:
    """Records whose search text holds any of the (folded) terms."""
    if conn.dialect.name == "sqlite":
        # GLOB, not LIKE: FTS5 reads its trigrams for both, but not for a LIKE with an
        # ESCAPE clause, and a term may hold % or _. The text is folded to lower case,
        # so GLOB's case-sensitivity does not matter.
        patterns = ["*" + _glob_escaped(t) + "*" for t in terms]
        fts = _fts(table.name)
        # One SELECT a term, joined by UNION: FTS5 uses its index for one GLOB, not for
        # several joined by OR.
        selects = " UNION ".join(
            f"SELECT rowid FROM {fts} WHERE search_text GLOB :p{i}" for i in range(len(patterns))
        )
        inner = text(selects).bindparams(*(bindparam(f"p{i}", p) for i, p in enumerate(patterns)))
        return table.c.id.in_(inner.columns(column("rowid", Integer)))
    likes = ["%" + _like_escaped(t) + "%" for t in terms]
    return or_(*(table.c.search_text.like(p, escape=_ESCAPE) for p in likes))


class _IndexFirst(Join):
    """A join that SQLite must read left to right (`CROSS JOIN`): the search index
    first, in its row id order, so that a page of 50 stops after 50 matches. Left to
    itself, the planner may start from another index of the record table (the owner's,
    for the global phonebook) and look every record up in the search index."""

    inherit_cache = True


@compiles(_IndexFirst, "sqlite")
def _cross_join(element: _IndexFirst, compiler: Any, **kw: Any) -> str:
    joined: str = compiler.visit_join(element, **kw)
    # The left side is the bare index table: its first " JOIN " is this join's.
    return joined.replace(" JOIN ", " CROSS JOIN ", 1)


@dataclass(frozen=True)
class IndexFirst:
    """How to read a search from the index in record id order (SQLite, one term): select
    from `source`, keep `condition`, order by `row_id`."""

    source: Any
    condition: ColumnElement[bool]
    row_id: ColumnElement[Any]


def index_first(conn: Connection, table: Table, terms: Sequence[str]) -> IndexFirst | None:
    """The search of one term read from the index in id order, or None where that does
    not apply (PostgreSQL, whose planner does this by itself; several terms)."""
    if conn.dialect.name != "sqlite" or len(terms) != 1:
        return None
    fts = table_clause(_fts(table.name), column("rowid", Integer), column("search_text"))
    pattern = "*" + _glob_escaped(terms[0]) + "*"
    return IndexFirst(
        source=_IndexFirst(fts, table, table.c.id == fts.c.rowid),
        condition=fts.c.search_text.op("GLOB")(pattern),
        row_id=fts.c.rowid,
    )


def _glob_escaped(term: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in term)


def _like_escaped(term: str) -> str:
    for special in (_ESCAPE, "%", "_"):
        term = term.replace(special, _ESCAPE + special)
    return term


def refresh_search_text(
    conn: Connection, target: str, ids: Sequence[int], table: Table | None = None
) -> None:
    """Compute the search text of records again from what they hold now (after an update
    that wrote only some of their fields). A migration passes the table as it is at its
    revision: only the columns it has are read."""
    table = RECORD_TABLES[target] if table is None else table
    spec = TARGETS[target]
    columns = [table.c.id, table.c.search_text]
    for f in spec.fields:
        columns += [table.c[c] for c in column_names(f) if not c.endswith("_hash") and c in table.c]
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        changed: list[dict[str, Any]] = []
        for row in conn.execute(select(*columns).where(table.c.id.in_(chunk))):
            m = row._mapping
            e164 = {f.name: m.get(f"{f.name}_e164") for f in spec.fields if f.kind == "phone"}
            new = search_text(spec, dict(m), e164)
            if new != m["search_text"]:
                changed.append({"b_id": m["id"], "b_text": new})
        if changed:
            conn.execute(
                update(table)
                .where(table.c.id == bindparam("b_id"))
                .values(search_text=bindparam("b_text")),
                changed,
            )
