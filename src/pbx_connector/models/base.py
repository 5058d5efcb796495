"""What every contract shares."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class Model(BaseModel):
    """A contract: immutable, and strict about unknown fields so that a typo in a request
    is an error, not a silently ignored value."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Page(Model, Generic[T]):
    """One page of a list: `{"items": [...], "total": N}`."""

    items: list[T]
    total: int
