"""`pbx-connector auth …`: authentication settings, checks, tests and the audit log.

Exit codes: 0 done (or accepted), 1 rejected, 2 invalid input or settings, 3 the store
cannot be used (e.g. locked by another writer for longer than the busy timeout).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from pbx_connector import authentication
from pbx_connector.cli import base
from pbx_connector.errors import ConfigError
from pbx_connector.profiles import parse_assignments
from pbx_connector.store import auth_store

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
    wanted = list(dict.fromkeys(named))
    wanted += [k for k, v in values.items() if k in auth_store.SECRETS and v == READ_SECRET]
    for name in wanted:
        if name not in auth_store.SECRETS:
            raise ConfigError(
                f"{name!r} is not a secret setting; secrets: {', '.join(auth_store.SECRETS)}",
                field=name,
            )
    return list(dict.fromkeys(wanted))


@contextmanager
def _store_handled() -> Iterator[None]:
    """One `error:` line and exit code for the store's failures as for any other error."""
    with base.handled(), auth_store.store_errors():
        yield


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
    if assignments or set_secret:
        with base.handled():
            values = parse_assignments(assignments or [])
            for name in _secrets_to_read(values, set_secret or []):
                values[name] = _read_secret(name)
        with _store_handled():
            cfg = base.tx(lambda conn: auth_store.save(conn, values))
    else:
        with _store_handled():
            cfg = base.tx(auth_store.load)
    shown = cfg.public_dict()
    if as_json:
        base.print_json({**shown, "mode": cfg.mode})
        return
    base.table(
        ["SETTING", "VALUE", "DESCRIPTION"],
        [[k, v, auth_store.AUTH_SETTINGS[k][1]] for k, v in shown.items()],
    )
    modes = {
        "template": "bind as the user with the bind_user template",
        "search": "search for the user with the service account, then bind as the user",
        "none": "not configured: users with method 'ldap' cannot log in",
    }
    typer.echo(f"mode: {cfg.mode} ({modes[cfg.mode]})")


@auth_app.command("check")
def auth_check(username: str) -> None:
    """Check USERNAME's password (from standard input or a prompt): prints accepted or
    rejected, exit code 0 or 1, and nothing else (exit code 3 and one error line when the
    store cannot be used)."""
    password = _read_password()
    with _store_handled():
        result = authentication.authenticate(base.state.engine, username, password, origin="cli")
    typer.echo("accepted" if result.accepted else "rejected")
    if not result.accepted:
        raise typer.Exit(EXIT_REJECTED)


@auth_app.command("test")
def auth_test(username: str) -> None:
    """Check USERNAME's password step by step, saying where and why it stops (the
    password itself is never printed)."""
    password = _read_password()
    with _store_handled():
        result = authentication.authenticate(
            base.state.engine, username, password, origin="test", log=typer.echo
        )
    if not result.accepted:
        raise typer.Exit(EXIT_REJECTED)


@auth_app.command("log")
def auth_log(
    username: str = typer.Argument(None, help="Only this username."),
    limit: int = typer.Option(50, "--limit", "-n", min=1),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The audit log of authentication attempts, newest first."""
    name = username.strip().lower() if username else None
    with _store_handled():
        rows = base.tx(lambda conn: auth_store.list_attempts(conn, name, limit))
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
