"""Records of the three targets as the core returns them: one model per target.

The fields are in the order of the target's fields (`domain.targets`), each phone field
followed by its E.164 form, so that `model_dump(mode="json")` is exactly the JSON that
`users list --json`, `phonebook list --json` and `speeddials list --json` have always
printed. Secrets never leave the store: a user shows only whether a password or PIN is
set.
"""

from __future__ import annotations

from pydantic import Field

from pbx_connector.models.base import Model


class Origin(Model):
    """Which profile imported a record, and the record's key in that profile's source."""

    profile: str | None = Field(description="name of the profile that imported the record")
    key: str = Field(description="the record's key in that profile's source")


class User(Model):
    """A user of the phone system."""

    id: int
    username: str = Field(description="login name, case-folded in one spelling (NFKC)")
    displayname: str
    givenname: str
    surname: str
    email: str
    extension: str | None = Field(description="internal extension; unique when set")
    phone: str = Field(description="direct number (DID), as given")
    phone_e164: str | None
    mobile: str
    mobile_e164: str | None
    homephone: str
    homephone_e164: str | None
    fax: str
    fax_e164: str | None
    organisation: str
    job: str
    password_set: bool = Field(description="a local password is set (it is never shown)")
    pin_set: bool = Field(description="a PIN is set (it is never shown)")
    auth: str = Field(description="internal, ldap or none")
    roles: list[str]
    enabled: bool
    builtin: bool = Field(description="the built-in admin user, which cannot be deleted")
    origin: Origin | None = Field(description="null for a user made by hand")


class PhonebookEntry(Model):
    """An entry of the global phonebook, or of one user's private phonebook."""

    id: int
    displayname: str
    phone: str
    phone_e164: str | None
    givenname: str
    surname: str
    organisation: str
    email: str
    mobile: str
    mobile_e164: str | None
    homephone: str
    homephone_e164: str | None
    fax: str
    fax_e164: str | None
    notes: str
    homepage: str
    customernumber: str
    owner: str = Field(description="empty for the global phonebook, else the owner's username")
    origin: Origin | None = Field(description="null for an entry made by hand")


class SpeedDial(Model):
    """A short code that dials a number."""

    id: int
    code: str
    number: str
    number_e164: str | None
    displayname: str
    origin: Origin | None = Field(description="null for a speed dial made by hand")


#: A record of any target.
Record = User | PhonebookEntry | SpeedDial

#: The model of each target's records.
RECORD_MODELS: dict[str, type[User] | type[PhonebookEntry] | type[SpeedDial]] = {
    "users": User,
    "phonebook": PhonebookEntry,
    "speeddials": SpeedDial,
}


class EditResult(Model):
    """A record after a hand edit, and what the person who edited it should know."""

    record: Record
    warnings: list[str] = Field(
        default_factory=list,
        description="e.g. that a profile imported the record and its next run will "
        "overwrite the edit",
    )


class RecordTarget(Model):
    """What a face needs to know about a target to offer its fields: its name, how one
    record is called, the fields that can be given by hand, and the secrets, which are
    set one at a time and never shown."""

    name: str
    label: str
    fields: list[str]
    secret_fields: list[str]


class RecordField(Model):
    """One field of a target that can be given by hand, as a form offers it: what kind of
    value it takes and its limits. Secrets are not among them (they are set on their
    own)."""

    name: str
    kind: str = Field(
        description="text, phone, email, username, extension, code, owner, url, auth, roles or bool"
    )
    required: bool
    max_length: int
    multiline: bool = Field(description="may hold line breaks")
    choices: list[str] = Field(
        default_factory=list, description="the only values allowed, when there is such a list"
    )
    description: str = ""


class PhonebookOwner(Model):
    """A user who has a private phonebook, and how many entries it holds."""

    username: str
    entries: int
