"""Which expressions are functions of the row alone: a sync leaves a record alone when
its source row comes again unchanged only if every variable and the pre-filter are."""

from __future__ import annotations

import pytest

from pbx_connector.mapping import RowMapper


@pytest.mark.parametrize(
    "variable",
    [
        "{{ givenname }}",
        "{{ givenname | lower }} {{ surname }}",
        "{{ phone if phone else mobile }}",
        "{{ row['Telefon geschäftlich'] | digits }}",
        "{% for n in range(2) %}{{ n }}{% endfor %}",
        "{{ mail | default('none') | truncate(5) }}",
    ],
)
def test_expressions_of_the_row_alone_are_pure(variable: str) -> None:
    assert RowMapper.compile({"displayname": variable}).pure
    assert RowMapper.compile({"displayname": "{{ a }}"}, f"({variable!r}) != ''").pure


@pytest.mark.parametrize(
    "expression",
    ["{{ [a, b] | random }}", "{{ lipsum(1) }}", "{{ a ~ (range(3) | random) }}"],
)
def test_random_results_are_not_pure(expression: str) -> None:
    assert not RowMapper.compile({"displayname": expression}).pure
    inner = expression.removeprefix("{{ ").removesuffix(" }}")
    assert not RowMapper.compile({"displayname": "{{ a }}"}, f"{inner} != ''").pure
