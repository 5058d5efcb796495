"""Instance-wide settings (key/value), with their defaults declared once."""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select

from pbx_connector.domain.phone import is_valid_region
from pbx_connector.domain.schedule import check_timezone
from pbx_connector.errors import ConfigError
from pbx_connector.store.lookup import parse_networks
from pbx_connector.store.tables import settings

#: The last digits a suffix lookup may compare: fewer would match strangers' numbers,
#: more than E.164 has would never match.
MIN_SUFFIX_DIGITS = 4
MAX_SUFFIX_DIGITS = 15
LOOKUP_MATCHES = ("exact", "suffix")

DEFAULTS: dict[str, tuple[str, str]] = {
    "default_region": (
        "DE",
        "country whose national numbers are meant when a number has no "
        "country code (ISO 3166 code, e.g. DE, AT, CH, US)",
    ),
    "outside_line_prefix": (
        "",
        "dial prefix for an outside line that sources put in front "
        "of numbers (e.g. 0); stripped before normalising",
    ),
    "timezone": (
        "",
        "time zone of profile schedules that name none (e.g. Europe/Berlin); empty: this machine's",
    ),
    "lookup_match": (
        "exact",
        "how a caller-name lookup compares numbers: exact (the whole number) or suffix "
        "(when the whole number matches nothing, its last lookup_suffix_digits digits)",
    ),
    "lookup_suffix_digits": (
        "8",
        f"how many last digits a suffix lookup compares ({MIN_SUFFIX_DIGITS} to "
        f"{MAX_SUFFIX_DIGITS})",
    ),
    "lookup_clients": (
        "",
        "addresses or networks (e.g. 192.168.1.10, 10.0.0.0/8) that may look up numbers "
        "and read directories without a token; empty: none",
    ),
}


def validate_setting(key: str, value: str) -> str:
    if key not in DEFAULTS:
        raise ConfigError(f"unknown setting {key!r}; settings: {', '.join(DEFAULTS)}", field=key)
    value = value.strip()
    if key == "default_region":
        value = value.upper()
        if not is_valid_region(value):
            raise ConfigError(f"{value!r} is not a country code phonenumbers knows", field=key)
    if key == "outside_line_prefix" and value and not value.isdigit():
        raise ConfigError("the outside-line prefix must be digits", field=key)
    if key == "timezone" and value:
        check_timezone(value, field=key)
    if key == "lookup_match":
        value = value.lower()
        if value not in LOOKUP_MATCHES:
            raise ConfigError(
                f"the lookup match must be one of {', '.join(LOOKUP_MATCHES)}", field=key
            )
    if key == "lookup_suffix_digits" and not (
        value.isascii() and value.isdigit() and MIN_SUFFIX_DIGITS <= int(value) <= MAX_SUFFIX_DIGITS
    ):
        raise ConfigError(
            f"the number of digits must be from {MIN_SUFFIX_DIGITS} to {MAX_SUFFIX_DIGITS}",
            field=key,
        )
    if key == "lookup_suffix_digits":
        value = str(int(value))
    if key == "lookup_clients":
        value = ", ".join(str(net) for net in parse_networks(value, key))
    return value


def get_settings(conn: Connection) -> dict[str, str]:
    values = {k: default for k, (default, _) in DEFAULTS.items()}
    for row in conn.execute(select(settings)):
        if row.key in values:
            values[row.key] = row.value
    return values


def set_setting(conn: Connection, key: str, value: str) -> None:
    value = validate_setting(key, value)
    conn.execute(delete(settings).where(settings.c.key == key))
    conn.execute(insert(settings).values(key=key, value=value))
