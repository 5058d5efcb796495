"""Contracts of profiles: what a profile looks like from outside, and what previewing and
evaluating one over its source gives.

Secrets are write-only: a view names the secret settings that are set, never a value;
an evaluated secret field (a user's password or PIN from the source) says that it has a
value, not which."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, field_serializer

from pbx_connector.models.base import Model

#: A source field holds a string, or a list of strings for multi-valued attributes.
RowValue = str | list[str]


class ScheduleView(Model):
    """A profile's schedule as every face shows it."""

    #: As set: a preset (`daily 02:30`) or a cron expression.
    expression: str
    #: The cron expression it means (five fields, or six with seconds first).
    cron: str
    #: The time zone its times are in, and where that comes from.
    timezone: str
    timezone_from: Literal["profile", "instance", "machine"]
    #: The next slots, with their offset (`2026-12-01T02:30:00+01:00`).
    next_runs: list[str]
    #: Finished scheduled runs that failed in a row, newest first, up to `FAILING_AFTER`.
    failures: int = 0
    #: The last `FAILING_AFTER` scheduled runs all failed: the profile stays scheduled,
    #: and a person should look at it.
    failing: bool = False
    #: Why the stored schedule cannot run (a time zone this machine does not know).
    problem: str | None = None

    @property
    def next_run(self) -> str | None:
        return self.next_runs[0] if self.next_runs else None


class ProfileSchedule(Model):
    """A profile's schedule, or null when it runs only when started."""

    schedule: ScheduleView | None


class ProfileView(Model):
    """A profile as every face shows it. The fields and their order are those of
    `pbx-connector profile show --json`, which scripts read."""

    id: int
    name: str
    template: str
    target: str
    source: str
    mode: str
    settings: dict[str, str]
    #: Names of the secret settings that hold a value; never the values.
    secrets_set: list[str]
    #: Secrets are stored but cannot be decrypted with this instance's key: a run fails
    #: until they are set again.
    secrets_unreadable: bool
    prefilter: str
    variables: dict[str, str]
    created_at: datetime | None
    updated_at: datetime | None
    #: When it runs by itself; None without a schedule.
    schedule: ScheduleView | None = None

    @field_serializer("created_at", "updated_at")
    def _seconds(self, value: datetime | None) -> str | None:
        """To the second, with the offset: `2024-05-01T10:00:00+00:00`."""
        return None if value is None else value.isoformat(timespec="seconds")


class CreatedProfile(Model):
    """A new profile and what is worth telling the person who made it (default variables
    emptied because the source lacks their column, a source not readable yet)."""

    profile: ProfileView
    notes: list[str]


class RowProblem(Model):
    """A row the source could read but not make sense of (a ragged CSV line)."""

    line: int
    message: str


class PreviewResult(Model):
    """The first rows exactly as the source gives them, before pre-filter and variables."""

    #: The file, URL or server read, as messages name it.
    source: str
    #: The fields the source offers (the CSV header), in source order.
    fields: list[str]
    rows: list[dict[str, RowValue]]
    problems: list[RowProblem]


class FieldValue(Model):
    """What one variable gives for one row: its value, or why there is none."""

    #: The value as the variable renders it; None when the field is not managed (empty
    #: expression), when `error` says why there is none, or when the field is `hidden`.
    value: str | None = None
    #: The expression does not compile, fails on this row, or its value would be refused
    #: (too long, not an e-mail address…): the run reports this row as invalid.
    error: str | None = None
    #: The value is kept, but differently than given (a number not in E.164 form…).
    warnings: list[str] = Field(default_factory=list)
    #: A secret field (password, PIN) that has a value; the value is never shown.
    hidden: bool = False


class EvaluatedRow(Model):
    """One source row through the pre-filter and the variables."""

    line: int
    #: False: the run would skip the row (or report it, when `prefilter_error` is set).
    passes: bool
    prefilter_error: str | None = None
    #: Every field of the target, in the target's order.
    fields: dict[str, FieldValue]


class EvaluateResult(Model):
    """Variables and a pre-filter, saved or not, over the first rows of a profile's source:
    what the Variables tab shows while an administrator types."""

    profile: str
    source: str
    #: The source's fields, to pick from when writing an expression.
    source_fields: list[str]
    #: The expressions evaluated: the profile's, with the unsaved ones given over them.
    variables: dict[str, str]
    prefilter: str
    #: Expressions that do not compile, by field name (`pre-filter` for the pre-filter);
    #: each also shows as that field's error on every row.
    errors: dict[str, str]
    rows: list[EvaluatedRow]
    problems: list[RowProblem]
