"""A run as every face shows it: its report, its changes, its errors and its progress."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from pbx_connector.models.base import Model

RunStatus = Literal["queued", "running", "ok", "failed", "aborted", "interrupted"]


class Counts(Model):
    """How many records a run created, updated, … — or would have, when it wrote
    nothing (see `RunReport.applied`)."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    invalid: int = 0
    conflicts: int = 0
    skipped: int = 0


class FieldChange(Model):
    field: str
    before: Any = None
    after: Any = None


class Change(Model):
    """One create, update or delete of the plan."""

    action: Literal["create", "update", "delete"]
    record: str
    key: str | None = None
    line: int | None = None
    ref: str | None = None
    id: int | None = None
    field: str | None = None
    message: str | None = None
    diff: list[FieldChange] = Field(default_factory=list)


class PlanError(Model):
    """An invalid row or a conflict (with `kind`), or the error that failed a run."""

    kind: Literal["invalid", "conflict"] | None = None
    line: int | None = None
    field: str | None = None
    message: str
    key: str | None = None
    ref: str | None = None


class PlanWarning(Model):
    line: int | None = None
    field: str | None = None
    message: str
    ref: str | None = None


class RunProgress(Model):
    """Where a running run is: reading rows (no total yet) or writing changes."""

    phase: Literal["reading", "writing"]
    done: int
    total: int | None = None


class RunReport(Model):
    id: int
    profile: str
    #: The profile's target, or None when the profile was deleted since.
    target: str | None = None
    trigger: str
    status: RunStatus
    dry_run: bool
    force: bool = False
    #: Whether the run wrote its changes; the counts of any other run are what it would
    #: have done.
    applied: bool
    message: str
    counts: Counts
    errors: list[PlanError]
    warnings: list[PlanWarning]
    changes: list[Change]
    started: str | None
    finished: str | None
    progress: RunProgress | None = None

    @property
    def pending(self) -> bool:
        """Whether the plan holds changes (what `sync --check` asks)."""
        c = self.counts
        return bool(c.created or c.updated or c.deleted)

    def as_json(self) -> dict[str, Any]:
        """The report as the CLI's `--json` prints it and the API returns it."""
        return self.model_dump(mode="json", exclude_unset=True)
