"""Run records and the per-profile run lock."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from pbx_connector.errors import NotFoundError, RunLocked
from pbx_connector.store.tables import run_locks, runs

RUNNING = "running"


def start_run(
    conn: Connection, profile_id: int, profile_name: str, *, dry_run: bool, trigger: str
) -> int:
    result = conn.execute(
        insert(runs).values(
            profile_id=profile_id,
            profile_name=profile_name,
            trigger=trigger,
            dry_run=dry_run,
            status=RUNNING,
            message="",
            counts={},
            errors=[],
            warnings=[],
            changes=[],
            started_at=datetime.now(UTC),
        )
    )
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


def finish_run(conn: Connection, run_id: int, report: dict[str, Any]) -> None:
    conn.execute(
        update(runs)
        .where(runs.c.id == run_id)
        .values(
            status=report["status"],
            message=report["message"],
            counts=report["counts"],
            errors=report["errors"],
            warnings=report["warnings"],
            changes=report["changes"],
            finished_at=datetime.now(UTC),
        )
    )


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat(timespec="seconds")


def _report(row: Any) -> dict[str, Any]:
    m = row._mapping
    return {
        "id": m["id"],
        "profile": m["profile_name"],
        "trigger": m["trigger"],
        "status": m["status"],
        "dry_run": bool(m["dry_run"]),
        "message": m["message"],
        "counts": dict(m["counts"]),
        "errors": list(m["errors"]),
        "warnings": list(m["warnings"]),
        "changes": list(m["changes"]),
        "started": _iso(m["started_at"]),
        "finished": _iso(m["finished_at"]),
    }


def get_run(conn: Connection, run_id: int) -> dict[str, Any]:
    row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
    if row is None:
        raise NotFoundError(f"no run with id {run_id}")
    return _report(row)


def list_runs(
    conn: Connection, profile_name: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    query = select(runs).order_by(runs.c.id.desc()).limit(limit)
    if profile_name is not None:
        query = query.where(runs.c.profile_name == profile_name)
    return [_report(r) for r in conn.execute(query)]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def acquire_lock(engine: Engine, profile_id: int, profile_name: str, run_id: int) -> None:
    """Take the profile's run lock, or raise RunLocked. A lock left by a process of this
    host that no longer exists (a crash, a kill -9) is taken over."""
    host = socket.gethostname()
    values = {
        "profile_id": profile_id,
        "run_id": run_id,
        "host": host,
        "pid": os.getpid(),
        "acquired_at": datetime.now(UTC),
    }
    for _ in range(2):
        try:
            with engine.begin() as conn:
                conn.execute(insert(run_locks).values(**values))
            return
        except IntegrityError:
            with engine.begin() as conn:
                held = conn.execute(
                    select(run_locks).where(run_locks.c.profile_id == profile_id)
                ).first()
                if held is None:
                    continue
                if held.host == host and not _pid_alive(held.pid):
                    conn.execute(
                        delete(run_locks).where(
                            (run_locks.c.profile_id == profile_id)
                            & (run_locks.c.run_id == held.run_id)
                        )
                    )
                    conn.execute(
                        update(runs)
                        .where((runs.c.id == held.run_id) & (runs.c.status == RUNNING))
                        .values(
                            status="failed",
                            message="the process running it ended",
                            finished_at=datetime.now(UTC),
                        )
                    )
                    continue
                raise RunLocked(
                    f"profile {profile_name!r} is already running (run {held.run_id}, "
                    f"process {held.pid} on {held.host}, since {_iso(held.acquired_at)}); "
                    "wait for it to finish"
                ) from None
    raise RunLocked(f"profile {profile_name!r} is already running")


def release_lock(engine: Engine, profile_id: int, run_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            delete(run_locks).where(
                (run_locks.c.profile_id == profile_id) & (run_locks.c.run_id == run_id)
            )
        )
