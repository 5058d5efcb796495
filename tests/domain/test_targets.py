"""The three targets: which values each field accepts, and what it stores."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pbx_connector.domain.passwords import verify_secret
from pbx_connector.domain.phone import PhoneNormaliser
from pbx_connector.domain.targets import (
    PHONEBOOK,
    SPEEDDIALS,
    TARGETS,
    USERS,
    CleanRecord,
    TargetSpec,
    clean_record,
    parse_bool,
    parse_extension_digits,
    target,
)
from pbx_connector.errors import ConfigError, RecordError, RowError
from pbx_connector.store.records import to_columns

DE = PhoneNormaliser("DE")


def clean(spec: TargetSpec, raw: dict[str, str], *, partial: bool = False) -> CleanRecord:
    return clean_record(spec, raw, DE, partial=partial)


def user(**fields: str) -> CleanRecord:
    return clean(USERS, {"username": "max", **fields})


def rejected(spec: TargetSpec, raw: dict[str, str], *, partial: bool = False) -> RecordError:
    with pytest.raises(RecordError) as info:
        clean(spec, raw, partial=partial)
    return info.value


# --- the specs ---------------------------------------------------------------------------


def test_targets_by_name() -> None:
    assert set(TARGETS) == {"users", "phonebook", "speeddials"}
    assert target("users") is USERS
    assert target("phonebook") is PHONEBOOK
    assert target("speeddials") is SPEEDDIALS
    with pytest.raises(KeyError, match="unknown target 'contacts'"):
        target("contacts")


def test_phonebook_fields_are_the_seed_columns_and_more() -> None:
    seed = ["displayname", "phone", "givenname", "surname", "organisation", "email"]
    seed += ["mobile", "homephone", "fax"]
    assert list(PHONEBOOK.field_names[: len(seed)]) == seed
    assert "owner" in PHONEBOOK.field_names


@pytest.mark.parametrize(
    ("spec", "required", "phones", "secrets", "key"),
    [
        (
            USERS,
            {"username"},
            ("phone", "mobile", "homephone", "fax"),
            ("password", "pin"),
            ("username",),
        ),
        (
            PHONEBOOK,
            {"displayname"},
            ("phone", "mobile", "homephone", "fax"),
            (),
            ("displayname", "phone"),
        ),
        (SPEEDDIALS, {"code", "number"}, ("number",), (), ("code",)),
    ],
)
def test_spec_properties(
    spec: TargetSpec,
    required: set[str],
    phones: tuple[str, ...],
    secrets: tuple[str, ...],
    key: tuple[str, ...],
) -> None:
    assert {f.name for f in spec.fields if f.required} == required
    assert spec.phone_fields == phones
    assert spec.secret_fields == secrets
    assert spec.default_key == key
    assert set(key) <= set(spec.field_names)
    assert len(set(spec.field_names)) == len(spec.field_names)
    with pytest.raises(KeyError):
        spec.spec("no such field")


def test_describe() -> None:
    assert USERS.describe({"username": "max", "displayname": "Max"}) == "max"
    assert PHONEBOOK.describe({"displayname": "Reception"}) == "Reception"
    assert SPEEDDIALS.describe({"code": "*1", "number": "0991 12345"}) == "*1 → 0991 12345"


# --- required fields and lengths ---------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", "   ", "\t"])
def test_empty_displayname_of_a_phonebook_entry_is_rejected(value: str | None) -> None:
    raw = {"phone": "0991 12345"} if value is None else {"displayname": value}
    error = rejected(PHONEBOOK, raw)
    assert error.field == "displayname"
    assert str(error) == 'field "displayname": is empty but required'
    assert isinstance(error, RowError)


@pytest.mark.parametrize(
    ("spec", "raw", "field"),
    [
        (USERS, {"displayname": "Max"}, "username"),
        (SPEEDDIALS, {"number": "0991 12345"}, "code"),
        (SPEEDDIALS, {"code": "1"}, "number"),
    ],
)
def test_required_fields(spec: TargetSpec, raw: dict[str, str], field: str) -> None:
    assert rejected(spec, raw).field == field


def test_displayname_of_80_characters_is_the_maximum() -> None:
    assert clean(PHONEBOOK, {"displayname": "x" * 80}).values["displayname"] == "x" * 80
    error = rejected(PHONEBOOK, {"displayname": "x" * 81})
    assert error.field == "displayname"
    assert error.message == "is 81 characters long, at most 80 are allowed"


def test_length_is_counted_after_stripping() -> None:
    assert clean(PHONEBOOK, {"displayname": "  " + "x" * 80 + "  "}).values["displayname"] == (
        "x" * 80
    )


def test_length_counts_characters_not_bytes() -> None:
    name = "Ä" * 80
    assert clean(PHONEBOOK, {"displayname": name}).values["displayname"] == name


def test_values_are_stripped_and_missing_fields_take_their_empty_value() -> None:
    record = clean(PHONEBOOK, {"displayname": "  Max Muster ", "notes": " n "})
    assert record.values["displayname"] == "Max Muster"
    assert record.values["notes"] == "n"
    assert record.values["surname"] == ""
    assert record.values["owner"] == ""
    assert set(record.values) == set(PHONEBOOK.field_names)
    assert record.warnings == []


def test_empty_values_of_each_user_kind() -> None:
    values = user().values
    assert values["extension"] is None
    assert values["password"] is None
    assert values["pin"] is None
    assert values["auth"] == "internal"
    assert values["roles"] == []
    assert values["enabled"] is True
    assert values["email"] == ""


# --- e-mail, username, extension, code ---------------------------------------------------


@pytest.mark.parametrize(
    "email", ["max@example.com", "m.muster+tag@mail.example.co.uk", "zoë@exämple.de"]
)
def test_good_email(email: str) -> None:
    assert user(email=email).values["email"] == email


@pytest.mark.parametrize(
    "email",
    ["max", "max@", "@example.com", "max@example", "max@@example.com", "max muster@example.com",
     "max@example.com.", "max@exa mple.com"],
)  # fmt: skip
def test_bad_email(email: str) -> None:
    error = rejected(USERS, {"username": "max", "email": email})
    assert error.field == "email"
    assert error.message == f"{email!r} is not a valid e-mail address"


def test_username_is_lowercased_with_a_warning_saying_what_changed() -> None:
    record = clean(USERS, {"username": "Max.Muster"})
    assert record.values["username"] == "max.muster"
    assert record.warnings == [("username", "'Max.Muster' stored in lower case as 'max.muster'")]


def test_lowercase_username_gives_no_warning() -> None:
    assert user().warnings == []


@given(st.from_regex(r"[A-Za-z0-9._@+\-]{1,20}", fullmatch=True))
def test_any_valid_username_is_stored_in_lower_case(name: str) -> None:
    record = clean(USERS, {"username": name})
    assert record.values["username"] == name.lower()
    assert bool(record.warnings) == (name != name.lower())


@pytest.mark.parametrize("name", ["max muster", "max/muster", "max;", "max:1", "ma'x", "<max>"])
def test_invalid_username_characters(name: str) -> None:
    error = rejected(USERS, {"username": name})
    assert error.field == "username"
    assert "is not a valid username" in error.message
    assert repr(name) in error.message


def test_username_length() -> None:
    assert user(username="a" * 64).values["username"] == "a" * 64
    assert rejected(USERS, {"username": "a" * 65}).field == "username"


def test_username_in_compatibility_characters_is_stored_plain_with_a_warning() -> None:
    record = clean(USERS, {"username": "ｃａｒｏｌ"})
    assert record.values["username"] == "carol"
    assert record.warnings == [("username", "'ｃａｒｏｌ' stored in its plain form as 'carol'")]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("аdmin", "mixes letters of several scripts"),
        ("ѕсоре", "looks like the name 'scope'"),
        ("max\u200b", "(U+200B) is not allowed"),
    ],
)
def test_look_alike_usernames_are_invalid(name: str, reason: str) -> None:
    error = rejected(USERS, {"username": name})
    assert error.field == "username"
    assert reason in error.message
    assert error.message.startswith(f"{name!r} is not a valid username")
    owner = rejected(PHONEBOOK, {"displayname": "Max", "owner": name})
    assert owner.field == "owner"


def test_owner_is_a_username_in_lower_case_without_a_warning() -> None:
    record = clean(PHONEBOOK, {"displayname": "Max", "owner": "JDoe"})
    assert record.values["owner"] == "jdoe"
    assert record.warnings == []
    assert clean(PHONEBOOK, {"displayname": "Max", "owner": "ｊｄｏｅ"}).values["owner"] == "jdoe"
    assert rejected(PHONEBOOK, {"displayname": "Max", "owner": "j doe"}).field == "owner"


@pytest.mark.parametrize("extension", ["30000", "1", "*31", "#1", "12*#"])
def test_good_extension(extension: str) -> None:
    assert user(extension=extension).values["extension"] == extension


@pytest.mark.parametrize("extension", ["30 000", "ext. 12", "+4999112345", "12-3", "a"])
def test_bad_extension(extension: str) -> None:
    error = rejected(USERS, {"username": "max", "extension": extension})
    assert error.field == "extension"
    assert error.message == f"{extension!r} is not an extension (digits, * and # only)"


@pytest.mark.parametrize("code", ["1", "*1", "#12", "0049"])
def test_good_speed_dial_code(code: str) -> None:
    record = clean(SPEEDDIALS, {"code": code, "number": "0991 12345"})
    assert record.values["code"] == code


@pytest.mark.parametrize("code", ["a", "1 2", "+1", "1-2"])
def test_bad_speed_dial_code(code: str) -> None:
    error = rejected(SPEEDDIALS, {"code": code, "number": "0991 12345"})
    assert error.field == "code"
    assert "is not a speed dial code" in error.message


# --- secrets -----------------------------------------------------------------------------


@pytest.mark.parametrize("pin", ["1234", "0000", "123456789012"])
def test_good_pin(pin: str) -> None:
    assert user(pin=pin).values["pin"] == pin


@pytest.mark.parametrize("pin", ["123", "12a4", "12 34", "-1234", "1234567890123"])
def test_bad_pin(pin: str) -> None:
    error = rejected(USERS, {"username": "max", "pin": pin})
    assert error.field == "pin"
    # The message must not repeat the secret.
    assert pin not in str(error)


def test_password_is_checked_but_not_hashed_by_validation() -> None:
    assert user(password="Geheim 1").values["password"] == "Geheim 1"
    assert rejected(USERS, {"username": "max", "password": "x" * 1025}).field == "password"


def test_secrets_are_stored_hashed_never_plain() -> None:
    record = user(password="Geheim-1", pin="4711")
    row = to_columns(USERS, record)
    assert "password" not in row
    assert "pin" not in row
    assert row["password_hash"] != "Geheim-1"
    assert "Geheim-1" not in row["password_hash"]
    assert "4711" not in row["pin_hash"]
    assert verify_secret(row["password_hash"], "Geheim-1")
    assert verify_secret(row["pin_hash"], "4711")
    assert not verify_secret(row["password_hash"], "4711")
    assert "Geheim-1" not in repr(row)


def test_no_secret_stores_no_hash() -> None:
    row = to_columns(USERS, user())
    assert row["password_hash"] is None
    assert row["pin_hash"] is None


# --- auth, roles, enabled ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "stored"), [("internal", "internal"), ("LDAP", "ldap"), (" None ", "none")]
)
def test_auth_methods(value: str, stored: str) -> None:
    assert user(auth=value).values["auth"] == stored


@pytest.mark.parametrize("value", ["kerberos", "ad", "local"])
def test_unknown_auth_method(value: str) -> None:
    error = rejected(USERS, {"username": "max", "auth": value})
    assert error.field == "auth"
    assert error.message == f"{value!r} is not an authentication method (internal, ldap, none)"


@pytest.mark.parametrize(
    ("value", "roles"),
    [
        ("admin", ["admin"]),
        ("sales, admin", ["admin", "sales"]),
        ("sales;admin;;sales", ["admin", "sales"]),
        ("sales admin\tsupport", ["admin", "sales", "support"]),
        (" , ; ", []),
    ],
)
def test_roles_list(value: str, roles: list[str]) -> None:
    assert user(roles=value).values["roles"] == roles


@given(st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), max_size=6), st.data())
def test_roles_are_the_set_of_names_in_order(names: list[str], data: st.DataObject) -> None:
    separators = st.sampled_from([",", ";", " ", ", ", " ; ", "\t"])
    text = "".join(name + data.draw(separators) for name in names)
    assert user(roles=text).values["roles"] == sorted(set(names))


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("1", True), ("true", True), ("TRUE", True), ("yes", True), ("y", True), ("on", True),
        ("ja", True), ("J", True), ("enabled", True), (" Ja ", True),
        ("0", False), ("false", False), ("No", False), ("n", False), ("off", False),
        ("nein", False), ("NEIN", False), ("disabled", False),
        ("", None), ("maybe", None), ("2", None), ("wahr", None),
    ],
)  # fmt: skip
def test_parse_bool(value: str, parsed: bool | None) -> None:
    assert parse_bool(value) is parsed


@pytest.mark.parametrize(("value", "enabled"), [("ja", True), ("nein", False), ("0", False)])
def test_enabled(value: str, enabled: bool) -> None:
    assert user(enabled=value).values["enabled"] is enabled


def test_enabled_must_be_a_boolean() -> None:
    error = rejected(USERS, {"username": "max", "enabled": "maybe"})
    assert error.field == "enabled"
    assert error.message == "'maybe' is not true or false"


# --- phone fields ------------------------------------------------------------------------


def test_phone_fields_keep_the_value_and_get_their_e164_form() -> None:
    record = clean(
        PHONEBOOK,
        {
            "displayname": "Max",
            "phone": "+49 (0) 991 12345",
            "mobile": "0171 2345678",
            "fax": "0991/123-99",
        },
    )
    assert record.values["phone"] == "+49 (0) 991 12345"
    assert record.values["mobile"] == "0171 2345678"
    assert record.e164 == {
        "phone": "+4999112345",
        "mobile": "+491712345678",
        "homephone": None,
        "fax": "+4999112399",
    }
    assert record.warnings == []


def test_internal_extension_in_a_phone_field_is_no_problem() -> None:
    record = clean(PHONEBOOK, {"displayname": "Reception", "phone": "30000"})
    assert record.values["phone"] == "30000"
    assert record.e164["phone"] is None
    assert record.warnings == []


def test_unnormalisable_number_is_kept_with_a_warning() -> None:
    record = clean(PHONEBOOK, {"displayname": "Max", "phone": "ask reception"})
    assert record.values["phone"] == "ask reception"
    assert record.e164["phone"] is None
    assert record.warnings == [
        ("phone", "'ask reception' kept as given: not a phone number (no digits to dial)")
    ]


def test_phone_normalisation_uses_the_region_and_prefix() -> None:
    raw = {"code": "1", "number": "0 01 2345678"}
    record = clean_record(SPEEDDIALS, raw, PhoneNormaliser("AT", "0"))
    assert record.e164 == {"number": "+4312345678"}


def test_phone_number_length() -> None:
    number = "0" + "9" * 39
    assert clean(PHONEBOOK, {"displayname": "Max", "phone": number}).values["phone"] == number
    assert rejected(PHONEBOOK, {"displayname": "Max", "phone": number + "9"}).field == "phone"


def test_speed_dial() -> None:
    record = clean(SPEEDDIALS, {"code": "*7", "number": "0991 12345", "displayname": "Support"})
    assert record.values == {"code": "*7", "number": "0991 12345", "displayname": "Support"}
    assert record.e164 == {"number": "+4999112345"}


# --- partial records (a hand edit of some fields) ----------------------------------------


def test_partial_checks_only_the_given_fields() -> None:
    record = clean(PHONEBOOK, {"phone": "0991 12345"}, partial=True)
    assert record.values == {"phone": "0991 12345"}
    assert record.e164 == {"phone": "+4999112345"}


def test_partial_still_rejects_what_is_given() -> None:
    assert rejected(PHONEBOOK, {"displayname": ""}, partial=True).field == "displayname"
    assert rejected(USERS, {"email": "nope"}, partial=True).field == "email"


def test_partial_with_an_emptied_optional_field() -> None:
    record = clean(USERS, {"extension": "", "roles": ""}, partial=True)
    assert record.values == {"extension": None, "roles": []}


def test_partial_ignores_names_that_are_not_fields() -> None:
    assert clean(USERS, {"colour": "blue"}, partial=True).values == {}


def test_partial_lowercases_the_username_with_a_warning() -> None:
    record = clean(USERS, {"username": "JDoe"}, partial=True)
    assert record.values == {"username": "jdoe"}
    assert record.warnings == [("username", "'JDoe' stored in lower case as 'jdoe'")]


def test_partial_record_stores_only_its_columns() -> None:
    row = to_columns(USERS, clean(USERS, {"mobile": "0171 2345678"}, partial=True))
    # The E.164 form, and its digits last first (the key of a caller-name lookup).
    assert row == {
        "mobile": "0171 2345678",
        "mobile_e164": "+491712345678",
        "mobile_rev": "876543217194",
    }


# --- control characters ------------------------------------------------------------------


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x07", "\x1b", "\x1f", "\n", "\r", "\x0b"])
@pytest.mark.parametrize(
    ("spec", "field", "base"),
    [
        (PHONEBOOK, "displayname", {}),
        (PHONEBOOK, "phone", {"displayname": "Max"}),
        (PHONEBOOK, "email", {"displayname": "Max"}),
        (PHONEBOOK, "homepage", {"displayname": "Max"}),
        (USERS, "username", {}),
        (USERS, "extension", {"username": "max"}),
        (USERS, "roles", {"username": "max"}),
        (USERS, "pin", {"username": "max"}),
        (SPEEDDIALS, "code", {"number": "1"}),
    ],
)
def test_control_characters_are_refused_naming_the_field(
    spec: TargetSpec, field: str, base: dict[str, str], char: str
) -> None:
    error = rejected(spec, {**base, field: f"12{char}34"})
    assert error.field == field
    assert error.message.endswith("at character 3, which cannot be stored")
    assert f"(U+{ord(char):04X})" in error.message
    assert ("a line break" in error.message) == (char in "\r\n")


def test_a_control_character_in_a_secret_is_refused_without_repeating_it() -> None:
    error = rejected(USERS, {"username": "max", "password": "Geheim\x00Wort"})
    assert error.field == "password"
    assert "Geheim" not in str(error)
    assert (
        error.message
        == "contains a control character (U+0000) at character 7, which cannot be stored"
    )


def test_tabs_are_kept_and_notes_may_have_several_lines() -> None:
    record = clean(PHONEBOOK, {"displayname": "A\tB", "notes": "one\r\ntwo\n\tthree"})
    assert record.values["displayname"] == "A\tB"
    assert record.values["notes"] == "one\r\ntwo\n\tthree"
    error = rejected(PHONEBOOK, {"displayname": "A", "notes": "one\x00two"})
    assert error.field == "notes"
    assert rejected(PHONEBOOK, {"displayname": "A\nB"}).field == "displayname"


def test_leading_and_trailing_whitespace_controls_are_stripped_not_refused() -> None:
    assert clean(PHONEBOOK, {"displayname": "\nMax\r\n"}).values["displayname"] == "Max"


def test_unicode_that_is_not_printable_but_no_control_character_is_kept() -> None:
    name = "Max\u00a0Muster\u200b"  # no-break space, zero-width space
    assert clean(PHONEBOOK, {"displayname": name}).values["displayname"] == name


# --- the extension from the direct number --------------------------------------------------


def test_an_extension_from_the_variable_wins() -> None:
    record = clean(USERS, {"username": "max", "extension": "42", "phone": "+49 89 3005"})
    assert record.values["extension"] == "42"
    assert record.e164["phone"] == "+49893005"
    assert record.warnings == []


def test_a_direct_number_without_an_extension_gives_a_warning() -> None:
    record = clean(USERS, {"username": "max", "extension": "", "phone": "+49 89 3005"})
    assert record.values["extension"] is None
    assert record.values["phone"] == "+49 89 3005"
    assert record.e164["phone"] == "+49893005"
    assert record.warnings == [
        (
            "extension",
            "no extension could be derived from the direct number '+49 89 3005': it has no "
            "DIN 5008 extension part (like '-100'); the user keeps the number but has no "
            "extension",
        )
    ]


def test_extension_digits_take_the_end_of_the_direct_number() -> None:
    raw = {"username": "max", "extension": "", "phone": "+49 (0)89 3005-0 123"}
    record = clean_record(USERS, raw, DE, extension_digits=3)
    assert record.values["extension"] == "123"
    assert record.warnings == []
    raw = {"username": "max", "extension": "", "phone": "089 3005 4711"}
    assert clean_record(USERS, raw, DE, extension_digits=4).values["extension"] == "4711"


def test_extension_digits_longer_than_the_number_give_a_warning() -> None:
    raw = {"username": "max", "extension": "", "phone": "3005"}
    record = clean_record(USERS, raw, DE, extension_digits=4)
    assert record.values["extension"] is None
    [(field, message)] = record.warnings
    assert field == "extension"
    assert "and not more than 4 digits" in message


@pytest.mark.parametrize(
    "raw",
    [
        {"username": "max", "phone": "+49 89 3005"},  # extension not managed
        {"username": "max", "extension": ""},  # no direct number
        {"username": "max", "extension": "", "phone": ""},
    ],
)
def test_no_warning_when_there_is_nothing_to_derive(raw: dict[str, str]) -> None:
    record = clean_record(USERS, raw, DE, extension_digits=3)
    assert record.values["extension"] is None
    assert record.warnings == []


def test_derivation_in_a_partial_record() -> None:
    raw = {"extension": "", "phone": "+49 89 3005 77"}
    record = clean_record(USERS, raw, DE, partial=True, extension_digits=2)
    assert record.values == {"extension": "77", "phone": "+49 89 3005 77"}
    assert clean(USERS, {"extension": ""}, partial=True).warnings == []


def test_the_phonebook_derives_nothing() -> None:
    record = clean_record(PHONEBOOK, {"displayname": "A", "phone": "+49 89 3005"}, DE)
    assert record.warnings == []


@pytest.mark.parametrize(("text", "value"), [("", None), ("  ", None), ("1", 1), (" 4 ", 4),
                                             ("10", 10)])  # fmt: skip
def test_parse_extension_digits(text: str, value: int | None) -> None:
    assert parse_extension_digits(text) == value


@pytest.mark.parametrize("text", ["0", "11", "-1", "three", "２", "1.5", "99999999999999999999"])
def test_bad_extension_digits(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_extension_digits(text)
    assert info.value.field == "extension_digits"
    assert "from 1 to 10" in info.value.message
