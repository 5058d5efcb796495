"""Run records and the per-profile run lock.

The lock is a row in `run_locks`, taken in the same transaction that records the run, and
held as a lease: the running process renews `expires_at` while it works (see
`LeaseKeeper`). A lock whose lease ran out belongs to a process that is gone — on this
host or another — and the next run takes it over; a lock of a process of this host that
no longer exists is taken over at once. The lock is released in the transaction that
records the run's outcome (and, for an applied run, writes its changes), so a run is
never `running` after its outcome is known.

A run that is `running` without a live lock was interrupted (kill -9, power loss): it is
shown as `interrupted`, and its changes were not committed, because they commit together
with its outcome.
"""

from __future__ import annotations

import os
import socket
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from pbx_connector.errors import NotFoundError, RunError, RunLocked
from pbx_connector.store.tables import run_locks, runs
from pbx_connector.store.timestamps import aware, iso

#: The largest id the stores hold (a signed 64-bit integer).
MAX_ID = 2**63 - 1
QUEUED = "queued"
RUNNING = "running"
INTERRUPTED = "interrupted"
#: A scheduled run not started because a run of its profile was still going.
SKIPPED = "skipped"
SCHEDULE = "schedule"
#: How long a lock stays valid without renewal. The running process renews it every
#: third of this; a process that is gone stops renewing, and its lock expires.
LEASE = timedelta(seconds=60)
_INTERRUPTED_MESSAGE = (
    "interrupted, nothing changed: the process running it ended before the run finished"
)


def _now() -> datetime:
    return datetime.now(UTC)


def pid_alive(pid: int) -> bool:
    """Whether a process of this host with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def lock_is_live(held: Any, now: datetime | None = None) -> bool:
    """Whether the process holding a lock may still be working."""
    now = now or _now()
    if held.host == socket.gethostname() and not pid_alive(held.pid):
        return False
    expires = aware(held.expires_at) or (aware(held.acquired_at) or now) + LEASE
    return expires > now


def _insert_run(
    conn: Connection,
    profile_id: int,
    profile_name: str,
    *,
    dry_run: bool,
    trigger: str,
    status: str = RUNNING,
    message: str = "",
    force: bool = False,
    scheduled_for: datetime | None = None,
) -> int:
    now = _now()
    result = conn.execute(
        insert(runs).values(
            profile_id=profile_id,
            scheduled_for=scheduled_for,
            profile_name=profile_name,
            trigger=trigger,
            dry_run=dry_run,
            force=force,
            status=status,
            message=message,
            counts={},
            # A skipped run says why in its message; nothing went wrong.
            errors=[{"line": None, "field": None, "message": message}]
            if message and status != SKIPPED
            else [],
            warnings=[],
            changes=[],
            started_at=now,
            finished_at=None if status == RUNNING else now,
        )
    )
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


def _mark_interrupted(conn: Connection, run_id: int, message: str) -> None:
    conn.execute(
        update(runs)
        .where((runs.c.id == run_id) & (runs.c.status == RUNNING))
        .values(status=INTERRUPTED, message=message, finished_at=_now())
    )


def queue_run(
    conn: Connection,
    profile_id: int,
    profile_name: str,
    *,
    dry_run: bool,
    force: bool,
    trigger: str,
) -> int:
    """Record a run that is asked for but not started: status `queued`."""
    return _insert_run(
        conn,
        profile_id,
        profile_name,
        dry_run=dry_run,
        trigger=trigger,
        status=QUEUED,
        force=force,
    )


def live_lock(conn: Connection, profile_id: int) -> Any | None:
    """The lock of a profile if a live run holds it (a stale one is not)."""
    held = conn.execute(select(run_locks).where(run_locks.c.profile_id == profile_id)).first()
    return held if held is not None and lock_is_live(held) else None


def start_run(engine: Engine, run_id: int) -> None:
    """Take the lock of a queued run's profile and mark it running, in one transaction.
    A stale lock is taken over (its run is marked interrupted). When another live run
    holds the lock, this run is recorded as failed and RunLocked raised."""
    with engine.connect() as conn:
        row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
    if row is None:
        raise NotFoundError(f"no run with id {run_id}")
    if row.status != QUEUED:
        raise RunError(f"run {run_id} is {row.status}, not queued")
    profile_id, profile_name = row.profile_id, row.profile_name
    # A run of a schedule that finds its profile busy did not fail: it was not needed.
    busy = SKIPPED if row.trigger == SCHEDULE else "failed"
    for _ in range(3):
        try:
            with engine.begin() as conn:
                now = _now()
                started = conn.execute(
                    update(runs)
                    .where((runs.c.id == run_id) & (runs.c.status == QUEUED))
                    .values(status=RUNNING, started_at=now)
                )
                if started.rowcount != 1:
                    raise RunError(f"run {run_id} was started by another process")
                _insert_lock(conn, profile_id, run_id, now)
            return
        except IntegrityError:
            pass
        with engine.begin() as conn:
            held = _live_holder_after_takeover(conn, profile_id)
            if held is None:
                continue
            message = _running_message(profile_name, held)
            if busy == SKIPPED:
                message = f"skipped: {message}"
            conn.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(
                    status=busy,
                    message=message,
                    errors=[]
                    if busy == SKIPPED
                    else [{"line": None, "field": None, "message": message}],
                    finished_at=_now(),
                )
            )
        raise RunLocked(message, run_id=run_id, running_run_id=held.run_id)
    raise RunLocked(f"profile {profile_name!r} is already running", run_id=run_id)


def _insert_lock(conn: Connection, profile_id: int, run_id: int, now: datetime) -> None:
    """Take a profile's lock for a run of this process, leased for `LEASE`; raises
    IntegrityError when another run holds it."""
    conn.execute(
        insert(run_locks).values(
            profile_id=profile_id,
            run_id=run_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            acquired_at=now,
            expires_at=now + LEASE,
        )
    )


def _live_holder_after_takeover(conn: Connection, profile_id: int) -> Any | None:
    """The lock of a live run of the profile; a stale one is removed (its run marked
    interrupted) and None returned, so that the caller tries again."""
    held = conn.execute(select(run_locks).where(run_locks.c.profile_id == profile_id)).first()
    if held is None:
        return None
    if not lock_is_live(held):
        conn.execute(
            delete(run_locks).where(
                (run_locks.c.profile_id == profile_id) & (run_locks.c.run_id == held.run_id)
            )
        )
        _mark_interrupted(conn, held.run_id, _INTERRUPTED_MESSAGE)
        return None
    return held


def _running_message(profile_name: str, held: Any) -> str:
    return (
        f"profile {profile_name!r} is already running (run {held.run_id}, "
        f"process {held.pid} on {held.host}, since {iso(held.acquired_at)})"
    )


def begin_run(
    engine: Engine,
    profile_id: int,
    profile_name: str,
    *,
    dry_run: bool,
    trigger: str,
    force: bool = False,
) -> int:
    """Record a run as running and take its profile's lock, in one transaction: a
    process killed at any moment leaves no run that is neither refused nor shown as
    interrupted. A stale lock is taken over; when a live run holds the lock, this run is
    recorded as failed and RunLocked raised."""
    for _ in range(3):
        try:
            with engine.begin() as conn:
                run_id = _insert_run(
                    conn, profile_id, profile_name, dry_run=dry_run, trigger=trigger, force=force
                )
                now = _now()
                _insert_lock(conn, profile_id, run_id, now)
            return run_id
        except IntegrityError:
            pass
        with engine.begin() as conn:
            held = _live_holder_after_takeover(conn, profile_id)
            if held is None:
                continue
            message = _running_message(profile_name, held)
            refused = _insert_run(
                conn,
                profile_id,
                profile_name,
                dry_run=dry_run,
                trigger=trigger,
                status="failed",
                message=message,
                force=force,
            )
        raise RunLocked(message, run_id=refused, running_run_id=held.run_id)
    raise RunLocked(f"profile {profile_name!r} is already running")


def end_run(
    conn: Connection,
    profile_id: int,
    run_id: int,
    report: dict[str, Any],
    *,
    require_lock: bool = True,
) -> None:
    """Record a run's outcome and release its lock, in the caller's transaction (the one
    that writes the run's changes, if any). Raises RunError when the lock is no longer
    over): then nothing of this transaction may commit. A run that failed records its
    outcome with `require_lock=False`."""
    released = conn.execute(
        delete(run_locks).where(
            (run_locks.c.profile_id == profile_id) & (run_locks.c.run_id == run_id)
        )
    )
    if require_lock and released.rowcount != 1:
        raise RunError(
            "the run lost its lock (it was unlocked by hand, or its lease ran out while "
            "the process was stopped), so its changes were not written"
        )
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
            progress=None,
            finished_at=_now(),
        )
    )


def abandon(engine: Engine, run_id: int, message: str) -> None:
    """Mark a queued or running run interrupted (Ctrl-C, a signal) and release its lock.
    A run whose outcome is already recorded is left as it is. Best effort: an
    unreachable store lets the lock expire by itself."""
    try:
        with engine.begin() as conn:
            conn.execute(
                update(runs)
                .where((runs.c.id == run_id) & runs.c.status.in_((QUEUED, RUNNING)))
                .values(status=INTERRUPTED, message=message, finished_at=_now())
            )
            conn.execute(delete(run_locks).where(run_locks.c.run_id == run_id))
    except SQLAlchemyError:
        pass


def unlock(engine: Engine, profile_id: int, profile_name: str) -> int:
    """Release a profile's lock by hand; its run is marked interrupted. Returns the run id."""
    with engine.begin() as conn:
        held = conn.execute(select(run_locks).where(run_locks.c.profile_id == profile_id)).first()
        if held is None:
            raise NotFoundError(f"profile {profile_name!r} is not locked")
        conn.execute(delete(run_locks).where(run_locks.c.profile_id == profile_id))
        _mark_interrupted(
            conn, held.run_id, "interrupted: its lock was released by the administrator"
        )
        return int(held.run_id)


#: How often a running run writes its progress (and renews its lease, when due).
PROGRESS_EVERY = 2.0


class LeaseKeeper:
    """Renews a run's lock while the run works, from a daemon thread, and writes the
    run's progress for other processes to show. A run of a process that is killed or
    frozen stops renewing, so its lock expires on every host."""

    def __init__(self, engine: Engine, profile_id: int, run_id: int) -> None:
        self._engine = engine
        self._run_id = run_id
        self._where = (run_locks.c.profile_id == profile_id) & (run_locks.c.run_id == run_id)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="run-lease", daemon=True)
        self._progress: dict[str, Any] | None = None
        self._written: dict[str, Any] | None = None

    def report(self, phase: str, done: int, total: int | None) -> None:
        """The run's progress now; written within `PROGRESS_EVERY` seconds."""
        self._progress = {"phase": phase, "done": done, "total": total}

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        renew_every = LEASE.total_seconds() / 3
        tick = min(PROGRESS_EVERY, renew_every)
        renewed_at = 0.0
        elapsed = 0.0
        while not self._stop.wait(tick):
            elapsed += tick
            progress = self._progress
            try:
                if progress is not None and progress != self._written:
                    with self._engine.begin() as conn:
                        conn.execute(
                            update(runs)
                            .where((runs.c.id == self._run_id) & (runs.c.status == RUNNING))
                            .values(progress=progress)
                        )
                    self._written = progress
                if elapsed - renewed_at >= renew_every:
                    with self._engine.begin() as conn:
                        renewed = conn.execute(
                            update(run_locks).where(self._where).values(expires_at=_now() + LEASE)
                        )
                    renewed_at = elapsed
                    if renewed.rowcount == 0:
                        return  # released, or taken over: `end_run` will say so
            except SQLAlchemyError:
                continue  # the store is busy (a long write): try again next time


def _report(row: Any, now: datetime) -> dict[str, Any]:
    return _report_of(row._mapping, now)


def _report_of(m: Any, now: datetime) -> dict[str, Any]:
    status = m["status"]
    message = m["message"]
    if status == RUNNING and (m["lock_run_id"] is None or not lock_is_live(_LockView(m), now)):
        status, message = INTERRUPTED, _INTERRUPTED_MESSAGE
    dry_run = bool(m["dry_run"])
    return {
        "id": m["id"],
        "profile": m["profile_name"],
        "trigger": m["trigger"],
        "status": status,
        "dry_run": dry_run,
        "force": bool(m["force"]),
        # Whether the run's changes were written: counts of any other run are what it
        # would have done.
        "applied": status == "ok" and not dry_run,
        "message": message,
        "counts": dict(m["counts"]),
        "errors": list(m["errors"]),
        "warnings": list(m["warnings"]),
        "changes": list(m["changes"]),
        "started": iso(m["started_at"]),
        "finished": iso(m["finished_at"]),
        "progress": dict(m["progress"]) if status == RUNNING and m["progress"] else None,
        "scheduled_for": iso(m["scheduled_for"]),
    }


class _LockView:
    def __init__(self, m: Any) -> None:
        self.host = m["lock_host"]
        self.pid = m["lock_pid"]
        self.acquired_at = m["lock_acquired_at"]
        self.expires_at = m["lock_expires_at"]


def _runs_query() -> Any:
    joined = runs.outerjoin(run_locks, run_locks.c.run_id == runs.c.id)
    return select(
        runs,
        run_locks.c.run_id.label("lock_run_id"),
        run_locks.c.host.label("lock_host"),
        run_locks.c.pid.label("lock_pid"),
        run_locks.c.acquired_at.label("lock_acquired_at"),
        run_locks.c.expires_at.label("lock_expires_at"),
    ).select_from(joined)


def get_run(conn: Connection, run_id: int) -> dict[str, Any]:
    row = conn.execute(_runs_query().where(runs.c.id == run_id)).first()
    if row is None:
        raise NotFoundError(f"no run with id {run_id}")
    return _report(row, _now())


def list_runs(
    conn: Connection, profile_name: str | None = None, limit: int = 50, offset: int = 0
) -> list[dict[str, Any]]:
    query = _runs_query().order_by(runs.c.id.desc()).limit(limit).offset(offset)
    if profile_name is not None:
        query = query.where(runs.c.profile_name == profile_name)
    now = _now()
    return [_report(r, now) for r in conn.execute(query)]


def latest_runs(conn: Connection) -> list[dict[str, Any]]:
    """The last run of each profile name, without its changes, errors and warnings (a
    list shows the status and counts; the lists of a large run are megabytes)."""
    last = select(func.max(runs.c.id).label("id")).group_by(runs.c.profile_name).subquery()
    columns = [c for c in runs.c if c.name not in ("changes", "errors", "warnings")]
    joined = runs.outerjoin(run_locks, run_locks.c.run_id == runs.c.id)
    query = (
        select(
            *columns,
            run_locks.c.run_id.label("lock_run_id"),
            run_locks.c.host.label("lock_host"),
            run_locks.c.pid.label("lock_pid"),
            run_locks.c.acquired_at.label("lock_acquired_at"),
            run_locks.c.expires_at.label("lock_expires_at"),
        )
        .select_from(joined)
        .where(runs.c.id.in_(select(last.c.id)))
    )
    now = _now()
    unlisted: dict[str, list[Any]] = {"changes": [], "errors": [], "warnings": []}
    return [_report_of({**r._mapping, **unlisted}, now) for r in conn.execute(query)]


def queued_runs(conn: Connection) -> list[tuple[int, datetime]]:
    """Runs asked for but never started (id, when asked), oldest first: what a service
    that was stopped before it ran them left behind."""
    rows = conn.execute(
        select(runs.c.id, runs.c.started_at).where(runs.c.status == QUEUED).order_by(runs.c.id)
    )
    return [(row.id, aware(row.started_at)) for row in rows]


def claim_slot(
    engine: Engine, profile_id: int, profile_name: str, slot: datetime
) -> tuple[int, str] | None:
    """Record the run of a schedule's slot: `queued`, or `skipped` when a live run of the
    profile holds its lock. Returns (run id, status), or None when the slot was claimed
    before (by this process or another of the same store): the unique index on
    (profile, slot) lets exactly one insert through."""
    try:
        with engine.begin() as conn:
            held = live_lock(conn, profile_id)
            if held is not None:
                message = f"skipped: {_running_message(profile_name, held)}"
                status = SKIPPED
            else:
                message, status = "", QUEUED
            run_id = _insert_run(
                conn,
                profile_id,
                profile_name,
                dry_run=False,
                trigger=SCHEDULE,
                status=status,
                message=message,
                scheduled_for=slot,
            )
            return run_id, status
    except IntegrityError:
        return None


def last_slots(conn: Connection) -> dict[int, datetime]:
    """The latest slot claimed of each profile that has one."""
    query = (
        select(runs.c.profile_id, func.max(runs.c.scheduled_for))
        .where(runs.c.scheduled_for.is_not(None) & runs.c.profile_id.is_not(None))
        .group_by(runs.c.profile_id)
    )
    return {int(pid): aware(slot) for pid, slot in conn.execute(query) if slot is not None}


def scheduled_outcomes(conn: Connection, profile_id: int, count: int) -> list[str]:
    """The statuses of the profile's last `count` finished runs of its schedule, newest
    first; skipped ones do not count (they were not needed, not failed)."""
    query = (
        select(runs.c.status)
        .where(
            (runs.c.profile_id == profile_id)
            & (runs.c.trigger == SCHEDULE)
            & runs.c.status.not_in((QUEUED, RUNNING, SKIPPED))
        )
        .order_by(runs.c.id.desc())
        .limit(count)
    )
    return [str(status) for (status,) in conn.execute(query)]
