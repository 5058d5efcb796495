"""What every command shares: the app, the store it works on, errors as one line, and
plain output (aligned tables, JSON).

Exit codes: 0 ok, 1 changes pending (with `sync --check`), 2 usage, 3 run failed or
aborted, or the store cannot be used. Errors are printed as one line on standard error;
JSON goes to standard output.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from sqlalchemy.exc import SQLAlchemyError

from pbx_connector.errors import PbxConnectorError, UsageError
from pbx_connector.service import DB_ENV, App, database_error

EXIT_PENDING = 1
EXIT_USAGE = 2
EXIT_FAILED = 3
#: The largest id or count the stores take (a signed 64-bit integer).
MAX_INT = 2**63 - 1

app = typer.Typer(
    help="Keep a phone system's users, phonebooks and speed dials in sync with CSV files "
    "and directories.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class State:
    def __init__(self, db: str | None) -> None:
        self.db = db
        self._app: App | None = None

    @property
    def app(self) -> App:
        """The application core over the store of `--db`; commands call only this."""
        if self._app is None:
            self._app = App.open(self.db)
            for warning in self._app.permission_warnings():
                typer.echo(f"warning: {warning}", err=True)
        return self._app


#: The one state of a command line: set from the global options before a command runs.
state = State(None)


@app.callback()
def _main(
    db: str | None = typer.Option(
        None,
        "--db",
        envvar=DB_ENV,
        show_envvar=True,
        help="Database URL (sqlite:///FILE, postgresql://USER:PASS@HOST/DB) or an SQLite "
        "file path. Default: an SQLite file in the data directory.",
    ),
) -> None:
    state.db = db
    state._app = None


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def handled(hint: Callable[[PbxConnectorError], str | None] | None = None) -> Iterator[None]:
    """Errors as one `error:` line and their exit code, never a traceback. `hint` may add
    what to type about it: the core's messages say what is wrong, not which command
    fixes it, since the web pages and the API show them too."""
    try:
        yield
    except PbxConnectorError as exc:
        extra = hint(exc) if hint is not None else None
        fail(f"{exc}\nhint: {extra}" if extra else str(exc), exc.exit_code)
    except SQLAlchemyError as exc:
        error = database_error(exc, state._app)
        fail(str(error), error.exit_code)
    except OverflowError:
        fail(f"a number is too large (at most {MAX_INT})", EXIT_USAGE)


def parse_assignments(items: Iterable[str], what: str = "KEY=VALUE") -> dict[str, str]:
    """KEY=VALUE arguments as a mapping; the value may contain '='."""
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"{item!r} is not {what}")
        k, v = item.split("=", 1)
        k = k.strip()
        if not k:
            raise UsageError(f"{item!r} has no name before '='")
        out[k] = v
    return out


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Plain aligned columns: readable on a terminal and stable for scripts and tests."""
    cells = [[("" if v is None else str(v)) for v in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    typer.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for r in cells:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def main() -> None:
    """Run the command line (the console script wraps this in `entry.main`, which turns
    Ctrl-C into one line and exit 130)."""
    try:
        app()
    except SQLAlchemyError as exc:
        typer.echo(f"error: {database_error(exc, state._app)}", err=True)
        sys.exit(EXIT_FAILED)
