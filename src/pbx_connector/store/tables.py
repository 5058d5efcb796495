"""The schema, as SQLAlchemy Core tables. Migrations in `migrations/` create exactly this;
a test compares the two so that they cannot drift apart."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from pbx_connector.domain.targets import TARGETS, FieldSpec, TargetSpec


class Timestamp(TypeDecorator[datetime]):
    """A point in time, written in UTC. SQLite keeps a time as its wall-clock text without
    the zone, and the store reads every time back as UTC (`timestamps.aware`): a time in
    another zone (a schedule's slot in Europe/Berlin) came back an hour off. Converting
    every value bound, written or compared, keeps SQLite's texts in one zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value.astimezone(UTC)
        return value


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

profiles = Table(
    "profiles",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("template", String(64), nullable=False),
    Column("target", String(32), nullable=False),
    Column("source", String(32), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("settings", JSON, nullable=False),
    # Fernet token of a JSON object; never leaves the store in clear.
    Column("secrets", Text, nullable=True),
    Column("variables", JSON, nullable=False),
    Column("prefilter", Text, nullable=False),
    Column("created_at", Timestamp(), nullable=False),
    Column("updated_at", Timestamp(), nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("profile_id", Integer, ForeignKey("profiles.id", ondelete="SET NULL"), nullable=True),
    Column("profile_name", String(100), nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("dry_run", Boolean, nullable=False),
    # Asked to run even if a safety rule would abort it (kept for a queued run).
    Column("force", Boolean, nullable=False, default=False),
    Column("status", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("counts", JSON, nullable=False),
    Column("errors", JSON, nullable=False),
    Column("warnings", JSON, nullable=False),
    Column("changes", JSON, nullable=False),
    Column("started_at", Timestamp(), nullable=False),
    Column("finished_at", Timestamp(), nullable=True),
    # {phase, done, total} while it runs, written with the lease renewal.
    Column("progress", JSON, nullable=True),
    # The slot of the profile's schedule this run is for (trigger "schedule"): unique
    # per profile, so that of several processes of one store only one runs a slot.
    Column("scheduled_for", Timestamp(), nullable=True),
    Index("ix_runs_profile_id", "profile_id"),
    Index("ux_runs_profile_id_scheduled_for", "profile_id", "scheduled_for", unique=True),
)

run_locks = Table(
    "run_locks",
    metadata,
    Column("profile_id", Integer, ForeignKey("profiles.id", ondelete="CASCADE"), primary_key=True),
    Column("run_id", Integer, nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("acquired_at", Timestamp(), nullable=False),
    # A lease: the running process renews it; a lock past it belongs to a process that is
    # gone (on any host) and is taken over.
    Column("expires_at", Timestamp(), nullable=True),
)


def column_names(spec: FieldSpec) -> tuple[str, ...]:
    """The store columns behind one target field."""
    if spec.kind in ("secret", "pin"):
        return (f"{spec.name}_hash",)
    if spec.kind == "phone":
        return (spec.name, f"{spec.name}_e164")
    return (spec.name,)


#: The numbers a caller-name lookup finds a record by, per target, in the order a record's
#: own numbers are tried (see `service.lookup`). A fax number is not a caller's.
LOOKUP_FIELDS: dict[str, tuple[str, ...]] = {
    "users": ("phone", "mobile", "homephone"),
    "phonebook": ("phone", "mobile", "homephone"),
    "speeddials": ("number",),
}


def reversed_column(field: str) -> str:
    """The column of a looked-up number's digits, last digit first (see `store.lookup`):
    the key of a lookup by the last digits, and of an internal number (no E.164 form)."""
    return f"{field}_rev"


def _field_columns(spec: TargetSpec) -> list[Column]:  # type: ignore[type-arg]
    cols: list[Column] = []  # type: ignore[type-arg]
    looked_up = LOOKUP_FIELDS.get(spec.name, ())
    for f in spec.fields:
        if f.kind in ("secret", "pin"):
            cols.append(Column(f"{f.name}_hash", String(255), nullable=True))
        elif f.kind == "roles":
            cols.append(Column(f.name, JSON, nullable=False))
        elif f.kind == "bool":
            cols.append(Column(f.name, Boolean, nullable=False))
        elif f.kind in ("extension", "owner"):
            # NULL, not "", so that the unique index allows many records without one.
            cols.append(Column(f.name, String(f.max_length), nullable=True))
        elif f.kind == "phone":
            cols.append(Column(f.name, String(f.max_length), nullable=False))
            cols.append(Column(f"{f.name}_e164", String(20), nullable=True, index=True))
            if f.name in looked_up:
                cols.append(
                    Column(reversed_column(f.name), String(f.max_length), nullable=True, index=True)
                )
        elif f.max_length > 255:
            cols.append(Column(f.name, Text, nullable=False))
        else:
            cols.append(Column(f.name, String(f.max_length), nullable=False))
    return cols


def _origin_columns() -> list[Column]:  # type: ignore[type-arg]
    return [
        Column(
            "origin_profile_id",
            Integer,
            ForeignKey("profiles.id", ondelete="SET NULL"),
            nullable=True,
        ),
        Column("origin_key", String(512), nullable=True),
        # Keyed hash of the values the profile last wrote; NULL after a hand edit so
        # that the next sync writes the source's values again.
        Column("content_hash", String(64), nullable=True),
        # Keyed digest of the source row the values came from, and of everything that
        # decides what a row maps to (see sync.plan.SourceDigests): a re-sync that meets
        # the same row again leaves the record as it is without mapping it. Written and
        # cleared together with content_hash.
        Column("source_hash", String(32), nullable=True),
        Column("created_at", Timestamp(), nullable=False),
        Column("updated_at", Timestamp(), nullable=False),
        # The folded text the record is found by (domain.search); a trigram index over it
        # is made by store.search, outside this metadata.
        Column("search_text", Text, nullable=False, default=""),
    ]


users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    *_field_columns(TARGETS["users"]),
    Column("builtin", Boolean, nullable=False, default=False),
    *_origin_columns(),
    UniqueConstraint("username"),
    UniqueConstraint("extension"),
    UniqueConstraint("origin_profile_id", "origin_key"),
)

phonebook = Table(
    "phonebook",
    metadata,
    Column("id", Integer, primary_key=True),
    *_field_columns(TARGETS["phonebook"]),
    *_origin_columns(),
    Index("ix_phonebook_owner", "owner"),
    UniqueConstraint("origin_profile_id", "origin_key"),
)

speeddials = Table(
    "speeddials",
    metadata,
    Column("id", Integer, primary_key=True),
    *_field_columns(TARGETS["speeddials"]),
    *_origin_columns(),
    UniqueConstraint("code"),
    UniqueConstraint("origin_profile_id", "origin_key"),
)

RECORD_TABLES: dict[str, Table] = {"users": users, "phonebook": phonebook, "speeddials": speeddials}

#: Every authentication attempt (never the password): the audit log.
auth_attempts = Table(
    "auth_attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", Timestamp(), nullable=False),
    Column("username", String(255), nullable=False),
    Column("method", String(16), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("origin", String(32), nullable=False),
    Index("ix_auth_attempts_username", "username"),
)

#: Consecutive failures per username and the lock they earned.
auth_lockouts = Table(
    "auth_lockouts",
    metadata,
    Column("username", String(255), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("level", Integer, nullable=False),
    Column("locked_until", Timestamp(), nullable=True),
)

#: Bearer tokens of the API: only a hash of each is kept; the token is shown once.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    # The first characters of the token, so that an administrator can tell tokens apart.
    Column("prefix", String(16), nullable=False),
    Column("role", String(16), nullable=False),
    Column("owner", String(64), nullable=False),
    Column("created_at", Timestamp(), nullable=False),
    Column("expires_at", Timestamp(), nullable=True),
    Column("last_used_at", Timestamp(), nullable=True),
    Column("revoked_at", Timestamp(), nullable=True),
)

#: Signed-in sessions of the admin pages: only a hash of each session id is kept (the id
#: lives in the browser's cookie), with the CSRF token its forms must send back.
#: What a source keeps between runs of a profile, by name: a URL's ETag and Last-Modified,
#: an uploaded file's name, size and checksum. Never a secret.
source_state = Table(
    "source_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("profile_id", Integer, ForeignKey("profiles.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("state", JSON, nullable=False),
    Column("updated_at", Timestamp(), nullable=False),
    UniqueConstraint("profile_id", "name"),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("session_hash", String(64), nullable=False, unique=True),
    Column("username", String(255), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", Timestamp(), nullable=False),
    Column("last_seen_at", Timestamp(), nullable=False),
    Index("ix_web_sessions_username", "username"),
)
