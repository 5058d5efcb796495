"""The admin pages over real HTTP: `serve` started as for the API tests (SQLite and the
throwaway PostgreSQL), with no answer delay on failed sign-ins and a password for the
built-in admin."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.api.conftest import Server, server  # noqa: F401 - the fixture, shared

ADMIN_PASSWORD = "admin-pass-123"
VIEWER_PASSWORD = "viewer-pass-123"


@pytest.fixture
def web(server: Server) -> Server:  # noqa: F811 - the shared fixture
    server.cli("auth", "settings", "failure_delay_ms=0")
    server.cli("users", "passwd", "admin", stdin=f"{ADMIN_PASSWORD}\n")
    return server


def add_user(into: Server, username: str, password: str, roles: str = "") -> None:
    fields = [f"username={username}", "auth=internal"] + ([f"roles={roles}"] if roles else [])
    into.cli("users", "add", *fields)
    into.cli("users", "passwd", username, stdin=f"{password}\n")


def hidden(html: str, name: str) -> str:
    """The value of a form's hidden field."""
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, html
    return match[1]


def sign_in(
    client: httpx.Client, username: str = "admin", password: str = ADMIN_PASSWORD
) -> httpx.Response:
    """Open the sign-in form and send it, as a browser on the server's own origin does."""
    form = client.get("/login")
    assert form.status_code == 200, form.text
    return client.post(
        "/login",
        data={
            "csrf_token": hidden(form.text, "csrf_token"),
            "username": username,
            "password": password,
            "next": "/",
        },
        headers={"Origin": str(client.base_url).rstrip("/")},
    )


def csrf_of(client: httpx.Client) -> str:
    """The session's CSRF token, as the Connector page puts it in its forms."""
    return hidden(client.get("/").text, "csrf_token")
