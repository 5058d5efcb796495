"""Location `upload` of a file source: reading an uploaded file (see `sources.location`)."""

from __future__ import annotations

from collections.abc import Mapping

from pbx_connector.errors import ConfigError
from pbx_connector.sources.location import Location, LocationKind


def _chosen(settings: Mapping[str, str]) -> bool:
    return settings.get("upload", "no") == "yes"


def _check(settings: Mapping[str, str]) -> None:
    raise ConfigError("reading an uploaded file is not available yet", field="upload")


def _build(settings: Mapping[str, str], secrets: Mapping[str, str]) -> Location:
    _check(settings)
    raise AssertionError("unreachable")


UPLOAD = LocationKind("upload", _chosen, _check, _build)
