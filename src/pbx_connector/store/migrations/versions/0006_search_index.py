"""records get a folded search text and a trigram index over it

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pbx_connector.store.search import create_search_index, refresh_search_text

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TABLES = ("users", "phonebook", "speeddials")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("search_text", sa.Text(), nullable=False, server_default="")
            )
    conn = op.get_bind()
    for table in _TABLES:
        # The table as it is at this revision, not as later ones will have it.
        reflected = sa.Table(table, sa.MetaData(), autoload_with=conn)
        ids = [r[0] for r in conn.execute(sa.select(reflected.c.id))]
        refresh_search_text(conn, table, ids, reflected)
        create_search_index(conn, table)


def downgrade() -> None:
    conn = op.get_bind()
    for table in _TABLES:
        if conn.dialect.name == "sqlite":
            for trigger in ("ai", "ad", "au"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_search_{trigger}")
            op.execute(f"DROP TABLE IF EXISTS {table}_search")
        else:
            op.execute(f"DROP INDEX IF EXISTS ix_{table}_search_trgm")
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("search_text")
