"""Which source reads which kind of profile: one table, kind -> factory."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial

from pbx_connector.errors import ConfigError
from pbx_connector.sources import peer
from pbx_connector.sources.base import Source
from pbx_connector.sources.files import check_file_settings, open_file_source
from pbx_connector.sources.ldap import DIRECTORY_KINDS, check_directory_settings, open_directory

#: (settings, secrets, attributes, owner) -> a source, built but not yet read.
SourceFactory = Callable[
    [Mapping[str, str], Mapping[str, str], Sequence[str] | None, int | None], Source
]

SOURCES: dict[str, SourceFactory] = {
    "csv": open_file_source,
    **{kind: partial(open_directory, kind) for kind in DIRECTORY_KINDS},
    "peer": peer.open_peer,
}


#: (settings, secrets) -> None, or ConfigError naming the setting: what a kind checks
#: when its settings are set, without contacting anything.
SettingsCheck = Callable[[Mapping[str, str], Mapping[str, str]], None]


def _settings_only(check: Callable[[Mapping[str, str]], None]) -> SettingsCheck:
    """A check of a kind that has no secret to check."""

    def checked(settings: Mapping[str, str], _secrets: Mapping[str, str]) -> None:
        check(settings)

    return checked


SETTINGS_CHECKS: dict[str, SettingsCheck] = {
    "csv": check_file_settings,
    **{kind: _settings_only(partial(check_directory_settings, kind)) for kind in DIRECTORY_KINDS},
    "peer": _settings_only(peer.check_settings),
}


def check_source_settings(
    kind: str, settings: Mapping[str, str], secrets: Mapping[str, str]
) -> None:
    """Check the settings of a profile of this kind that are set (`SETTINGS_CHECKS`);
    only whether each secret is set matters, never its value."""
    check = SETTINGS_CHECKS.get(kind)
    if check is not None:
        check(settings, secrets)


def open_source(
    kind: str,
    settings: Mapping[str, str],
    secrets: Mapping[str, str],
    attributes: Sequence[str] | None = None,
    owner: int | None = None,
) -> Source:
    """Build (not yet read) the source of a profile. Secrets are passed apart from settings
    so that nothing that prints settings can print them. `attributes` are the fields the
    profile uses, for sources that fetch only what is asked (None: everything). `owner`
    is the profile's id: a file source reads an uploaded file only from the profile's
    own upload directory, whatever its `path` says (None: no uploaded file at all)."""
    try:
        factory = SOURCES[kind]
    except KeyError:
        raise ConfigError(f"the {kind!r} source is not available yet") from None
    return factory(settings, secrets, attributes, owner)
