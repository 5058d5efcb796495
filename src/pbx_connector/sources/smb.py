"""Location `share` of a file source: reading the file from an SMB/CIFS share (see
`sources.location`)."""

from __future__ import annotations

from collections.abc import Mapping

from pbx_connector.errors import ConfigError
from pbx_connector.sources.location import Location, LocationKind


def _chosen(settings: Mapping[str, str]) -> bool:
    return settings.get("use_share", "no") == "yes"


def _check(settings: Mapping[str, str]) -> None:
    raise ConfigError(
        "reading the file from an SMB/CIFS share is not available yet", field="use_share"
    )


def _build(settings: Mapping[str, str], secrets: Mapping[str, str]) -> Location:
    _check(settings)
    raise AssertionError("unreachable")


SHARE = LocationKind("share", _chosen, _check, _build)
