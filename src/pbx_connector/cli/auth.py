"""`pbx-connector auth …`: authentication settings, checks, tests and the audit log.

Exit codes: 0 done (or accepted), 1 rejected, 2 invalid input or settings, 3 the store
cannot be used (e.g. locked by another writer for longer than the busy timeout).
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from pbx_connector.cli import base
from pbx_connector.cli.base import parse_assignments
from pbx_connector.errors import ConfigError
from pbx_connector.models.auth import AUTH_MODES, AuthAttempt, AuthSettingsView
from pbx_connector.service.auth import SECRET_SETTINGS, SETTING_HELP

EXIT_REJECTED = 1
#: `bind_password=-` reads the password like `--set-secret bind_password`.
READ_SECRET = "-"


auth_app = typer.Typer(
    help="Authentication of phone-system users (local passwords, LDAP / AD).",
    no_args_is_help=True,
)


def _read_password() -> str:
    """From a prompt on a terminal, else the first line of standard input."""
    if sys.stdin.isatty():
        value: str = typer.prompt("Password", hide_input=True)
        return value
    return sys.stdin.readline().rstrip("\r\n")


def _read_secret(name: str) -> str:
    """A secret setting from a hidden prompt (typed twice) on a terminal, else the first
    line of standard input: never from the command line, where every local user can read
    it. An empty value is refused."""
    if sys.stdin.isatty():
        value: str = typer.prompt(name, hide_input=True, confirmation_prompt=True)
    else:
        value = sys.stdin.readline().rstrip("\r\n")
    if not value.strip():
        raise ConfigError(f"{name} is empty; an empty secret is refused", field=name)
    return value


def _secrets_to_read(values: dict[str, str], named: list[str]) -> list[str]:
    """The secrets to read from the terminal or standard input: those named with
    `--set-secret`, and those assigned `-`; each once."""
    wanted = list(dict.fromkeys(named))
    wanted += [k for k, v in values.items() if k in SECRET_SETTINGS and v == READ_SECRET]
    for name in wanted:
        if name not in SECRET_SETTINGS:
            raise ConfigError(
                f"{name!r} is not a secret setting; secrets: {', '.join(SECRET_SETTINGS)}",
                field=name,
            )
    return list(dict.fromkeys(wanted))


def _shown_settings(view: AuthSettingsView) -> dict[str, str]:
    """The settings as this command has always shown them: the secret last, as `(set)`
    or `(not set)`."""
    shown: dict[str, str] = view.model_dump(exclude={"bind_password_set", "mode"})
    shown["bind_password"] = "(set)" if view.bind_password_set else "(not set)"
    return shown


def _attempt_row(attempt: AuthAttempt) -> dict[str, Any]:
    """One audit-log row with its time to the second."""
    row: dict[str, Any] = attempt.model_dump()
    row["at"] = attempt.at.isoformat(timespec="seconds")
    return row


@auth_app.command("settings")
def auth_settings(
    assignments: list[str] = typer.Argument(None, help="KEY=VALUE pairs to set."),
    set_secret: list[str] = typer.Option(
        None,
        "--set-secret",
        metavar="KEY",
        help="Set the secret KEY (bind_password) from a hidden prompt, or from one line of "
        "standard input when it is not a terminal; never type it on the command line.",
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show or set how users with method 'ldap' are checked against the directory."""
    with base.handled():
        if assignments or set_secret:
            values = parse_assignments(assignments or [])
            for name in _secrets_to_read(values, set_secret or []):
                values[name] = _read_secret(name)
            view = base.state.app.auth.update_settings(values)
        else:
            view = base.state.app.auth.settings()
    shown = _shown_settings(view)
    if as_json:
        base.print_json({**shown, "mode": view.mode})
        return
    base.table(
        ["SETTING", "VALUE", "DESCRIPTION"],
        [[k, v, SETTING_HELP[k]] for k, v in shown.items()],
    )
    typer.echo(f"mode: {view.mode} ({AUTH_MODES[view.mode]})")


@auth_app.command("check")
def auth_check(username: str) -> None:
    """Check USERNAME's password (from standard input or a prompt): prints accepted or
    rejected, exit code 0 or 1, and nothing else (exit code 3 and one error line when the
    store cannot be used)."""
    password = _read_password()
    with base.handled():
        result = base.state.app.auth.check(username, password, origin="cli")
    typer.echo("accepted" if result.accepted else "rejected")
    if not result.accepted:
        raise typer.Exit(EXIT_REJECTED)


@auth_app.command("test")
def auth_test(username: str) -> None:
    """Check USERNAME's password step by step, saying where and why it stops (the
    password itself is never printed)."""
    password = _read_password()
    with base.handled():
        result = base.state.app.auth.test(username, password, on_step=typer.echo)
    if not result.accepted:
        raise typer.Exit(EXIT_REJECTED)


@auth_app.command("log")
def auth_log(
    username: str = typer.Argument(None, help="Only this username."),
    limit: int = typer.Option(50, "--limit", "-n", min=1),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The audit log of authentication attempts, newest first."""
    with base.handled():
        page = base.state.app.auth.log(username, limit)
    rows = [_attempt_row(attempt) for attempt in page.items]
    if as_json:
        base.print_json(rows)
        return
    base.table(
        ["AT", "USERNAME", "METHOD", "OUTCOME", "REASON", "ORIGIN"],
        [
            [r["at"], r["username"], r["method"], r["outcome"], r["reason"], r["origin"]]
            for r in rows
        ],
    )


base.app.add_typer(auth_app, name="auth")
