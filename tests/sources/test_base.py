"""How messages quote what a source holds: excerpts and lists of field names."""

from __future__ import annotations

import pytest

from pbx_connector.sources.base import EXCERPT_CHARS, LISTED_FIELDS, describe_fields, excerpt


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("phone", "phone"),
        ("", ""),
        ("Telefon geschäftlich", "Telefon geschäftlich"),
        ("x" * EXCERPT_CHARS, "x" * EXCERPT_CHARS),
        ("x" * (EXCERPT_CHARS + 1), "x" * EXCERPT_CHARS + "…"),
        ("tab\there", "tab\\there"),
        ("a\\b", "a\\\\b"),
        ("nul\x00", "nul\\x00"),
        ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
        ("rtl\u202eoverride", "rtl\\u202eoverride"),
        ("line\r\nbreak", "line\\r\\nbreak"),
    ],
)
def test_excerpt(text: str, shown: str) -> None:
    assert excerpt(text) == shown


def test_an_excerpt_of_escapes_stays_short() -> None:
    shown = excerpt("\U000e0001" * 1000)
    assert shown.endswith("…")
    assert len(shown) <= EXCERPT_CHARS + len("\\U000e0001") + 1
    assert excerpt("abcdef", limit=3) == "abc…"


def test_describe_fields() -> None:
    assert describe_fields([]) == "(none)"
    assert describe_fields(["a", "b"]) == "a, b"
    names = [f"f{i}" for i in range(LISTED_FIELDS)]
    assert describe_fields(names) == ", ".join(names)
    many = [f"f{i}" for i in range(100_000)]
    assert describe_fields(many) == ", ".join(names) + ", … and 99,980 more"
    assert describe_fields(many, limit=2) == "f0, f1, … and 99,998 more"
    assert describe_fields(("x" * 100, "\n")) == "x" * EXCERPT_CHARS + "…, \\n"
