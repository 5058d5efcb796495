"""One-off import: a CSV or xlsx file read once into users, the phonebook or speed dials,
without a profile (the seed's "Data import per xlsx file").

The file goes through the sync engine as a run does: each column that names a field of
the target is that field (`{{ column }}`, names matched ignoring case), every record is
validated and normalised by the same rules (`sync.plan.build_plan`), and written the same
way (`sync.apply.apply_plan`). The records it makes count as made by hand: they have no
origin, so no profile's mirror run ever deletes them.

An import writes all of its rows or none: a row that is invalid, or that clashes with a
record that exists (a username, an extension, a speed-dial code, the built-in admin),
refuses the whole import, naming each such row by its cell (`Phonebook!B7`) or line. A
dry run says what would be done. Password, PIN and roles are not imported this way."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any, Final, cast

from sqlalchemy import update

from pbx_connector.domain.phone import PhoneNormaliser
from pbx_connector.domain.targets import TARGETS, TargetSpec
from pbx_connector.errors import ConfigError, SourceError, TooLargeError, UsageError
from pbx_connector.mapping import RowMapper
from pbx_connector.models.imports import ImportProblem, ImportResult, ImportTemplate
from pbx_connector.models.runs import Counts
from pbx_connector.service.uploads import FORMAT_OF, MAX_UPLOAD_BYTES, clean_filename
from pbx_connector.sources.base import SourceRow, describe_fields
from pbx_connector.sources.formats import TableReader, open_table
from pbx_connector.sources.upload import safe_suffix
from pbx_connector.sources.xlsx import XlsxReader
from pbx_connector.store.records import table_for
from pbx_connector.store.search import last_id
from pbx_connector.store.secrets import hash_key
from pbx_connector.store.settings import get_settings
from pbx_connector.sync.apply import apply_plan
from pbx_connector.sync.plan import Plan, PlanInput, build_plan
from pbx_connector.templates import get_template

if TYPE_CHECKING:
    from pbx_connector.service.app import App

#: The largest file an import reads, in bytes.
MAX_IMPORT_BYTES: Final = MAX_UPLOAD_BYTES
#: Fields an import may not set: secrets, and roles (an administrator gives them by hand).
_NOT_IMPORTED: Final = ("secret", "pin", "roles")
#: One example row of each target's template file.
EXAMPLES: Final[dict[str, dict[str, str]]] = {
    "phonebook": {
        "displayname": "Max Muster - pascom [30000]",
        "phone": "+4999112345",
        "givenname": "Max",
        "surname": "Muster",
        "organisation": "pascom",
        "fax": "+4999112399",
    },
    "users": {
        "username": "max.muster",
        "displayname": "Max Muster",
        "givenname": "Max",
        "surname": "Muster",
        "email": "max.muster@example.com",
        "extension": "30000",
        "phone": "+4999112345",
        "organisation": "pascom",
        "job": "Sales",
    },
    "speeddials": {"code": "100", "number": "+4999112345", "displayname": "Max Muster"},
}
_SHEET_TITLES: Final = {"users": "Users", "phonebook": "Phonebook", "speeddials": "Speed dials"}
_XLSX_TYPE: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _spec(target: str) -> TargetSpec:
    if target not in TARGETS:
        raise UsageError(
            f"target must be one of {', '.join(TARGETS)}, not {target!r}", field="target"
        )
    return TARGETS[target]


def importable_fields(target: str) -> list[str]:
    """The target's fields an import sets, in the target's order."""
    return [f.name for f in _spec(target).fields if f.kind not in _NOT_IMPORTED]


def template_columns(target: str) -> list[str]:
    """The columns of a target's template file: those its CSV template maps."""
    template = get_template(f"csv-{_spec(target).name}")
    return [name for name, text in template.variables.items() if text.strip()]


class _Limited(io.RawIOBase):
    """`stream`, refusing to read more than `limit` bytes."""

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        super().__init__()
        self._stream = stream
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        chunk = self._stream.read(min(len(view), self._left + 1))
        if len(chunk) > self._left:
            raise TooLargeError(
                f"the file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MiB, the most "
                "an import reads",
                field="file",
            )
        self._left -= len(chunk)
        view[: len(chunk)] = chunk
        return len(chunk)


class _TableSource:
    """An open table as the sync engine's `Source`: read once."""

    open_ended = False

    def __init__(self, table: TableReader, name: str) -> None:
        self.table = table
        self.name = name

    def fields(self) -> list[str]:
        return self.table.fields

    def rows(self) -> Iterator[SourceRow]:
        yield from self.table


class ImportsService:
    """Import a file once into a target, and make the file to fill in for it."""

    def __init__(self, app: App) -> None:
        self.app = app

    def run(
        self, stream: IO[bytes], filename: str, target: str, *, dry_run: bool = False
    ) -> ImportResult:
        """Import a CSV or xlsx file (by its name's extension) into `target`. Nothing is
        written by a dry run, nor when any row is invalid or conflicts. A file that
        cannot be read, lacks a required column or is too large raises UsageError (field
        `file`)."""
        spec = _spec(target)
        name = clean_filename(filename)
        fmt = FORMAT_OF.get(safe_suffix(name))
        if fmt is None:
            raise UsageError(
                f"{name!r}: import an .xlsx or a .csv file (the name's extension says which)",
                field="file",
            )
        settings = (
            {"format": "xlsx"}
            if fmt == "xlsx"
            else {"format": "csv", "encoding": "auto", "delimiter": "auto"}
        )
        limited = io.BufferedReader(_Limited(stream, MAX_IMPORT_BYTES))
        try:
            with open_table(limited, settings, name) as table:
                return self._import(table, name, fmt, spec, dry_run)
        except SourceError as exc:
            raise UsageError(exc.message, source=name, line=exc.line, field="file") from None

    def _import(
        self, table: TableReader, name: str, fmt: str, spec: TargetSpec, dry_run: bool
    ) -> ImportResult:
        allowed = importable_fields(spec.name)
        columns: dict[str, str] = {}  # target field -> the file's column
        ignored: list[str] = []
        for column in table.fields:
            field = column.strip().lower()
            if field in allowed and field not in columns:
                columns[field] = column
            else:
                ignored.append(column)
        missing = [f.name for f in spec.fields if f.required and f.name not in columns]
        if missing:
            raise UsageError(
                f"the file has no column {missing[0]!r}, which every {spec.label} needs; its "
                f"columns are: {describe_fields(table.fields)} (the template file has them "
                "all)",
                field="file",
            )
        mapper = RowMapper.compile({f: "{{ " + c + " }}" for f, c in columns.items()})
        with self.app.reading() as conn:
            instance = get_settings(conn)
        try:
            normaliser = PhoneNormaliser(
                instance["default_region"], instance["outside_line_prefix"]
            )
        except ValueError as exc:
            raise ConfigError(str(exc), field="default_region") from None
        pin = PlanInput(
            profile_id=0,  # no profile has id 0: every stored record is someone else's
            target=spec.name,
            mode="update",
            settings={},
            mapper=mapper,
            normaliser=normaliser,
            hash_key=hash_key(),
            fingerprint="import",
            secrets="drop" if dry_run else "hash",
        )
        with self.app.reading() as conn:
            plan = build_plan(conn, _TableSource(table, name), pin)
        try:
            where = _Where(table, fmt, columns)
            errors = [
                ImportProblem(
                    kind=e["kind"],
                    where=where(e.get("line"), e.get("field")),
                    line=e.get("line"),
                    field=e.get("field"),
                    message=e["message"],
                )
                for e in plan.errors
            ]
            warnings = [
                ImportProblem(
                    kind="warning",
                    where=where(w.get("line"), w.get("field")),
                    line=w.get("line"),
                    field=w.get("field"),
                    message=w["message"],
                )
                for w in plan.warnings
            ]
            refused = plan.counts["invalid"] + plan.counts["conflicts"]
            applied = False
            if plan.rows_read == 0:
                message = "the file has no rows: nothing to import"
            elif dry_run:
                message = _would(plan, spec, refused)
            elif refused:
                message = (
                    f"nothing was imported: {_rows(refused)} cannot be imported (see the "
                    "errors); fix the file and import it again"
                )
            else:
                self._write(plan)
                applied = True
                message = f"imported {_records(plan.counts['created'], spec)}"
            return ImportResult(
                target=cast(Any, spec.name),
                file=name,
                format=cast(Any, fmt),
                dry_run=dry_run,
                applied=applied,
                message=message,
                rows=plan.rows_read,
                counts=Counts(**plan.counts),
                errors=errors,
                warnings=warnings,
                ignored_columns=ignored,
            )
        finally:
            plan.close()

    def _write(self, plan: Plan) -> None:
        table = table_for(plan.target)
        with self.app.transaction() as conn:
            before = last_id(conn, table)
            # No profile: the records are made as if by hand (no origin).
            apply_plan(conn, plan, cast(int, None))
            conn.execute(update(table).where(table.c.id > before).values(origin_key=None))

    def template_columns(self, target: str) -> list[str]:
        """The columns of the target's template file (any target field is imported but
        password, PIN and roles; these are the usual ones)."""
        return template_columns(target)

    def template(self, target: str, fmt: str = "xlsx") -> ImportTemplate:
        """The file to fill in for `target`: its columns, and one example row; `fmt` is
        `xlsx` or `csv`."""
        spec = _spec(target)
        columns = template_columns(spec.name)
        example = [EXAMPLES[spec.name].get(c, "") for c in columns]
        if fmt == "csv":
            text = io.StringIO()
            writer = csv.writer(text, lineterminator="\r\n")
            writer.writerow(columns)
            writer.writerow(example)
            return ImportTemplate(
                target=cast(Any, spec.name),
                filename=f"{spec.name}.csv",
                media_type="text/csv; charset=utf-8",
                content=text.getvalue().encode("utf-8"),
            )
        if fmt != "xlsx":
            raise UsageError(f"a template file is xlsx or csv, not {fmt!r}", field="format")
        return ImportTemplate(
            target=cast(Any, spec.name),
            filename=f"{spec.name}.xlsx",
            media_type=_XLSX_TYPE,
            content=_workbook(_SHEET_TITLES[spec.name], columns, example),
        )


class _Where:
    """Where a problem is: the cell of an xlsx file, the line of a CSV file."""

    def __init__(self, table: TableReader, fmt: str, columns: dict[str, str]) -> None:
        self._xlsx = table if isinstance(table, XlsxReader) else None
        self._columns = columns

    def __call__(self, line: int | None, field: str | None) -> str | None:
        if line is None:
            return None
        if self._xlsx is None:
            return f"line {line}"
        column = self._columns.get(field or "")
        if column is None:
            return f"{self._xlsx.sheet}, row {line}"
        return self._xlsx.cell(column, line) or f"{self._xlsx.sheet}, row {line}"


def _rows(n: int) -> str:
    return "1 row" if n == 1 else f"{n} rows"


def _records(n: int, spec: TargetSpec) -> str:
    return f"1 {spec.label}" if n == 1 else f"{n} {spec.label.replace('entry', 'entrie')}s"


def _would(plan: Plan, spec: TargetSpec, refused: int) -> str:
    created = plan.counts["created"]
    if refused:
        return (
            f"dry run: nothing would be imported: {_rows(refused)} cannot be imported "
            f"(the other {_rows(created)} could)"
        )
    return f"dry run: would import {_records(created, spec)}"


def _workbook(title: str, columns: list[str], example: list[str]) -> bytes:
    import openpyxl  # type: ignore[import-untyped]
    from openpyxl.styles import Font  # type: ignore[import-untyped]

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = title
    ws.append(columns)
    ws.append(example)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for cell in ws[2]:
        # Text, so that a spreadsheet program keeps +49… and leading zeros as typed.
        cell.number_format = "@"
    for index, column in enumerate(columns, 1):
        width = max(len(column), len(example[index - 1])) + 2
        ws.column_dimensions[openpyxl.utils.get_column_letter(index)].width = width
    ws.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
