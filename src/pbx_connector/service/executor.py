"""Runs queued by a long-running process (`serve`) are executed here, in a small pool of
threads, so that a request can answer before its run ends. Only the run's id crosses
over: everything else the run needs is in the store."""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pbx_connector.errors import PbxConnectorError
from pbx_connector.store import runs as run_store

if TYPE_CHECKING:
    from pbx_connector.service.app import App

log = logging.getLogger("pbx_connector.runs")

#: A run asked for longer ago than this and never started (the service stopped first) is
#: not started any more when the service comes back: whoever asked has moved on.
STALE_QUEUED = timedelta(hours=1)


class RunExecutor:
    def __init__(self, app: App, workers: int = 2) -> None:
        self.app = app
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="run")

    def submit(self, run_id: int) -> Future[None]:
        return self._pool.submit(self._execute, run_id)

    def _execute(self, run_id: int) -> None:
        try:
            report = self.app.runs.execute(run_id)
            log.info("run %s of %s: %s", report.id, report.profile, report.message)
        except PbxConnectorError as exc:
            log.error("run %s could not be carried out: %s", run_id, exc)
        except Exception:
            log.exception("run %s failed unexpectedly", run_id)

    def resume_queued(self, now: datetime | None = None) -> tuple[list[int], list[int]]:
        """Carry out the runs a stopped service left queued; those asked for more than
        `STALE_QUEUED` ago are marked interrupted instead. Returns (resumed, dropped).
        Another process of the same store may start one of them first: starting a run
        is a conditional update, so it runs once."""
        now = now or datetime.now(UTC)
        with self.app.reading() as conn:
            queued = run_store.queued_runs(conn)
        resumed: list[int] = []
        dropped: list[int] = []
        for run_id, asked in queued:
            if now - asked > STALE_QUEUED:
                run_store.abandon(
                    self.app.engine,
                    run_id,
                    "not started: the service stopped before it ran it, and it was "
                    "asked for more than an hour before the service came back",
                )
                dropped.append(run_id)
            else:
                self.submit(run_id)
                resumed.append(run_id)
        if resumed or dropped:
            log.info("queued runs at start: %d resumed, %d dropped", len(resumed), len(dropped))
        return resumed, dropped

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
