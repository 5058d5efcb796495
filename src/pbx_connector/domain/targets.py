"""The three targets a profile writes, their fields and the rules each value must meet.

Everything here is pure: it turns the strings that variables produce into the values the
store holds, or says precisely which field is wrong. Secrets (password, PIN) are only
checked here; hashing happens when a record is written, and only when it changed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from pbx_connector.domain.phone import PhoneNormaliser
from pbx_connector.domain.usernames import UsernameError, canonical_username
from pbx_connector.errors import ConfigError, RecordError

Kind = Literal[
    "text",
    "phone",
    "email",
    "username",
    "extension",
    "secret",
    "pin",
    "auth",
    "roles",
    "bool",
    "code",
    "owner",
    "url",
]

ADMIN_USERNAME = "admin"
AUTH_METHODS = ("internal", "ldap", "none")


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: Kind = "text"
    required: bool = False
    max_length: int = 255
    description: str = ""
    #: Line breaks allowed (other control characters never are).
    multiline: bool = False


@dataclass(frozen=True)
class TargetSpec:
    name: str
    label: str
    fields: tuple[FieldSpec, ...]
    default_key: tuple[str, ...]

    # Cached: the sync asks these for every field of every row.
    @cached_property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @cached_property
    def _by_name(self) -> dict[str, FieldSpec]:
        return {f.name: f for f in self.fields}

    @property
    def phone_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.kind == "phone")

    @property
    def secret_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.kind in ("secret", "pin"))

    def spec(self, name: str) -> FieldSpec:
        return self._by_name[name]

    def describe(self, values: Mapping[str, Any]) -> str:
        """A short human name for a record in plans and messages."""
        if self.name == "users":
            return str(values.get("username") or "")
        if self.name == "speeddials":
            return f"{values.get('code')} → {values.get('number')}"
        return str(values.get("displayname") or "")


USERS = TargetSpec(
    name="users",
    label="user",
    default_key=("username",),
    fields=(
        FieldSpec(
            "username",
            "username",
            required=True,
            max_length=64,
            description="login name; stored case-folded in one spelling (NFKC)",
        ),
        FieldSpec("displayname", max_length=80),
        FieldSpec("givenname"),
        FieldSpec("surname"),
        FieldSpec("email", "email"),
        FieldSpec(
            "extension",
            "extension",
            max_length=20,
            description="internal extension; unique when set",
        ),
        FieldSpec(
            "phone",
            "phone",
            max_length=40,
            description="direct number (DID); the extension is derived from it when it can be",
        ),
        FieldSpec("mobile", "phone", max_length=40),
        FieldSpec("homephone", "phone", max_length=40),
        FieldSpec("fax", "phone", max_length=40),
        FieldSpec("organisation"),
        FieldSpec("job"),
        FieldSpec("password", "secret", max_length=1024, description="stored as an argon2 hash"),
        FieldSpec("pin", "pin", max_length=12, description="digits; stored hashed"),
        FieldSpec("auth", "auth", max_length=16, description="internal, ldap or none"),
        FieldSpec(
            "roles", "roles", max_length=1024, description="comma-separated list of role names"
        ),
        FieldSpec("enabled", "bool", max_length=8, description="true/false, yes/no, 1/0"),
    ),
)

PHONEBOOK = TargetSpec(
    name="phonebook",
    label="phonebook entry",
    default_key=("displayname", "phone"),
    fields=(
        FieldSpec("displayname", required=True, max_length=80),
        FieldSpec("phone", "phone", max_length=40),
        FieldSpec("givenname"),
        FieldSpec("surname"),
        FieldSpec("organisation"),
        FieldSpec("email", "email"),
        FieldSpec("mobile", "phone", max_length=40),
        FieldSpec("homephone", "phone", max_length=40),
        FieldSpec("fax", "phone", max_length=40),
        FieldSpec("notes", max_length=4000, multiline=True),
        FieldSpec("homepage", "url", max_length=1024),
        FieldSpec("customernumber", max_length=64),
        FieldSpec(
            "owner",
            "owner",
            max_length=64,
            description="empty: global phonebook; a username: that user's private one",
        ),
    ),
)

SPEEDDIALS = TargetSpec(
    name="speeddials",
    label="speed dial",
    default_key=("code",),
    fields=(
        FieldSpec("code", "code", required=True, max_length=16, description="digits, * or #"),
        FieldSpec("number", "phone", required=True, max_length=40),
        FieldSpec("displayname", max_length=80),
    ),
)

TARGETS: dict[str, TargetSpec] = {t.name: t for t in (USERS, PHONEBOOK, SPEEDDIALS)}

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_EXTENSION = re.compile(r"[0-9*#]+")
_CODE = re.compile(r"[0-9*#]+")
_PIN = re.compile(r"[0-9]{4,12}")
_ROLE_SPLIT = re.compile(r"[,;\s]+")
#: Control characters no field may hold: C0 except tab, and except line breaks where a
#: field may have several lines. PostgreSQL cannot store NUL; none of them belongs in a
#: name or number.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
#: How many trailing digits of a direct number `extension_digits` may take.
MAX_EXTENSION_DIGITS = 10
_TRUE = {"1", "true", "yes", "y", "on", "ja", "j", "enabled"}
_FALSE = {"0", "false", "no", "n", "off", "nein", "disabled"}


def target(name: str) -> TargetSpec:
    try:
        return TARGETS[name]
    except KeyError:
        raise KeyError(f"unknown target {name!r}") from None


def parse_bool(value: str) -> bool | None:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    return None


@dataclass
class CleanRecord:
    """A validated record: values ready for the store (secrets still in plain text),
    the E.164 forms of its numbers, and remarks worth telling the user."""

    values: dict[str, Any]
    e164: dict[str, str | None]
    warnings: list[tuple[str, str]]


def clean_record(
    spec: TargetSpec,
    raw: Mapping[str, str],
    normaliser: PhoneNormaliser,
    *,
    partial: bool = False,
    extension_digits: int | None = None,
) -> CleanRecord:
    """Validate and normalise the string values of one record.

    Raises `RecordError` naming the field. With `partial`, only the given fields are
    checked (a hand edit of some fields); otherwise missing fields are empty.

    For users, an `extension` that is given but empty is derived from the direct number
    (`phone`) when `extension_digits` says how many of its last digits are the extension;
    otherwise, or when the number is too short, a warning says that the user has a
    direct number but no extension.
    """
    values: dict[str, Any] = {}
    e164: dict[str, str | None] = {}
    warnings: list[tuple[str, str]] = []
    fields = [f for f in spec.fields if f.name in raw] if partial else spec.fields
    get = raw.get
    for f in fields:
        name, kind = f.name, f.kind
        text = get(name, "")
        if text.__class__ is not str:
            text = "" if text is None else str(text)
        text = text.strip()
        if not text:
            if f.required:
                raise RecordError("is empty but required", field=name)
            values[name] = "" if kind in _AS_IS else _empty(f)
            if kind == "phone":
                e164[name] = None
            continue
        if len(text) > f.max_length:
            raise RecordError(
                f"is {len(text)} characters long, at most {f.max_length} are allowed", field=name
            )
        if kind == "secret":
            # A password is exactly what was typed, spaces included.
            text = str(get(name))
        if not text.isprintable():  # cheap; the search below only for the rare rest
            _refuse_control_characters(f, text)
        # Plain text is most of a phonebook: no conversion to dispatch for it.
        values[name] = text if kind in _AS_IS else _convert(f, text, warnings)
        if kind == "phone":
            n = normaliser.normalise(text)
            e164[name] = n.e164
            if n.problem:
                warnings.append((name, f"{text!r} kept as given: {n.problem}"))
    if spec.name == "users" and "extension" in raw and values.get("extension") is None:
        _derive_extension(values, e164, warnings, extension_digits)
    return CleanRecord(values, e164, warnings)


def _refuse_control_characters(f: FieldSpec, text: str) -> None:
    found = (_CONTROL_MULTILINE if f.multiline else _CONTROL).search(text)
    if found is None:
        return
    ch = found.group()
    what = "a line break" if ch in "\r\n" else "a control character"
    # Position, not the value: the field may be a secret.
    raise RecordError(
        f"contains {what} (U+{ord(ch):04X}) at character {found.start() + 1}, "
        "which cannot be stored",
        field=f.name,
    )


def _derive_extension(
    values: dict[str, Any],
    e164: Mapping[str, str | None],
    warnings: list[tuple[str, str]],
    extension_digits: int | None,
) -> None:
    """The extension of a user whose extension variable gave nothing: the last
    `extension_digits` digits of the direct number, or a warning."""
    phone = values.get("phone") or ""
    if not phone:
        return
    number = e164.get("phone") or phone
    digits = "".join(ch for ch in number if ch.isascii() and ch.isdigit())
    if extension_digits and len(digits) > extension_digits:
        values["extension"] = digits[-extension_digits:]
        return
    why = "it has no DIN 5008 extension part (like '-100')"
    if extension_digits:
        why += f" and not more than {extension_digits} digits"
    warnings.append(
        (
            "extension",
            f"no extension could be derived from the direct number {phone!r}: {why}; "
            "the user keeps the number but has no extension",
        )
    )


def parse_extension_digits(text: str) -> int | None:
    """The `extension_digits` setting: empty (off) or how many trailing digits of a user's
    direct number are the extension."""
    text = (text or "").strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_EXTENSION_DIGITS:
        raise ConfigError(
            f"extension_digits must be a number from 1 to {MAX_EXTENSION_DIGITS} "
            f"(or empty), not {text!r}",
            field="extension_digits",
        )
    return int(text)


_AS_IS = frozenset({"text", "phone", "url"})


def _empty(f: FieldSpec) -> Any:
    if f.kind == "roles":
        return []
    if f.kind == "bool":
        return True
    if f.kind == "auth":
        return "internal"
    if f.kind in ("extension", "secret", "pin"):
        return None
    return ""


def _convert(f: FieldSpec, text: str, warnings: list[tuple[str, str]]) -> Any:
    kind = f.kind
    if kind in ("text", "phone", "url"):
        return text
    if kind == "username" or kind == "owner":
        try:
            name = canonical_username(text)
        except UsernameError as exc:
            raise RecordError(str(exc), field=f.name) from None
        if name != text and kind == "username":
            if name == text.lower():
                warnings.append((f.name, f"{text!r} stored in lower case as {name!r}"))
            else:
                warnings.append((f.name, f"{text!r} stored in its plain form as {name!r}"))
        return name
    if kind == "email":
        if not _EMAIL.fullmatch(text):
            raise RecordError(f"{text!r} is not a valid e-mail address", field=f.name)
        return text
    if kind == "extension":
        if not _EXTENSION.fullmatch(text):
            raise RecordError(f"{text!r} is not an extension (digits, * and # only)", field=f.name)
        return text
    if kind == "code":
        if not _CODE.fullmatch(text):
            raise RecordError(
                f"{text!r} is not a speed dial code (digits, * and # only)", field=f.name
            )
        return text
    if kind == "pin":
        if not _PIN.fullmatch(text):
            raise RecordError("must be 4 to 12 digits", field=f.name)
        return text
    if kind == "secret":
        return text
    if kind == "auth":
        method = text.lower()
        if method not in AUTH_METHODS:
            raise RecordError(
                f"{text!r} is not an authentication method ({', '.join(AUTH_METHODS)})",
                field=f.name,
            )
        return method
    if kind == "roles":
        return sorted({r for r in _ROLE_SPLIT.split(text) if r})
    if kind == "bool":
        value = parse_bool(text)
        if value is None:
            raise RecordError(f"{text!r} is not true or false", field=f.name)
        return value
    raise AssertionError(kind)
