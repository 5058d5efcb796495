"""`query_values` reads a query string as Starlette's `QueryParams` does (the last value of
each name), for any bytes a client may send."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import QueryParams
from starlette.requests import Request

from pbx_connector.api.deps import query_values


def _request(query: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> Request:
    return Request({"type": "http", "query_string": query, "headers": headers or []})


def test_a_pbx_query_is_read_with_its_escapes() -> None:
    got = query_values(_request(b"number=+49%20991%2012345&user=M%C3%BCller&token=a%2Bb&x"))
    assert got == {"number": " 49 991 12345", "user": "Müller", "token": "a+b", "x": ""}


def test_the_last_value_of_a_name_counts() -> None:
    assert query_values(_request(b"number=1&number=2"))["number"] == "2"


_PARTS = st.sampled_from(["number", "user", "token", "=", "&", "+", "%", "%2B", "%C3%BC", "%zz"])


@given(st.one_of(st.binary(max_size=60), st.lists(_PARTS, max_size=12).map("".join)))
def test_any_query_string_reads_as_starlette_reads_it(query: bytes | str) -> None:
    raw = query if isinstance(query, bytes) else query.encode()
    expected = QueryParams(raw)
    got = query_values(_request(raw))
    assert got == {name: expected[name] for name in expected}
