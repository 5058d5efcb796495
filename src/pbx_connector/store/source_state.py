"""What a source keeps between runs of a profile (see `tables.source_state`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from pbx_connector.store.tables import source_state


def get_state(conn: Connection, profile_id: int, name: str) -> dict[str, Any] | None:
    """The state `name` of a profile, or None when there is none."""
    row = conn.execute(
        select(source_state.c.state).where(
            (source_state.c.profile_id == profile_id) & (source_state.c.name == name)
        )
    ).first()
    return None if row is None else dict(row.state)


def set_state(conn: Connection, profile_id: int, name: str, state: dict[str, Any]) -> None:
    """Keep `state` as the profile's state `name` (replacing what was there)."""
    now = datetime.now(UTC)
    done = conn.execute(
        update(source_state)
        .where((source_state.c.profile_id == profile_id) & (source_state.c.name == name))
        .values(state=state, updated_at=now)
    )
    if done.rowcount == 0:
        conn.execute(
            insert(source_state).values(
                profile_id=profile_id, name=name, state=state, updated_at=now
            )
        )


def clear_state(conn: Connection, profile_id: int, name: str) -> None:
    conn.execute(
        delete(source_state).where(
            (source_state.c.profile_id == profile_id) & (source_state.c.name == name)
        )
    )
