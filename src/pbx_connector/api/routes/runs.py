"""Runs: start one (it runs in the background), list them, follow one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from pbx_connector.api.deps import Core, Reader, Writer
from pbx_connector.models.base import Model

router = APIRouter(tags=["runs"])


class RunRequest(Model):
    dry_run: bool = False
    force: bool = False


@router.post("/profiles/{name}/runs", status_code=202)
def start_run(
    name: str,
    body: RunRequest,
    request: Request,
    response: Response,
    app: Core,
    _: Writer,
) -> dict[str, Any]:
    """Queue a run of a profile; it executes in the background. 202 with the queued
    run; 409 (with `running_run_id`) when a run of the profile is in progress."""
    run = app.runs.request(name, dry_run=body.dry_run, force=body.force, trigger="api")
    request.app.state.executor.submit(run.id)
    response.headers["Location"] = f"/api/v1/runs/{run.id}"
    return run.as_json()


@router.get("/runs")
def list_runs(
    app: Core,
    _: Reader,
    profile: str | None = None,
    limit: Annotated[int, Query(ge=0, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
) -> dict[str, Any]:
    page = app.runs.list(profile, limit=limit, offset=offset)
    return {"items": [r.as_json() for r in page.items], "total": page.total}


@router.get("/runs/{run_id}")
def get_run(
    run_id: Annotated[int, Path(ge=1, le=2**63 - 1)], app: Core, _: Reader
) -> dict[str, Any]:
    """One run: its report and, while it runs, `progress` {phase, done, total}."""
    return app.runs.get(run_id).as_json()
