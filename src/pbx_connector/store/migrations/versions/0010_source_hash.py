"""source digests: a digest of the source row beside each record's content hash

Revision ID: 0010
Revises: 0009

Records keep NULL until their profile runs again: the first run after this revision maps
every row as before and stores the digest of each, without changing the record
otherwise.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pbx_connector.store.search import create_search_index

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_TABLES = ("users", "phonebook", "speeddials")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("source_hash", sa.String(length=32), nullable=True))


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("source_hash")
        # Dropping a column makes SQLite's batch mode copy the table, without the
        # triggers of its search index.
        create_search_index(op.get_bind(), table)
