"""Contracts of authentication: its settings as shown, the answer to a check, the steps
of a test, and one row of the audit log.

No model here holds a password: the service account's password is write-only and shown
only as `bind_password_set`, and a check or test never returns the password it checked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from pbx_connector.models.base import Model

#: How users with method `ldap` are found in the directory, and what each mode means.
AuthMode = Literal["template", "search", "none"]
AUTH_MODES: dict[str, str] = {
    "template": "bind as the user with the bind_user template",
    "search": "search for the user with the service account, then bind as the user",
    "none": "not configured: users with method 'ldap' cannot log in",
}

#: The outcomes of an attempt, as the audit log records them.
AUTH_OUTCOMES: tuple[str, ...] = ("accepted", "rejected", "refused")
#: Where attempts come from: the command line, the API, the web pages' sign-in, and
#: "Test Authentication" (from any face).
AUTH_ORIGINS: tuple[str, ...] = ("cli", "api", "web", "test")

_OUTCOME = "`accepted`, `rejected`, or `refused` (the username is locked)"
_REASON = (
    "why: accepted, empty_password, unknown_user, disabled, method_none, no_password, "
    "bad_password, not_in_directory, ambiguous_user, bad_username, directory_unavailable, "
    "not_configured or locked"
)


class AuthSettingsView(Model):
    """Every authentication setting with its value, as text exactly as stored (a form
    sends text back, and `update_settings` takes text). The service account's password
    is never part of it."""

    uri: str = Field(description="ldap:// or ldaps:// URI(s) of the directory")
    security: str = Field(description="ldaps, starttls or none")
    ca_file: str = Field(description="PEM file of the CA that signed the server certificate")
    verify: str = Field(description="yes or no: check the server certificate")
    timeout: str = Field(description="seconds to wait for a server before trying the next")
    bind_user: str = Field(description="bind template: a DN or UPN in which % is the username")
    bind_dn: str = Field(description="search-then-bind: the service account")
    bind_password_set: bool = Field(
        description="whether the service account's password is set (it is write-only)"
    )
    search_base: str = Field(description="search-then-bind: where users are searched")
    user_attribute: str = Field(description="search-then-bind: the attribute of the username")
    user_filter: str = Field(description="search-then-bind: an extra filter users must match")
    lockout_failures: str = Field(description="failed attempts in a row that lock a username")
    lockout_seconds: str = Field(description="how long the first lock lasts, in seconds")
    failure_delay_ms: str = Field(description="a rejection is answered no sooner than this")
    mode: AuthMode = Field(
        description="how users are found: "
        + "; ".join(f"{name}: {meaning}" for name, meaning in AUTH_MODES.items())
    )


class AuthCheckResult(Model):
    """The answer to "is this the user's password?" (never the password itself)."""

    accepted: bool
    outcome: str = Field(description=_OUTCOME)
    reason: str = Field(description=_REASON)


class AuthTestResult(Model):
    """The answer of "Test Authentication" and every step taken to reach it, in order, as
    `auth test` prints them. No step holds a password."""

    accepted: bool
    outcome: str = Field(description=_OUTCOME)
    reason: str = Field(description=_REASON)
    method: str | None = Field(
        description="internal, ldap or none; null when no such user was checked"
    )
    steps: list[str]


class AuthAttempt(Model):
    """One row of the audit log. Passwords are never logged."""

    at: datetime = Field(description="when the attempt began (UTC)")
    username: str
    method: str = Field(description="internal, ldap, none, or - when no user was checked")
    outcome: str = Field(description=_OUTCOME)
    reason: str = Field(description=_REASON)
    origin: str = Field(description="where the attempt came from: cli, test, api, web or pbx")
