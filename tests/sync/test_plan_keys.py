"""The shortcuts of the plan's unchanged path give what the general rules give: a
record's key (`key_function` vs `_key_of`) and the fingerprint of a content hash."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pbx_connector.domain.rows import RowValue
from pbx_connector.sync.keyindex import digest_fingerprint, fingerprint
from pbx_connector.sync.plan import Hasher, _key_of, key_function

NAMES = ["username", "phone", "entryUUID", "displayname"]
texts = st.text(st.sampled_from("aAzZ äÖ\t\n-1"), max_size=6)
row_values: st.SearchStrategy[RowValue] = st.one_of(texts, st.lists(texts, max_size=3))


@settings(max_examples=400, deadline=None)
@given(
    key_fields=st.lists(st.sampled_from(NAMES), min_size=1, max_size=2, unique=True),
    lowered=st.frozensets(st.sampled_from(NAMES)),
    variables=st.dictionaries(st.sampled_from(NAMES), texts),
    row=st.dictionaries(st.sampled_from(NAMES), row_values),
)
def test_key_function_is_key_of(
    key_fields: list[str],
    lowered: frozenset[str],
    variables: dict[str, str],
    row: dict[str, RowValue],
) -> None:
    fields = tuple(key_fields)
    key = key_function(fields, lowered, frozenset(variables))
    assert key(variables, row) == _key_of(fields, lowered, variables, row)


@given(values=st.lists(texts, min_size=3, max_size=3), key=st.binary(max_size=16))
def test_digest_fingerprint_is_the_fingerprint_of_the_stored_hash(
    values: list[str], key: bytes
) -> None:
    names = ("a", "b", "c")
    hasher = Hasher(key, "1|DE|0", names)
    mapped = dict(zip(names, values, strict=True))
    digest = hasher.digest(mapped, names)
    assert hasher(mapped, names) == digest.hex()
    assert digest_fingerprint(digest) == fingerprint(digest.hex())


def test_a_digest_starting_with_zeros_still_has_a_fingerprint() -> None:
    zeros = bytes(8) + b"\x01" * 8
    assert digest_fingerprint(zeros) == fingerprint(zeros.hex()) == 1
