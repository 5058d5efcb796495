"""Scheduled runs: the slot a run of a schedule was for, claimed once per profile

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True))
    # One run per profile and slot, whichever process of the store claims it first;
    # runs not of a schedule (NULL) are not constrained.
    op.create_index(
        "ux_runs_profile_id_scheduled_for",
        "runs",
        ["profile_id", "scheduled_for"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ux_runs_profile_id_scheduled_for", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("scheduled_for")
