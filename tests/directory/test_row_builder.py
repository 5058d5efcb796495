"""Directory entries as rows: `RowBuilder` must give exactly the row that decoding each
wanted attribute with `row_value` gives (looked up without regard to case), whatever the
entry holds: missing attributes, several values, other letter cases, bytes that are not
UTF-8, GUIDs and SIDs, attributes nobody asked for."""

from __future__ import annotations

import uuid

from hypothesis import example, given, settings
from hypothesis import strategies as st

from pbx_connector.directory.values import RowBuilder, row_value
from pbx_connector.domain.rows import RowValue

WANTED = ["cn", "mail", "telephoneNumber", "objectGUID", "objectSid", "entryUUID"]
SID = bytes([1, 2, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 7, 0, 0, 0])
GUID = uuid.UUID("12345678-1234-5678-1234-567812345678").bytes_le


def reference(dn: str, entry: dict[str, list[bytes]], wanted: list[str]) -> dict[str, RowValue]:
    """The rule, written plainly."""
    data: dict[str, RowValue] = {"dn": dn}
    by_lower = {k.lower(): v for k, v in entry.items()}
    for name in wanted:
        data[name] = row_value(name, by_lower.get(name.lower(), []))
    return data


raw_values = st.one_of(
    st.text(max_size=8).map(str.encode),
    st.binary(max_size=8),
    st.sampled_from([b"\xff\xd8\xff", "Jürgen".encode(), b"", SID, GUID, b"\xc3"]),
)
names = st.sampled_from([*WANTED, "CN", "MAIL", "telephonenumber", "OBJECTGUID", "sn", "jpegPhoto"])
entries = st.dictionaries(names, st.lists(raw_values, max_size=3), max_size=8)


@settings(max_examples=500, deadline=None)
@given(entry_list=st.lists(entries, min_size=1, max_size=4))
@example(entry_list=[{"CN": [b"a"], "cn": [b"b"]}])
@example(entry_list=[{"objectGUID": [GUID]}, {"objectguid": [b"short"]}])
@example(entry_list=[{"objectSid": [SID, b"\x01"]}, {"mail": [b"ok", b"\xff"]}])
def test_rows_are_what_row_value_gives(entry_list: list[dict[str, list[bytes]]]) -> None:
    build = RowBuilder("dn", WANTED)
    # One builder for several entries: what it learnt from one must not leak into the next.
    for n, entry in enumerate(entry_list):
        dn = f"uid=u{n},ou=people,dc=example,dc=test"
        row = build(dn, entry)
        expected = reference(dn, entry, WANTED)
        assert row == expected
        assert list(row) == list(expected)  # the order too


def test_missing_attributes_are_empty_and_values_keep_their_shape() -> None:
    build = RowBuilder("dn", ["cn", "mail", "objectGUID", "objectSid"])
    row = build(
        "cn=x",
        {"MAIL": [b"a@example.test", b"b@example.test"], "objectGUID": [GUID], "sn": [b"n"]},
    )
    assert row == {
        "dn": "cn=x",
        "cn": "",
        "mail": ["a@example.test", "b@example.test"],
        "objectGUID": "12345678-1234-5678-1234-567812345678",
        "objectSid": "",
    }
