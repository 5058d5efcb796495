"""Contracts of the catalogue: the templates a profile is made from, and the settings of
the instance. A form is drawn from these, so each setting carries what a form needs:
its default, whether it is required or secret, the values it may take, and a description
the page shows as help."""

from __future__ import annotations

from pydantic import Field

from pbx_connector.models.base import Model


class SettingView(Model):
    """One setting of a template. A secret setting is write-only: its value is never
    shown, only whether it is set (see `ProfileView.secrets_set`)."""

    name: str
    default: str = ""
    description: str = ""
    required: bool = False
    secret: bool = False
    #: The values the setting may take; empty: any text its checks accept.
    choices: list[str] = Field(default_factory=list)


class TemplateView(Model):
    """A ready profile recipe. The fields are in the order the catalogue has always been
    printed in (`pbx-connector templates --json`), so that output stays stable."""

    name: str
    label: str
    target: str
    source: str
    #: False for a template whose source is not written yet; it cannot be used.
    available: bool
    description: str
    #: The default key (comma-separated fields identifying a record across runs).
    key: str
    prefilter: str
    #: Every field of the target, in the target's order; empty: not managed.
    variables: dict[str, str]
    #: The settings of this template's source.
    settings: list[SettingView]
    #: The settings every profile has, whatever its template (key, max_delete, region…).
    common_settings: list[SettingView]

    def all_settings(self) -> list[SettingView]:
        """Everything a profile of this template can be given, in the order forms show it."""
        return [*self.settings, *self.common_settings]


class InstanceSettings(Model):
    """Settings of the whole instance; a profile's own `region` and
    `outside_line_prefix` settings take precedence over these."""

    default_region: str = Field(
        "DE",
        description="country whose national numbers are meant when a number has no "
        "country code (ISO 3166 code, e.g. DE, AT, CH, US)",
    )
    outside_line_prefix: str = Field(
        "",
        description="dial prefix for an outside line that sources put in front "
        "of numbers (e.g. 0); stripped before normalising",
    )
    timezone: str = Field(
        "",
        description="time zone of profile schedules that name none (e.g. Europe/Berlin); "
        "empty: this machine's",
    )
    lookup_match: str = Field(
        "exact",
        description="how a caller-name lookup compares numbers: exact (the whole number) or "
        "suffix (when the whole number matches nothing, its last lookup_suffix_digits "
        "digits)",
    )
    lookup_suffix_digits: str = Field(
        "8", description="how many last digits a suffix lookup compares (4 to 15)"
    )
    lookup_clients: str = Field(
        "",
        description="addresses or networks (e.g. 192.168.1.10, 10.0.0.0/8) that may look up "
        "numbers and read directories without a token; empty: none",
    )

    @classmethod
    def meaning(cls, name: str) -> str:
        """The help text of a setting, for tables and forms."""
        return cls.model_fields[name].description or ""
