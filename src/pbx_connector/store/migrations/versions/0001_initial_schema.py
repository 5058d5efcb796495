"""initial schema

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.Text(), nullable=True),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("prefilter", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profiles")),
        sa.UniqueConstraint("name", name=op.f("uq_profiles_name")),
    )
    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_settings")),
    )
    op.create_table(
        "phonebook",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("displayname", sa.String(length=80), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=False),
        sa.Column("phone_e164", sa.String(length=20), nullable=True),
        sa.Column("givenname", sa.String(length=255), nullable=False),
        sa.Column("surname", sa.String(length=255), nullable=False),
        sa.Column("organisation", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("mobile", sa.String(length=40), nullable=False),
        sa.Column("mobile_e164", sa.String(length=20), nullable=True),
        sa.Column("homephone", sa.String(length=40), nullable=False),
        sa.Column("homephone_e164", sa.String(length=20), nullable=True),
        sa.Column("fax", sa.String(length=40), nullable=False),
        sa.Column("fax_e164", sa.String(length=20), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("homepage", sa.Text(), nullable=False),
        sa.Column("customernumber", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("origin_profile_id", sa.Integer(), nullable=True),
        sa.Column("origin_key", sa.String(length=512), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["origin_profile_id"],
            ["profiles.id"],
            name=op.f("fk_phonebook_origin_profile_id_profiles"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phonebook")),
        sa.UniqueConstraint(
            "origin_profile_id",
            "origin_key",
            name=op.f("uq_phonebook_origin_profile_id_origin_key"),
        ),
    )
    with op.batch_alter_table("phonebook", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_phonebook_fax_e164"), ["fax_e164"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_phonebook_homephone_e164"), ["homephone_e164"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_phonebook_mobile_e164"), ["mobile_e164"], unique=False)
        batch_op.create_index("ix_phonebook_owner", ["owner"], unique=False)
        batch_op.create_index(batch_op.f("ix_phonebook_phone_e164"), ["phone_e164"], unique=False)

    op.create_table(
        "run_locks",
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["profiles.id"],
            name=op.f("fk_run_locks_profile_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("profile_id", name=op.f("pk_run_locks")),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=True),
        sa.Column("profile_name", sa.String(length=100), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["profiles.id"],
            name=op.f("fk_runs_profile_id_profiles"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index("ix_runs_profile_id", ["profile_id"], unique=False)

    op.create_table(
        "speeddials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("number_e164", sa.String(length=20), nullable=True),
        sa.Column("displayname", sa.String(length=80), nullable=False),
        sa.Column("origin_profile_id", sa.Integer(), nullable=True),
        sa.Column("origin_key", sa.String(length=512), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["origin_profile_id"],
            ["profiles.id"],
            name=op.f("fk_speeddials_origin_profile_id_profiles"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_speeddials")),
        sa.UniqueConstraint("code", name=op.f("uq_speeddials_code")),
        sa.UniqueConstraint(
            "origin_profile_id",
            "origin_key",
            name=op.f("uq_speeddials_origin_profile_id_origin_key"),
        ),
    )
    with op.batch_alter_table("speeddials", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_speeddials_number_e164"), ["number_e164"], unique=False
        )

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("displayname", sa.String(length=80), nullable=False),
        sa.Column("givenname", sa.String(length=255), nullable=False),
        sa.Column("surname", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("extension", sa.String(length=20), nullable=True),
        sa.Column("mobile", sa.String(length=40), nullable=False),
        sa.Column("mobile_e164", sa.String(length=20), nullable=True),
        sa.Column("homephone", sa.String(length=40), nullable=False),
        sa.Column("homephone_e164", sa.String(length=20), nullable=True),
        sa.Column("fax", sa.String(length=40), nullable=False),
        sa.Column("fax_e164", sa.String(length=20), nullable=True),
        sa.Column("organisation", sa.String(length=255), nullable=False),
        sa.Column("job", sa.String(length=255), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("pin_hash", sa.String(length=255), nullable=True),
        sa.Column("auth", sa.String(length=16), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        sa.Column("origin_profile_id", sa.Integer(), nullable=True),
        sa.Column("origin_key", sa.String(length=512), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["origin_profile_id"],
            ["profiles.id"],
            name=op.f("fk_users_origin_profile_id_profiles"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("extension", name=op.f("uq_users_extension")),
        sa.UniqueConstraint(
            "origin_profile_id", "origin_key", name=op.f("uq_users_origin_profile_id_origin_key")
        ),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_fax_e164"), ["fax_e164"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_users_homephone_e164"), ["homephone_e164"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_users_mobile_e164"), ["mobile_e164"], unique=False)
    _create_admin()


def _create_admin() -> None:
    """The built-in admin account: made here, so it exists before anything can import."""
    text_columns = (
        "username",
        "displayname",
        "givenname",
        "surname",
        "email",
        "mobile",
        "homephone",
        "fax",
        "organisation",
        "job",
        "auth",
    )
    users = sa.table(
        "users",
        *(sa.column(c, sa.String) for c in text_columns),
        sa.column("roles", sa.JSON),
        sa.column("enabled", sa.Boolean),
        sa.column("builtin", sa.Boolean),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    values: dict[str, object] = dict.fromkeys(text_columns, "")
    values.update(
        username="admin",
        displayname="Administrator",
        auth="internal",
        roles=["admin"],
        enabled=True,
        builtin=True,
        created_at=now,
        updated_at=now,
    )
    op.execute(users.insert().values(**values))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_mobile_e164"))
        batch_op.drop_index(batch_op.f("ix_users_homephone_e164"))
        batch_op.drop_index(batch_op.f("ix_users_fax_e164"))

    op.drop_table("users")
    with op.batch_alter_table("speeddials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_speeddials_number_e164"))

    op.drop_table("speeddials")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_profile_id")

    op.drop_table("runs")
    op.drop_table("run_locks")
    with op.batch_alter_table("phonebook", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_phonebook_phone_e164"))
        batch_op.drop_index("ix_phonebook_owner")
        batch_op.drop_index(batch_op.f("ix_phonebook_mobile_e164"))
        batch_op.drop_index(batch_op.f("ix_phonebook_homephone_e164"))
        batch_op.drop_index(batch_op.f("ix_phonebook_fax_e164"))

    op.drop_table("phonebook")
    op.drop_table("settings")
    op.drop_table("profiles")
