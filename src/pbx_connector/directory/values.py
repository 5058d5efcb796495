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

from pbx_connector.domain.rows import RowValue

#: Attributes holding a GUID as 16 raw bytes (lower case: LDAP names are case-insensitive).
GUID_ATTRIBUTES = frozenset({"objectguid", "msexchmailboxguid", "ms-ds-consistencyguid"})
#: Attributes holding a binary security identifier.
SID_ATTRIBUTES = frozenset({"objectsid", "sidhistory", "securityidentifier"})


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
