"""The compact key index behaves like the dict and set it replaces."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pbx_connector.sync.keyindex import KeyIndex, fingerprint

keys = st.text(min_size=1, max_size=12)


@given(
    existing=st.dictionaries(keys, st.text("0123456789abcdef", min_size=32, max_size=32)),
    shown=st.lists(keys, max_size=60),
)
def test_index_matches_a_dict_and_a_set(existing: dict[str, str], shown: list[str]) -> None:
    index = KeyIndex()
    ids = {key: n + 1 for n, key in enumerate(existing)}
    for key, chash in existing.items():
        index.add_existing(key, ids[key], chash)
    assert index.existing == len(existing)
    seen: set[str] = set()
    for key in shown:
        duplicate, rid, print_ = index.see(key)
        assert duplicate == (key in seen)
        assert rid == ids.get(key, 0)
        assert print_ == (fingerprint(existing[key]) if key in existing else 0)
        seen.add(key)
    assert set(index.unseen_records()) == {ids[k] for k in existing if k not in seen}
    assert index.seen_records() == {ids[k] for k in existing if k in seen}


def test_the_table_grows_past_its_first_size() -> None:
    index = KeyIndex()
    for n in range(5000):
        index.add_existing(f"key {n}", n + 1, None)
    assert [index.see(f"key {n}")[1] for n in range(0, 5000, 499)] == list(range(1, 5001, 499))
    assert len(index) == 5000


def test_a_missing_content_hash_never_matches() -> None:
    assert fingerprint(None) == fingerprint("") == 0
    assert fingerprint("0" * 32) != 0
