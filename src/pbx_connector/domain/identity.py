"""What must be unique among all records of a target, whoever made them.

A sync may only claim an identity that no hand-made record and no other profile holds;
otherwise the row is a conflict, never a silent take-over.

A user is identified by the *skeleton* of the username (see `domain.usernames`): two
names that look alike are one identity, so the second is refused. For an ASCII name the
skeleton is the name itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pbx_connector.domain.usernames import username_skeleton

Identity = tuple[str, ...]


def identities(target: str, values: Mapping[str, Any]) -> list[Identity]:
    if target == "users":
        found: list[Identity] = [("username", username_skeleton(str(values.get("username") or "")))]
        if values.get("extension"):
            found.append(("extension", str(values["extension"])))
        return found
    if target == "speeddials":
        return [("code", str(values.get("code") or ""))]
    return [
        (
            "entry",
            str(values.get("owner") or ""),
            str(values.get("displayname") or ""),
            str(values.get("phone") or ""),
        )
    ]


def describe_identity(identity: Identity) -> str:
    if identity[0] == "entry":
        book = f"{identity[1]}'s private phonebook" if identity[1] else "the global phonebook"
        return f"an entry {identity[2]!r} with number {identity[3]!r} in {book}"
    if identity[0] == "username" and not identity[1].isascii():
        return f"a username that looks like {identity[1]!r}"
    return f"{identity[0]} {identity[1]!r}"
