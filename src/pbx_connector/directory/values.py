"""Attribute values as text: what a row holds for each LDAP attribute.

Directories hand back bytes. Text attributes are UTF-8 (RFC 4517); the binary ones that
matter for a sync are made readable the way administrators know them: `objectGUID` as
its canonical GUID string (the form AD tools show, with the first three fields
little-endian), `objectSid` as `S-1-5-21-…`. Any other value that is not UTF-8 (photos,
certificates) becomes `base64:` and its Base64 text, so it is visible but never mangled.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Mapping

from pbx_connector.domain.rows import RowValue

#: Attributes holding a GUID as 16 raw bytes (lower case: LDAP names are case-insensitive).
GUID_ATTRIBUTES = frozenset({"objectguid", "msexchmailboxguid", "ms-ds-consistencyguid"})
#: Attributes holding a binary security identifier.
SID_ATTRIBUTES = frozenset({"objectsid", "sidhistory", "securityidentifier"})

#: How the raw values of one attribute become a row's value.
Decoder = Callable[[str, list[bytes]], RowValue]


def guid_text(raw: bytes) -> str:
    return str(uuid.UUID(bytes_le=raw))


def sid_text(raw: bytes) -> str:
    """S-{revision}-{authority}-{sub-authorities…} (MS-DTYP 2.4.2.2)."""
    if len(raw) < 8:
        raise ValueError("a SID has at least 8 bytes")
    revision, count = raw[0], raw[1]
    if len(raw) != 8 + 4 * count:
        raise ValueError(f"a SID with {count} sub-authorities has {8 + 4 * count} bytes")
    authority = int.from_bytes(raw[2:8], "big")
    subs = [int.from_bytes(raw[8 + 4 * i : 12 + 4 * i], "little") for i in range(count)]
    return "-".join(["S", str(revision), str(authority), *map(str, subs)])


def value_text(attribute: str, raw: bytes) -> str:
    name = attribute.lower()
    try:
        if name in GUID_ATTRIBUTES:
            return guid_text(raw)
        if name in SID_ATTRIBUTES:
            return sid_text(raw)
    except ValueError:
        # Not the shape we know: show the bytes rather than text they happen to decode to.
        return "base64:" + base64.b64encode(raw).decode("ascii")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(raw).decode("ascii")


def row_value(attribute: str, raw_values: list[bytes]) -> RowValue:
    """One value as a string, several as a list, none as an empty string."""
    if not raw_values:
        return ""
    if len(raw_values) == 1:
        return value_text(attribute, raw_values[0])
    return [value_text(attribute, v) for v in raw_values]


def _text_values(attribute: str, raw_values: list[bytes]) -> RowValue:
    """`row_value` for an attribute that is neither a GUID nor a SID, the common case:
    UTF-8 decoding tried first, the per-value rules only for a value that is not UTF-8."""
    try:
        if len(raw_values) == 1:
            return raw_values[0].decode("utf-8")
        if not raw_values:
            return ""
        return [v.decode("utf-8") for v in raw_values]
    except UnicodeDecodeError:
        return row_value(attribute, raw_values)


class RowBuilder:
    """Entries of one search as rows: `dn` first, then every wanted attribute in the
    order asked for (as `row_value` gives it), `""` for an attribute the entry lacks.

    A search returns the same few attribute names on every entry, so what each name
    stands for (which wanted attribute, how its values are decoded) is worked out once
    per name rather than once per value; names are matched without regard to case, and
    of two names of one attribute the later one wins."""

    def __init__(self, dn_field: str, wanted: list[str]) -> None:
        self._empty: dict[str, RowValue] = {dn_field: "", **dict.fromkeys(wanted, "")}
        self._dn_field = dn_field
        self._by_lower = {name.lower(): name for name in wanted}
        #: Returned name → (wanted name, decoder); None for a name nobody asked for.
        self._names: dict[str, tuple[str, Decoder] | None] = {}

    def _learn(self, returned: str) -> tuple[str, Decoder] | None:
        name = self._by_lower.get(returned.lower())
        known: tuple[str, Decoder] | None = None
        if name is not None:
            special = name.lower() in GUID_ATTRIBUTES or name.lower() in SID_ATTRIBUTES
            known = (name, row_value if special else _text_values)
        self._names[returned] = known
        return known

    def __call__(self, dn: str, entry: Mapping[str, list[bytes]]) -> dict[str, RowValue]:
        data = self._empty.copy()
        data[self._dn_field] = dn
        names = self._names
        for returned, raw_values in entry.items():
            try:
                known = names[returned]
            except KeyError:
                known = self._learn(returned)
            if known is not None:
                name, decode = known
                data[name] = decode(name, raw_values)
        return data
