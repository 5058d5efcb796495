"""Runs: ask for one, carry it out, look at past ones, release a stuck lock.

A run is a job: `request` records it as queued and returns at once, `execute` carries it
out (in this process or another), `run` does both. Everything a run needs lives in the
store, never in this process, so any worker can execute a queued run."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from pbx_connector import interrupts
from pbx_connector.errors import NotFoundError, UsageError
from pbx_connector.models.base import Page
from pbx_connector.models.runs import RUN_STATUSES, RunReport
from pbx_connector.store import db as store_db
from pbx_connector.store import runs as run_store
from pbx_connector.store.profiles import get_profile, list_profiles
from pbx_connector.store.tables import runs as runs_table
from pbx_connector.sync import runner
from pbx_connector.sync.runner import Progress

if TYPE_CHECKING:
    from pbx_connector.service.app import App

__all__ = ["Progress", "RunsService"]

T = TypeVar("T")

#: The most runs one page may hold.
MAX_PAGE = 1000


class RunsService:
    def __init__(self, app: App) -> None:
        self.app = app

    def run(
        self,
        name: str,
        *,
        dry_run: bool = False,
        force: bool = False,
        trigger: str = "cli",
        progress: Progress | None = None,
    ) -> RunReport:
        """Run a profile now. A run refused because another holds the profile is
        recorded as failed and returned like any other."""
        with interrupts.deferred():
            # Recorded as running with its lock in one transaction: a kill right after
            # leaves a run that shows as interrupted, never one that stays queued.
            run_id = self._guard(
                lambda: runner.begin_run(
                    self.app.engine, name, dry_run=dry_run, force=force, trigger=trigger
                )
            )
        try:
            interrupts.check()
            with interrupts.deferred():
                report = self._model(
                    self._guard(
                        lambda: runner.execute_run(self.app.engine, run_id, progress, started=True)
                    )
                )
        except BaseException:
            # Stopped (Ctrl-C) before the run began its work.
            run_store.abandon(
                self.app.engine, run_id, "interrupted, nothing changed: stopped before it began"
            )
            raise
        interrupts.dropped_while_finishing()
        return report

    def request(
        self, name: str, *, dry_run: bool = False, force: bool = False, trigger: str = "api"
    ) -> RunReport:
        """Record a run as queued and return it; a profile that a live run holds is
        refused with RunLocked naming that run (nothing is recorded)."""
        run_id = self._guard(
            lambda: runner.request_run(
                self.app.engine,
                name,
                dry_run=dry_run,
                force=force,
                trigger=trigger,
                refuse_running=True,
            )
        )
        return self.get(run_id)

    def execute(self, run_id: int, progress: Progress | None = None) -> RunReport:
        """Carry out a queued run and return its report."""
        with interrupts.deferred():
            report = self._guard(lambda: runner.execute_run(self.app.engine, run_id, progress))
        return self._model(report)

    def get(self, run_id: int) -> RunReport:
        _check_id(run_id)
        with self.app.reading() as conn:
            return self._model(run_store.get_run(conn, run_id))

    def list(
        self,
        profile: str | None = None,
        *,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[RunReport]:
        """Runs, newest first, with how many there are in all; of one profile and with
        one status (as the report shows it: a run whose process ended is `interrupted`)
        when given."""
        if not 0 <= limit <= MAX_PAGE:
            raise UsageError(f"the limit must be from 0 to {MAX_PAGE}", field="limit")
        if not 0 <= offset <= run_store.MAX_ID:
            raise UsageError("the offset is out of range", field="offset")
        if status is not None:
            return self._with_status(profile, status, limit, offset)
        with self.app.reading() as conn:
            items = run_store.list_runs(conn, profile, limit, offset)
            query = select(func.count()).select_from(runs_table)
            if profile is not None:
                query = query.where(runs_table.c.profile_name == profile)
            total = conn.execute(query).scalar_one()
            targets = {p.name: p.target for p in list_profiles(conn)}
        return Page[RunReport](
            items=[_with_target(r, targets.get(r["profile"])) for r in items], total=total
        )

    def latest(self) -> dict[str, RunReport]:
        """The last run of each profile, by profile name, for an overview: status,
        counts and times, without the lists of changes, errors and warnings (a run's own
        page has them)."""
        with self.app.reading() as conn:
            items = run_store.latest_runs(conn)
            targets = {p.name: p.target for p in list_profiles(conn)}
        return {r["profile"]: _with_target(r, targets.get(r["profile"])) for r in items}

    def _with_status(
        self, profile: str | None, status: str, limit: int, offset: int
    ) -> Page[RunReport]:
        if status not in RUN_STATUSES:
            raise UsageError(
                f"status must be one of {', '.join(RUN_STATUSES)}, not {status!r}", field="status"
            )
        # A run stored as running shows as interrupted once its process is gone: those
        # (few) are looked at one by one; every other status is the stored one.
        stored = {"running": ("running",), "interrupted": ("running", "interrupted")}
        query = (
            select(runs_table.c.id, runs_table.c.status)
            .where(runs_table.c.status.in_(stored.get(status, (status,))))
            .order_by(runs_table.c.id.desc())
        )
        if profile is not None:
            query = query.where(runs_table.c.profile_name == profile)
        with self.app.reading() as conn:
            ids = [
                row.id
                for row in conn.execute(query)
                if row.status != "running" or run_store.get_run(conn, row.id)["status"] == status
            ]
            items = [run_store.get_run(conn, i) for i in ids[offset : offset + limit]]
            targets = {p.name: p.target for p in list_profiles(conn)}
        return Page[RunReport](
            items=[_with_target(r, targets.get(r["profile"])) for r in items], total=len(ids)
        )

    def unlock(self, name: str) -> int:
        """Release a profile's run lock by hand; returns the id of the run that held it
        (now `interrupted`)."""
        with self.app.reading() as conn:
            profile = get_profile(conn, name)
        assert profile.id is not None
        return self._guard(lambda: run_store.unlock(self.app.engine, profile.id or 0, name))

    def _model(self, report: dict[str, Any]) -> RunReport:
        with self.app.reading() as conn:
            try:
                target: str | None = get_profile(conn, report["profile"]).target
            except UsageError:
                target = None
        return _with_target(report, target)

    def _guard(self, call: Callable[[], T]) -> T:
        """Database failures outside the core's own transactions as StoreError."""
        try:
            return call()
        except SQLAlchemyError as exc:
            raise store_db.store_error(exc, str(self.app.engine.url)) from None


def _with_target(report: dict[str, Any], target: str | None) -> RunReport:
    return RunReport.model_validate({**report, "target": target})


def _check_id(run_id: int) -> None:
    if not 0 < run_id <= run_store.MAX_ID:
        raise NotFoundError(f"no run with id {run_id}")
