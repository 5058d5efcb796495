"""A row as a source sees it: field names to values."""

from __future__ import annotations

#: A source field holds a string, or a list of strings for multi-valued attributes.
RowValue = str | list[str]
