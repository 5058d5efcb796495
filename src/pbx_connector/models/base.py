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
    """One page of a list: `{"items": [...], "total": N, "total_exact": true}`."""

    items: list[T]
    total: int
    #: False when a search matched more records than are counted (`total` is then that
    #: bound, and there are more): a list says "200+" and asks for a narrower search.
    total_exact: bool = True
