"""The catalogue of templates and the settings of the instance.

Templates are a fixed table (`pbx_connector.templates`); they are turned into views here
so that the faces never hold the dataclasses the rest of the core works with. Instance
settings live in the store and are checked before any is written: a region that
phonenumbers does not know would make every later run misread national numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pbx_connector.models.catalog import InstanceSettings, SettingView, TemplateView
from pbx_connector.store.settings import get_settings, set_setting, validate_setting
from pbx_connector.templates import COMMON_SETTINGS, TEMPLATES, SettingSpec, Template, get_template

if TYPE_CHECKING:
    from pbx_connector.service.app import App


def setting_view(spec: SettingSpec) -> SettingView:
    return SettingView(
        name=spec.name,
        default=spec.default,
        description=spec.description,
        required=spec.required,
        secret=spec.secret,
        choices=list(spec.choices),
    )


def template_view(template: Template) -> TemplateView:
    return TemplateView(
        name=template.name,
        label=template.label,
        target=template.target,
        source=template.source,
        available=template.available,
        description=template.description,
        key=template.key,
        prefilter=template.prefilter,
        variables=dict(template.variables),
        settings=[setting_view(s) for s in template.settings],
        common_settings=[setting_view(s) for s in COMMON_SETTINGS],
    )


class CatalogService:
    """Templates (read only, no store needed) and instance settings (in the store)."""

    def __init__(self, app: App) -> None:
        self.app = app

    def templates(self) -> list[TemplateView]:
        """Every template, in the order the seed's template overview lists them;
        templates whose source is not written yet are included, marked unavailable."""
        return [template_view(t) for t in TEMPLATES]

    def template(self, name: str) -> TemplateView:
        """One template; `NotFoundError` (listing the known ones) for an unknown name."""
        return template_view(get_template(name))

    def config(self) -> InstanceSettings:
        """The instance settings, defaults filled in."""
        with self.app.reading() as conn:
            return InstanceSettings(**get_settings(conn))

    def set_config(self, values: Mapping[str, str]) -> InstanceSettings:
        """Change instance settings, all or none: every value is checked (a known setting,
        a region phonenumbers knows, a prefix of digits) before the first is written."""
        for key, value in values.items():
            validate_setting(key, value)
        with self.app.transaction() as conn:
            for key, value in values.items():
                set_setting(conn, key, value)
            return InstanceSettings(**get_settings(conn))
