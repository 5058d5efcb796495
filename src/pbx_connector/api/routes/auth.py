"""Authentication of phone-system users over HTTP: the directory settings, checking a
password, "Test Authentication", and the audit log.

Passwords only ever travel inward: the user's password of a check or test, and the
service account's `bind_password`, are taken as `SecretStr` (so no repr or validation
error shows them) and no response holds one. The rules themselves, including which
password a test of unsaved settings may send where, are the core's (`app.auth`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import ConfigDict, Field, SecretStr

from pbx_connector.api.deps import AnyToken, Core, Reader, Writer
from pbx_connector.errors import ConfigError
from pbx_connector.models.auth import (
    AuthAttempt,
    AuthCheckResult,
    AuthSettingsView,
    AuthTestResult,
)
from pbx_connector.models.base import Model, Page
from pbx_connector.service.access import require_read
from pbx_connector.service.auth import SETTING_HELP

router = APIRouter(tags=["auth"])


def _setting(name: str) -> Any:
    """A settings field: left out (or null) keeps the value, as a form that sends only
    what changed expects. The description is the core's help text."""
    return Field(default=None, description=SETTING_HELP[name])


class SettingsChange(Model):
    """Settings to change; every field is optional and the rest stay as they are. The
    values are text, as `GET /auth/settings` shows them; a JSON number is taken as its
    text, so `{"timeout": 2.5}` works, and `NaN` is refused by the core like `"nan"`."""

    model_config = ConfigDict(coerce_numbers_to_str=True)

    uri: str | None = _setting("uri")
    security: str | None = _setting("security")
    ca_file: str | None = _setting("ca_file")
    verify: str | None = _setting("verify")
    timeout: str | None = _setting("timeout")
    bind_user: str | None = _setting("bind_user")
    bind_dn: str | None = _setting("bind_dn")
    bind_password: SecretStr | None = Field(
        default=None,
        description=SETTING_HELP["bind_password"]
        + " (write-only: never returned; an empty string removes it)",
    )
    search_base: str | None = _setting("search_base")
    user_attribute: str | None = _setting("user_attribute")
    user_filter: str | None = _setting("user_filter")
    lockout_failures: str | None = _setting("lockout_failures")
    lockout_seconds: str | None = _setting("lockout_seconds")
    failure_delay_ms: str | None = _setting("failure_delay_ms")

    def assignments(self) -> dict[str, str]:
        """The given settings as the core takes them: name -> text, secret revealed."""
        return {
            name: value.get_secret_value() if isinstance(value, SecretStr) else value
            for name, value in self
            if value is not None
        }


class Credentials(Model):
    """A username and the password to check for it."""

    username: str
    password: SecretStr = Field(description="checked, never stored, logged or returned")


class AuthTestRequest(Credentials):
    """A test, of the saved settings or (with `settings`) of unsaved ones."""

    settings: SettingsChange | None = Field(
        default=None,
        description="unsaved settings to test instead of the saved ones; nothing is saved. "
        "When uri, security, ca_file, verify or bind_dn differ from the saved ones, the "
        "saved bind_password is not used: give bind_password here to test them",
    )


@router.get("/auth/settings")
def get_settings(app: Core, who: Reader) -> AuthSettingsView:
    """The directory settings. Admin only: they describe the directory and its service
    account. The service account's password shows only as `bind_password_set`."""
    require_read(who.can_write, "auth_settings")
    return app.auth.settings()


@router.patch("/auth/settings")
def update_settings(body: SettingsChange, app: Core, _: Writer) -> AuthSettingsView:
    """Change some settings and answer all of them. Every value is validated before any
    is saved; a refused one is a 422 naming it in `field`, and nothing changes."""
    return app.auth.update_settings(body.assignments())


@router.post("/auth/check")
def check_password(body: Credentials, app: Core, who: AnyToken) -> AuthCheckResult:
    """Is this the user's password? An attempt like a login: the lockout, the answer
    delay and the audit log all apply, so it is for an admin token (origin `api`) or a
    PBX's lookup token (origin `pbx`) only."""
    return app.auth.check_for(who, body.username, body.password.get_secret_value())


@router.post("/auth/test")
def authentication_test(body: AuthTestRequest, app: Core, _: Writer) -> AuthTestResult:
    """The admin's "Test Authentication": every step, never a password. It counts toward the lockout
    and is logged with origin `test`, like the command's test."""
    password = body.password.get_secret_value()
    if body.settings is None:
        return app.auth.test(body.username, password)
    try:
        return app.auth.test(body.username, password, settings=body.settings.assignments())
    except ConfigError as exc:
        # The refused value is inside `settings` of this body: say so, as a validation
        # error of the same field would.
        field = f"settings.{exc.field}" if exc.field else "settings"
        raise ConfigError(exc.message, field=field) from exc


@router.get("/auth/log")
def attempts(
    app: Core,
    _: Reader,
    username: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
) -> Page[AuthAttempt]:
    """The audit log, newest first; only `username`'s attempts when given (spelt any way
    a user may type it). Viewers may read it: it holds no password."""
    return app.auth.log(username or None, limit=limit, offset=offset)
