"""`pbx-connector token …`: API tokens."""

from __future__ import annotations

import typer

from pbx_connector.cli.base import MAX_INT, app, handled, print_json, state, table

token_app = typer.Typer(help="API tokens (Authorization: Bearer …).", no_args_is_help=True)
app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    name: str = typer.Argument(..., help="What the token is for, e.g. 'crm lookup'."),
    role: str = typer.Option(
        ...,
        "--role",
        help="admin (everything), viewer (read only), lookup (only what a PBX asks: "
        "caller-name lookup, desk-phone directories, password checks) or phone (one user's "
        "desk phone: the directories with that user's private phonebook; needs --owner).",
    ),
    owner: str | None = typer.Option(
        None,
        "--owner",
        help="The user it acts as (default admin; for a phone token, the phone's user); "
        "it stops working if they lose the role.",
    ),
    expires: int | None = typer.Option(None, "--expires", min=1, help="Days until it expires."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Create an API token. It is shown once: store it now."""
    with handled():
        new = state.app.tokens.create(name, role=role, owner=owner, expires_days=expires)
    if as_json:
        print_json(new.model_dump(mode="json"))
        return
    typer.echo(new.token)
    typer.echo(
        f"Created API token {new.view.id} ({new.view.role}, acting as {new.view.owner}"
        + (f", expires {new.view.expires}" if new.view.expires else "")
        + "). It is shown only this once.",
        err=True,
    )
    if new.view.role == "phone":
        typer.echo(
            "Point the phone at its vendor's directory with it, e.g. "
            "http://SERVER:8080/directory/yealink.xml?token=<the token above>",
            err=True,
        )


@token_app.command("list")
def token_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """List API tokens with their last use (never the tokens themselves)."""
    with handled():
        items = state.app.tokens.list()
    if as_json:
        print_json([t.model_dump(mode="json") for t in items])
        return
    table(
        ["ID", "NAME", "PREFIX", "ROLE", "OWNER", "CREATED", "EXPIRES", "LAST USED", "STATE"],
        [
            (
                t.id,
                t.name,
                t.prefix + "…",
                t.role,
                t.owner,
                t.created,
                t.expires or "never",
                t.last_used or "never",
                "revoked" if t.revoked else ("active" if t.active else "inactive"),
            )
            for t in items
        ],
    )


@token_app.command("revoke")
def token_revoke(token_id: int = typer.Argument(..., max=MAX_INT, help="The token's id.")) -> None:
    """Revoke an API token: it stops working at once."""
    with handled():
        view = state.app.tokens.revoke(token_id)
    typer.echo(f"Revoked API token {view.id} ({view.name!r}).")
