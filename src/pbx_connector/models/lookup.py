"""The answer to "who is calling from this number?" (caller-name lookup)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pbx_connector.models.base import Model

#: Where a name was found, in the order of precedence.
LookupSource = Literal["private", "phonebook", "users", "speeddials"]


class LookupResult(Model):
    """The record a number belongs to: the first by precedence (the called user's private
    phonebook, the global phonebook, users, speed dials), then by lowest id."""

    name: str = Field(
        description="the name to show: a display name, else given name and "
        "surname, else (a user) the username"
    )
    number: str = Field(description="the record's number that matched, as stored")
    e164: str | None = Field(description="its E.164 form; null for an internal number")
    source: LookupSource = Field(
        description="private (the called user's private phonebook), phonebook (the global "
        "phonebook), users or speeddials"
    )
    target: Literal["users", "phonebook", "speeddials"] = Field(
        description="the records the match is one of (its id is one of these)"
    )
    id: int = Field(description="the record's id (GET /api/v1/{target}/{id})")
    field: str = Field(
        description="the field that matched: phone, mobile, homephone, "
        "extension (users) or number (speed dials)"
    )
    owner: str | None = Field(description="the owner of a private phonebook entry, else null")
    organisation: str = Field(description="the record's organisation; empty when none")
    match: Literal["exact", "suffix"] = Field(
        description="exact: the whole number; suffix: only its last lookup_suffix_digits digits"
    )
    asked: str = Field(
        description="the number asked for, as it was compared: its E.164 form, "
        "or an internal number's digits"
    )
