"""Profiles in the store. Secrets are encrypted here and nowhere else."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from pbx_connector.errors import ConfigError, NotFoundError, UsageError
from pbx_connector.store import secrets as secret_box
from pbx_connector.store.tables import RECORD_TABLES, profiles
from pbx_connector.store.timestamps import iso


@dataclass
class Profile:
    name: str
    template: str
    target: str
    source: str
    mode: str
    settings: dict[str, str]
    variables: dict[str, str]
    prefilter: str = ""
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    #: The stored secrets cannot be decrypted (the instance key was lost or changed):
    #: they are kept as they are until set again, and a run fails until then.
    secrets_unreadable: bool = False
    id: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def public_dict(self) -> dict[str, Any]:
        """Everything but secret values (their names are shown as set)."""
        return {
            "id": self.id,
            "name": self.name,
            "template": self.template,
            "target": self.target,
            "source": self.source,
            "mode": self.mode,
            "settings": dict(self.settings),
            "secrets_set": sorted(self.secrets),
            "secrets_unreadable": self.secrets_unreadable,
            "prefilter": self.prefilter,
            "variables": dict(self.variables),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


def _from_row(row: Any) -> Profile:
    try:
        secrets, unreadable = secret_box.decrypt_json(row.secrets), False
    except ConfigError:
        secrets, unreadable = {}, True
    return Profile(
        id=row.id,
        name=row.name,
        template=row.template,
        target=row.target,
        source=row.source,
        mode=row.mode,
        settings=dict(row.settings),
        variables=dict(row.variables),
        prefilter=row.prefilter,
        secrets=secrets,
        secrets_unreadable=unreadable,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def get_profile(conn: Connection, name: str) -> Profile:
    row = conn.execute(select(profiles).where(profiles.c.name == name)).first()
    if row is None:
        raise NotFoundError(f"no profile named {name!r}")
    return _from_row(row)


def get_profile_by_id(conn: Connection, profile_id: int) -> Profile:
    row = conn.execute(select(profiles).where(profiles.c.id == profile_id)).first()
    if row is None:
        raise NotFoundError(f"no profile with id {profile_id}")
    return _from_row(row)


def list_profiles(conn: Connection) -> list[Profile]:
    return [_from_row(r) for r in conn.execute(select(profiles).order_by(profiles.c.name))]


def profile_exists(conn: Connection, name: str) -> bool:
    return conn.execute(select(profiles.c.id).where(profiles.c.name == name)).first() is not None


def insert_profile(conn: Connection, p: Profile) -> Profile:
    if profile_exists(conn, p.name):
        raise UsageError(f"a profile named {p.name!r} exists already")
    now = datetime.now(UTC)
    result = conn.execute(
        insert(profiles).values(
            name=p.name,
            template=p.template,
            target=p.target,
            source=p.source,
            mode=p.mode,
            settings=p.settings,
            secrets=secret_box.encrypt_json(p.secrets),
            variables=p.variables,
            prefilter=p.prefilter,
            created_at=now,
            updated_at=now,
        )
    )
    assert result.inserted_primary_key is not None
    return get_profile_by_id(conn, result.inserted_primary_key[0])


def save_profile(conn: Connection, p: Profile) -> Profile:
    assert p.id is not None
    values: dict[str, Any] = {
        "mode": p.mode,
        "settings": p.settings,
        "variables": p.variables,
        "prefilter": p.prefilter,
        "updated_at": datetime.now(UTC),
    }
    # Unreadable secrets stay as they are (the right key may come back) until new ones
    # are set, which replace them.
    if not (p.secrets_unreadable and not p.secrets):
        values["secrets"] = secret_box.encrypt_json(p.secrets)
    conn.execute(update(profiles).where(profiles.c.id == p.id).values(**values))
    return get_profile_by_id(conn, p.id)


def delete_profile(conn: Connection, p: Profile, *, purge: bool) -> int:
    """Delete a profile. Its records stay (as if made by hand) unless `purge`.
    Returns how many records were deleted."""
    assert p.id is not None
    table = RECORD_TABLES[p.target]
    deleted = 0
    if purge:
        result = conn.execute(delete(table).where(table.c.origin_profile_id == p.id))
        deleted = result.rowcount or 0
    else:
        conn.execute(
            update(table)
            .where(table.c.origin_profile_id == p.id)
            .values(origin_profile_id=None, origin_key=None, content_hash=None)
        )
    conn.execute(delete(profiles).where(profiles.c.id == p.id))
    return deleted
