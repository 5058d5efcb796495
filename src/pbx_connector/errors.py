"""One exception tree for the whole product.

Every error knows how the edges should present it: the CLI exit code and the HTTP
status of the API. Errors carry *where* something went wrong (source, line, field)
so that an administrator can fix the input without guessing. Messages never hold
secrets: callers pass names and positions, never passwords.
"""

from __future__ import annotations


class PbxConnectorError(Exception):
    """Base of every error the product raises on purpose."""

    exit_code: int = 3
    http_status: int = 500

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.line = line
        self.field = field

    def location(self) -> str:
        """`file.csv, line 7, field "email"` — empty when nothing is known."""
        parts: list[str] = []
        if self.source:
            parts.append(self.source)
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.field:
            parts.append(f'field "{self.field}"')
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.location()
        return f"{where}: {self.message}" if where else self.message


class UsageError(PbxConnectorError):
    """The user asked for something that cannot be done as asked (HTTP: invalid input)."""

    exit_code = 2
    http_status = 422


class NotFoundError(UsageError):
    """A named profile, record or run does not exist."""

    http_status = 404


class TooLargeError(UsageError):
    """A file or body is larger than the most that is taken (HTTP 413)."""

    http_status = 413


class ConfigError(UsageError):
    """A setting or profile definition is invalid."""

    http_status = 422


class ExpressionError(ConfigError):
    """A pre-filter or variable expression does not compile or cannot be evaluated."""


class StoreError(PbxConnectorError):
    """The store cannot be used: locked by another writer for too long, unreachable,
    not a database, or its schema is damaged."""

    http_status = 503


class SourceError(PbxConnectorError):
    """The source as a whole cannot be read: the run fails and changes nothing."""

    http_status = 502


class SourceDecodeError(SourceError):
    """The bytes of a source are not valid in the configured encoding."""


class SourceNotModified(SourceError):
    """The source has not changed since the run that last read it (an HTTP `304 Not
    Modified` to a conditional request): the run is recorded as `ok`, "source not
    modified", and writes nothing."""


class BindRefused(SourceError):
    """A directory refused a bind: wrong DN or password (not a failure of the server)."""


class RowError(PbxConnectorError):
    """One row or record is invalid: in a run it is skipped and reported and the run goes
    on; for a record given by hand it is the user's input that is wrong."""

    exit_code = 2
    http_status = 422


class RecordError(RowError):
    """A record fails validation (empty or too long value, bad e-mail, …)."""


class RunError(PbxConnectorError):
    """A run could not be carried out."""


class RunAborted(RunError):
    """A safety rule stopped a run before it changed anything."""

    http_status = 409


class RunLocked(RunError):
    """Another run of the same profile is in progress."""

    http_status = 409

    def __init__(
        self, message: str, *, run_id: int | None = None, running_run_id: int | None = None
    ) -> None:
        super().__init__(message)
        #: The run recorded as refused, and the run that holds the lock.
        self.run_id = run_id
        self.running_run_id = running_run_id


class ConflictError(UsageError):
    """The input clashes with what exists: a name, username, extension or code that is
    taken (also when another writer took it a moment ago)."""

    http_status = 409


class Unauthenticated(UsageError):
    """No valid credentials: a missing, unknown, revoked or expired token or session."""

    http_status = 401


class PermissionDenied(UsageError):
    """Valid credentials without the role the request needs."""

    http_status = 403


class ProtectedRecordError(UsageError):
    """The built-in admin user cannot be changed or deleted this way."""

    http_status = 403


class Interrupted(BaseException):
    """Ctrl-C (SIGINT) or SIGTERM. A BaseException like KeyboardInterrupt, so that no
    `except Exception` swallows it; its own class, so that the command-line framework
    (which turns KeyboardInterrupt into a silent exit) lets it reach our entry point."""
