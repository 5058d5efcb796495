"""Timestamps as the store hands them back: SQLite returns naive datetimes (stored as
UTC), PostgreSQL aware ones. Everything that reads a timestamp column goes through
`aware`, so that comparisons and output are the same on both stores."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload


@overload
def aware(value: datetime) -> datetime: ...
@overload
def aware(value: None) -> None: ...
def aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def iso(value: datetime | None) -> str | None:
    """`2026-11-29T22:19:36+00:00`, or None."""
    value = aware(value)
    return None if value is None else value.isoformat(timespec="seconds")
