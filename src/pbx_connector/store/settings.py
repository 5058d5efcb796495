"""Instance-wide settings (key/value), with their defaults declared once."""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select

from pbx_connector.domain.phone import is_valid_region
from pbx_connector.domain.schedule import check_timezone
from pbx_connector.errors import ConfigError
from pbx_connector.store.tables import settings

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
