"""Location `url` of a file source: reading the file from a URL (see `sources.location`)."""

from __future__ import annotations

from collections.abc import Mapping

from pbx_connector.errors import ConfigError
from pbx_connector.sources.location import Location, LocationKind


def _chosen(settings: Mapping[str, str]) -> bool:
    return bool(settings.get("url", "").strip())


def _check(settings: Mapping[str, str]) -> None:
    raise ConfigError("reading the file from a URL is not available yet", field="url")


def _build(settings: Mapping[str, str], secrets: Mapping[str, str]) -> Location:
    _check(settings)
    raise AssertionError("unreachable")


URL = LocationKind("url", _chosen, _check, _build)
