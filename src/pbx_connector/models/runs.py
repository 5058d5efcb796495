"""A run as every face shows it: its report, its changes, its errors and its progress."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from pbx_connector.models.base import Model

RunStatus = Literal["queued", "running", "ok", "failed", "aborted", "interrupted", "skipped"]
#: Every status a run can have, in the order a filter offers them.
RUN_STATUSES: tuple[str, ...] = (
    "queued",
    "running",
    "ok",
    "failed",
    "aborted",
    "interrupted",
    "skipped",
)
#: The safety rules that abort a mirror run, by what its message says.
SafetyRule = Literal["max_delete", "no rows", "pre-filter"]
_SAFETY_WORDS: tuple[tuple[str, SafetyRule], ...] = (
    ("max_delete", "max_delete"),
    ("yielded no rows", "no rows"),
    ("pre-filter rejected every row", "pre-filter"),
)


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
    #: The slot of the profile's schedule this run was for (trigger `schedule`).
    scheduled_for: str | None = None

    @property
    def pending(self) -> bool:
        """Whether the plan holds changes (what `sync --check` asks)."""
        c = self.counts
        return bool(c.created or c.updated or c.deleted)

    @property
    def unlisted_changes(self) -> int:
        """Changes counted but not in `changes`: a plan keeps a sample of a very large
        set of changes for display (its counts are always exact)."""
        c = self.counts
        return max(0, c.created + c.updated + c.deleted - len(self.changes))

    @property
    def unlisted_errors(self) -> int:
        """Invalid rows and conflicts counted but not in `errors` (see `unlisted_changes`)."""
        listed = sum(1 for e in self.errors if e.kind is not None)
        return max(0, self.counts.invalid + self.counts.conflicts - listed)

    @property
    def safety_rule(self) -> SafetyRule | None:
        """The safety rule that aborted this run: `max_delete` (too many deletions), `no
        rows` (the source yielded none), `pre-filter` (it rejected every row); None for
        a run no safety rule stopped. A forced run of the profile goes past it."""
        if self.status != "aborted":
            return None
        for words, rule in _SAFETY_WORDS:
            if words in self.message:
                return rule
        return None

    def as_json(self) -> dict[str, Any]:
        """The report as the CLI's `--json` prints it and the API returns it."""
        return self.model_dump(mode="json", exclude_unset=True)
