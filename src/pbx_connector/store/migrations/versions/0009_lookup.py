"""caller-name lookup: each looked-up number's digits, last first, indexed

Revision ID: 0009
Revises: 0008

The E.164 columns were indexed from the start; an internal number and the last digits of
a number are found by the new `{field}_rev` columns (see `store.lookup`), filled here
for the records the store holds.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pbx_connector.store.lookup import number_key
from pbx_connector.store.search import create_search_index

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

#: The looked-up fields as of this revision (not as later ones may have them).
_FIELDS: dict[str, tuple[str, ...]] = {
    "users": ("phone", "mobile", "homephone"),
    "phonebook": ("phone", "mobile", "homephone"),
    "speeddials": ("number",),
}
_BATCH = 2000


def upgrade() -> None:
    for table, fields in _FIELDS.items():
        with op.batch_alter_table(table) as batch:
            for field in fields:
                batch.add_column(sa.Column(f"{field}_rev", sa.String(length=40), nullable=True))
    conn = op.get_bind()
    for table, fields in _FIELDS.items():
        _fill(conn, table, fields)
        for field in fields:
            op.create_index(f"ix_{table}_{field}_rev", table, [f"{field}_rev"], unique=False)


def _fill(conn: sa.Connection, name: str, fields: tuple[str, ...]) -> None:
    # The table as it is at this revision.
    table = sa.Table(name, sa.MetaData(), autoload_with=conn)
    columns = [table.c.id]
    for field in fields:
        columns += [table.c[field], table.c[f"{field}_e164"]]
    query = sa.select(*columns).order_by(table.c.id)
    update = (
        sa.update(table)
        .where(table.c.id == sa.bindparam("b_id"))
        .values({f"{f}_rev": sa.bindparam(f"b_{f}") for f in fields})
    )
    last = 0
    while True:
        rows = conn.execute(query.where(table.c.id > last).limit(_BATCH)).all()
        if not rows:
            return
        changed = []
        for row in rows:
            m = row._mapping
            keys = {f"b_{f}": number_key(m[f] or "", m[f"{f}_e164"]) for f in fields}
            if any(keys.values()):
                changed.append({"b_id": m["id"], **keys})
        if changed:
            conn.execute(update, changed)
        last = rows[-1].id


def downgrade() -> None:
    for table, fields in _FIELDS.items():
        for field in fields:
            op.drop_index(f"ix_{table}_{field}_rev", table_name=table)
        with op.batch_alter_table(table) as batch:
            for field in fields:
                batch.drop_column(f"{field}_rev")
        # Dropping a column makes SQLite's batch mode copy the table, without the
        # triggers of its search index.
        create_search_index(op.get_bind(), table)
