"""The `xlsx` format of a file source: the cells of one sheet as a person sees them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, BinaryIO

from pbx_connector.errors import ConfigError

if TYPE_CHECKING:
    from pbx_connector.sources.formats import TableReader


def check_settings(settings: Mapping[str, str]) -> None:
    raise ConfigError("the xlsx format is not available yet", field="format")


def read_xlsx(stream: BinaryIO, settings: Mapping[str, str], name: str) -> TableReader:
    check_settings(settings)
    raise AssertionError("unreachable")
