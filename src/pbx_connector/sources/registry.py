"""Which source class reads which kind of profile."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pbx_connector.errors import ConfigError
from pbx_connector.sources.base import Source
from pbx_connector.sources.csv import CsvOptions, CsvSource
from pbx_connector.sources.ldap import DIRECTORY_KINDS, open_directory


def open_source(
    kind: str,
    settings: Mapping[str, str],
    secrets: Mapping[str, str],
    attributes: Sequence[str] | None = None,
) -> Source:
    """Build (not yet read) the source of a profile. Secrets are passed apart from settings
    so that nothing that prints settings can print them. `attributes` are the fields the
    profile uses, for sources that fetch only what is asked (None: everything)."""
    if kind == "csv":
        path = settings.get("path", "").strip()
        if not path:
            raise ConfigError("the CSV path is not set (profile set NAME path=FILE)", field="path")
        return CsvSource(path, CsvOptions.from_settings(settings))
    if kind in DIRECTORY_KINDS:
        return open_directory(kind, settings, secrets, attributes)
    raise ConfigError(f"the {kind!r} source is not available yet")
