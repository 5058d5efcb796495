"""The scheduler `serve` runs: APScheduler 3 in a background thread, one job per scheduled
profile firing at its slots, and a job that looks at the store every `REFRESH` to follow
schedules changed elsewhere (the CLI, another process) and to run what is due.

It keeps no state of its own. What runs is decided by `SchedulesService` from the store,
and a slot is claimed in the store before its run is queued, so after a restart, and with
several `serve` processes (or workers) on one store, each slot runs once.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import TYPE_CHECKING

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from pbx_connector.errors import PbxConnectorError

if TYPE_CHECKING:
    from pbx_connector.service.app import App
    from pbx_connector.service.executor import RunExecutor
    from pbx_connector.service.schedules import Claimed

log = logging.getLogger("pbx_connector.schedules")

#: How often the store is read again for schedules set by another process, and for slots
#: a busy or stopped process missed.
REFRESH = timedelta(seconds=10)


class Scheduler:
    def __init__(self, app: App, executor: RunExecutor, refresh: timedelta = REFRESH) -> None:
        self.app = app
        self.executor = executor
        self.refresh = refresh
        # coalesce: a job that could not fire for a while fires once, not once per slot;
        # no grace limit: a late firing still claims its slot (the store says if taken).
        self._scheduler = BackgroundScheduler(
            timezone="UTC",
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        #: profile id -> (cron, time zone) of the job that fires its slots.
        self._jobs: dict[int, tuple[str, str]] = {}
        self._lock = threading.Lock()
        app.schedules.listeners.append(self.refresh_soon)

    def start(self) -> None:
        """Run what was missed while no process served the store (each profile once),
        then keep to the schedules."""
        self._scheduler.start()
        # Once now (no trigger: at once), then every `refresh`.
        self._scheduler.add_job(self.refresh_now, id="first-refresh")
        self._scheduler.add_job(
            self.refresh_now,
            IntervalTrigger(seconds=self.refresh.total_seconds()),
            id="refresh",
        )

    def shutdown(self) -> None:
        self.app.schedules.listeners.remove(self.refresh_soon)
        self._scheduler.shutdown(wait=False)

    def refresh_soon(self) -> None:
        """Follow a change made in this process now, in the scheduler's thread."""
        if self._scheduler.running:
            self._scheduler.add_job(self.refresh_now)

    def refresh_now(self) -> None:
        """Follow the schedules in the store, and claim what is due."""
        with self._lock:
            try:
                entries = self.app.schedules.scheduled()
            except PbxConnectorError as exc:
                log.error("schedules not read: %s", exc)
                return
            seen: set[int] = set()
            for entry in entries:
                seen.add(entry.profile_id)
                signature = (entry.schedule.cron, entry.schedule.timezone)
                if self._jobs.get(entry.profile_id) == signature:
                    continue
                self._scheduler.add_job(
                    self._fire,
                    entry.schedule.trigger,
                    args=[entry.profile_id],
                    id=f"profile-{entry.profile_id}",
                    replace_existing=True,
                )
                self._jobs[entry.profile_id] = signature
            for gone in set(self._jobs) - seen:
                self._scheduler.remove_job(f"profile-{gone}")
                del self._jobs[gone]
        self._submit(self.app.schedules.claim_due())

    def _fire(self, profile_id: int) -> None:
        try:
            claimed = self.app.schedules.claim(profile_id)
        except PbxConnectorError as exc:
            log.error("scheduled run of profile %s not claimed: %s", profile_id, exc)
            return
        self._submit([claimed] if claimed is not None else [])

    def _submit(self, claimed: list[Claimed]) -> None:
        for run in claimed:
            if run.status == "queued":
                log.info("scheduled run %s of %s (slot %s)", run.run_id, run.profile, run.slot)
                self.executor.submit(run.run_id)
