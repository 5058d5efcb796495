"""Runs queued by a long-running process (`serve`) are executed here, in a small pool of
threads, so that a request can answer before its run ends. Only the run's id crosses
over: everything else the run needs is in the store."""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from pbx_connector.errors import PbxConnectorError

if TYPE_CHECKING:
    from pbx_connector.service.app import App

log = logging.getLogger("pbx_connector.runs")


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

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
