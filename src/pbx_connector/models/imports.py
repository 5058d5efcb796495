"""Contracts of a one-off import: a CSV or xlsx file read once into a target, its
records made as if by hand (no profile, no origin)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pbx_connector.models.base import Model
from pbx_connector.models.runs import Counts

ImportTarget = Literal["users", "phonebook", "speeddials"]


class ImportProblem(Model):
    """An invalid row, a conflict, or a warning, and where it is: `where` is the cell
    (`Phonebook!B7`) of an xlsx file or the line (`line 7`) of a CSV file."""

    kind: Literal["invalid", "conflict", "warning"]
    where: str | None = None
    line: int | None = None
    field: str | None = None
    message: str


class ImportResult(Model):
    """What an import did, or would do (a dry run, or an import refused because a row
    is invalid: then nothing was imported)."""

    target: ImportTarget
    file: str
    format: Literal["csv", "xlsx"]
    dry_run: bool
    #: Whether the records were written. An import writes all of its rows or none.
    applied: bool
    message: str
    rows: int = Field(description="rows read (wholly empty rows are not counted)")
    counts: Counts
    errors: list[ImportProblem] = Field(default_factory=list)
    warnings: list[ImportProblem] = Field(default_factory=list)
    #: The file's columns that are not fields of the target (not imported).
    ignored_columns: list[str] = Field(default_factory=list)


class ImportTemplate(Model):
    """A file to fill in: the target's columns and one example row."""

    target: ImportTarget
    filename: str
    media_type: str
    content: bytes
