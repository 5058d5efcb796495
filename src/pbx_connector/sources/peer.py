"""The `peer` source: the global phonebook of another pbx-connector over its REST API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pbx_connector.errors import ConfigError
from pbx_connector.sources.base import Source


def check_settings(settings: Mapping[str, str]) -> None:
    """Check a peer profile's settings; ConfigError names the setting."""


def open_peer(
    settings: Mapping[str, str],
    secrets: Mapping[str, str],
    attributes: Sequence[str] | None = None,
) -> Source:
    raise ConfigError("the 'peer' source is not available yet")
