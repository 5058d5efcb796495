"""The `xlsx` format of a file source: the cells of one sheet as a person sees them.

Read with python-calamine (Rust): on a 100,000-row workbook it reads and converts every
cell several times faster than openpyxl's read-only mode, for a peak memory that stays
within the same order (`bench/xlsx_read.py` measures both). calamine opens a workbook by
path: a local file is read where it is; a stream that cannot seek (a share, a URL) is
first copied to an owner-only temporary file in the data directory's `spool/`, removed
when the rows have been read.

Choices a reader of the code (or an administrator) may want to know:

* **Sheet.** `sheet` names the sheet (exact name first, then ignoring case) or gives its
  1-based position (`1`, the default, is the first sheet). A name that is all digits is
  taken as a position; a sheet named "2024" is reached by position.
* **Header.** Row `header_row` (1-based, default 1) names the fields. Names are
  stripped. The header spans from its first to its last non-empty cell; an empty cell
  in between, or a name given twice, fails the source naming the cell (`People!C1`).
* **Cells as text.** What a person sees: a number typed as a number gives its digits
  (`4999112345`, never `4999112345.0` or `4.99911E+09`), integers as integers, other
  numbers rounded to 15 significant digits as Excel shows them (`0.3`, not
  `0.30000000000000004`); dates as ISO dates (`2024-05-01`), date and time as
  `2024-05-01T10:00:00`, times as `10:30:00`, durations as `30:00:00`; booleans as
  `TRUE`/`FALSE`; formulas give the value the workbook saved with them (a workbook
  written by a program that never calculated it holds none: the cell is empty); error
  values as they are shown (`#DIV/0!`); merged cells give their value in the top-left
  cell and empty strings in the others; empty cells are empty strings. Text is kept
  exactly (no stripping), as in CSV.
* **Rows.** Rows that are wholly empty are skipped. A row with a value in a column
  outside the header's span is one invalid row naming the cell, and the run goes on,
  as a CSV line with too many fields. `SourceRow.line` is the sheet's row number, and
  `ref` names it (`People, row 7`). Each row is a `SheetRow`, which also names the cell
  of each of its fields (`People!B7`): a run names that cell in an error about a record
  field that is read from one column.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, Final

from pbx_connector.errors import ConfigError, SourceError
from pbx_connector.sources.base import SourceRow, describe_fields, excerpt

if TYPE_CHECKING:
    from pbx_connector.sources.formats import TableReader

__all__ = [
    "MAX_ROWS",
    "SheetRow",
    "XlsxReader",
    "cell_ref",
    "cell_text",
    "check_settings",
    "read_xlsx",
]

#: Rows and columns an xlsx sheet can have (Excel's limits).
MAX_ROWS: Final = 1_048_576
MAX_COLUMNS: Final = 16_384
#: Where streams that cannot seek are copied before they are read.
SPOOL_DIR: Final = "spool"
_SPOOL_PREFIX: Final = "xlsx-"
_COPY_CHUNK: Final = 1024 * 1024
#: Excel shows at most 15 significant digits of a number.
_DIGITS: Final = 15


# --- settings ------------------------------------------------------------------------------


def _positive(settings: Mapping[str, str], name: str, default: str, limit: int) -> int:
    text = str(settings.get(name, default) or default).strip()
    if not text.isdigit() or not 1 <= int(text) <= limit:
        raise ConfigError(
            f"{name} must be a whole number from 1 to {limit:,}, not {excerpt(text)!r}",
            field=name,
        )
    return int(text)


def _sheet_setting(settings: Mapping[str, str]) -> str:
    text = str(settings.get("sheet", "1") or "1").strip()
    if text.isdigit():
        if not 1 <= int(text) <= 10_000:
            raise ConfigError(
                f"sheet {text!r}: a sheet's position starts at 1 (the first sheet)",
                field="sheet",
            )
    elif len(text) > 31 or any(c in text for c in "[]:*?/\\"):
        raise ConfigError(
            f"sheet {excerpt(text)!r} is not a sheet name (at most 31 characters, "
            "none of [ ] : * ? / \\) nor a position",
            field="sheet",
        )
    return text


def check_settings(settings: Mapping[str, str]) -> None:
    """Check `sheet` and `header_row`; ConfigError names the setting."""
    _sheet_setting(settings)
    _positive(settings, "header_row", "1", MAX_ROWS)


# --- cells ---------------------------------------------------------------------------------


def column_letters(index: int) -> str:
    """`0` -> `A`, `25` -> `Z`, `26` -> `AA`."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _sheet_prefix(sheet: str) -> str:
    """`People!`, or `'My Sheet'!` for a name with spaces or punctuation, quoted as
    Excel quotes it."""
    name = sheet if sheet.replace("_", "").isalnum() else "'" + sheet.replace("'", "''") + "'"
    return f"{name}!"


def cell_ref(sheet: str, column: int, row: int) -> str:
    """`People!B7` for column 1 (0-based) of row 7 (1-based); a sheet name with spaces
    or punctuation is quoted as Excel quotes it (`'My Sheet'!B7`)."""
    return f"{_sheet_prefix(sheet)}{column_letters(column)}{row}"


@dataclasses.dataclass(slots=True)
class SheetRow(SourceRow):
    """A row of a sheet, which can name the cell of each of its fields."""

    #: Field name -> its sheet and column, `People!B`: one mapping shared by all
    #: the rows of a sheet.
    columns: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    def cell(self, name: str) -> str | None:
        """The cell of the field `name` in this row, `People!B7`; None for a name that
        is not in the header."""
        column = self.columns.get(name)
        return None if column is None else f"{column}{self.line}"


def _number(value: float) -> str:
    if not math.isfinite(value):  # not in a valid workbook; say what it is
        return str(value)
    shown = Decimal(f"{value:.{_DIGITS}g}")
    if shown == 0:
        return "0"
    if shown == shown.to_integral_value() and abs(shown) < Decimal(10) ** 21:
        return str(int(shown))
    exponent = shown.adjusted()
    if -7 <= exponent < 21:
        return format(shown.normalize(), "f")
    return f"{value:.{_DIGITS}g}".replace("e+", "E+").replace("e-", "E-")


def _duration(value: datetime.timedelta) -> str:
    seconds = value.total_seconds()
    sign = "-" if seconds < 0 else ""
    whole = round(abs(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours}:{minutes:02d}:{secs:02d}"


def cell_text(value: Any) -> str:
    """A cell's value as the text a person sees in the sheet (see the module's notes)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # before int: bool is an int
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, datetime.datetime):
        if value.time() == datetime.time(0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat(timespec="seconds" if not value.microsecond else "milliseconds")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, datetime.time):
        return value.isoformat(timespec="seconds" if not value.microsecond else "milliseconds")
    if isinstance(value, datetime.timedelta):
        return _duration(value)
    return str(value)


# --- reading -------------------------------------------------------------------------------


def _local_path(stream: BinaryIO) -> str | None:
    """A path calamine can open that reads the same file as `stream`, when there is one:
    an open regular file on this machine, not yet read, is read through /proc/self/fd
    (so that a file renamed or replaced meanwhile is still the one opened). A pipe, a
    socket or another stream is copied instead."""
    try:
        fd = stream.fileno()
        regular = stat.S_ISREG(os.fstat(fd).st_mode) and stream.tell() == 0
    except (AttributeError, OSError, ValueError):
        return None
    proc = Path(f"/proc/self/fd/{fd}")
    return str(proc) if regular and proc.exists() else None


def _spool(stream: BinaryIO, name: str) -> Path:
    from pbx_connector.store.db import private_dir

    fd, path = tempfile.mkstemp(prefix=_SPOOL_PREFIX, suffix=".xlsx", dir=private_dir(SPOOL_DIR))
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(stream, out, _COPY_CHUNK)
    except OSError as exc:
        os.unlink(path)
        raise SourceError(f"cannot read: {exc.strerror or exc}", source=name) from exc
    except BaseException:
        os.unlink(path)
        raise
    return Path(path)


def _open_workbook(path: str, name: str) -> Any:
    import python_calamine

    try:
        return python_calamine.CalamineWorkbook.from_path(path)
    except python_calamine.PasswordError:
        raise SourceError(
            "the workbook is protected with a password; save it without one", source=name
        ) from None
    except (python_calamine.CalamineError, python_calamine.ZipError, python_calamine.XmlError):
        raise SourceError(
            "not an xlsx workbook (cannot read it as one; is it a CSV file, or damaged?)",
            source=name,
        ) from None
    except OSError as exc:
        raise SourceError(f"cannot read: {exc.strerror or exc}", source=name) from exc


def _choose_sheet(workbook: Any, wanted: str, name: str) -> str:
    sheets: list[str] = list(workbook.sheet_names)
    listed = describe_fields(sheets)
    if wanted.isdigit():
        position = int(wanted)
        if position > len(sheets):
            count = "1 sheet" if len(sheets) == 1 else f"{len(sheets)} sheets"
            raise SourceError(
                f"there is no sheet {position}: the workbook has {count} ({listed})",
                source=name,
                field="sheet",
            )
        return sheets[position - 1]
    if wanted in sheets:
        return wanted
    folded = [s for s in sheets if s.casefold() == wanted.casefold()]
    if len(folded) == 1:
        return folded[0]
    raise SourceError(
        f"there is no sheet {excerpt(wanted)!r} in the workbook; its sheets: {listed}",
        source=name,
        field="sheet",
    )


class XlsxReader:
    """An open sheet whose header has been read. Iterate once for the rows; use
    `read_xlsx` to make one."""

    name: str
    fields: list[str]
    sheet: str

    def __init__(
        self, path: str, spooled: Path | None, settings: Mapping[str, str], name: str
    ) -> None:
        self.name = name
        self._spooled = spooled
        self._started = False
        header_row = _positive(settings, "header_row", "1", MAX_ROWS)
        try:
            workbook = _open_workbook(path, name)
            self.sheet = _choose_sheet(workbook, _sheet_setting(settings), name)
            sheet = workbook.get_sheet_by_name(self.sheet)
            self._offset = int(sheet.start[1]) if sheet.start is not None else 0
            # calamine yields rows from the sheet's first row, columns from its first
            # used column (`start`).
            self._rows: Iterator[list[Any]] = iter(sheet.iter_rows())
            self._line = 0
            self.fields, self._span = self._read_header(header_row)
            prefix = _sheet_prefix(self.sheet)
            self._columns = {
                name: prefix + column_letters(self._span[0] + i)
                for i, name in enumerate(self.fields)
            }
        except BaseException:
            self.close()
            raise

    def ref(self, column: int, row: int) -> str:
        """`People!B7` for a column of the sheet (0-based, from column A)."""
        return cell_ref(self.sheet, column, row)

    def cell(self, field: str, row: int) -> str | None:
        """The cell of a field (a header name) in a row, `People!B7`; None for a name
        that is not in the header."""
        column = self._columns.get(field)
        return None if column is None else f"{column}{row}"

    def _next(self) -> list[Any] | None:
        try:
            row = next(self._rows)
        except StopIteration:
            return None
        except Exception as exc:  # calamine's errors on a damaged sheet
            raise SourceError(
                f"cannot read the sheet {excerpt(self.sheet)!r} after row {self._line}: {exc}",
                source=self.name,
            ) from None
        self._line += 1
        return row

    def _read_header(self, header_row: int) -> tuple[list[str], tuple[int, int]]:
        where = f"{excerpt(self.sheet)!r}"
        values: list[Any] | None = None
        while self._line < header_row:
            values = self._next()
            if values is None:
                ends = f"it ends at row {self._line}" if self._line else "it is empty"
                raise SourceError(
                    f"the sheet {where} has no row {header_row} (header_row): {ends}",
                    source=self.name,
                    field="header_row",
                )
        assert values is not None
        texts = [cell_text(v).strip() for v in values]
        used = [i for i, t in enumerate(texts) if t]
        if not used:
            raise SourceError(
                f"the header row {header_row} of the sheet {where} is empty "
                "(set header_row to the row with the column names)",
                source=self.name,
                field="header_row",
            )
        first, last = used[0], used[-1]
        seen: dict[str, int] = {}
        for i in range(first, last + 1):
            column = self._offset + i
            text = texts[i]
            if not text:
                raise SourceError(
                    f"the header cell {self.ref(column, header_row)} is empty: every column "
                    "between the first and the last name needs a name",
                    source=self.name,
                )
            if text in seen:
                raise SourceError(
                    f"the header cells {self.ref(seen[text], header_row)} and "
                    f"{self.ref(column, header_row)} both say {excerpt(text)!r}: "
                    "column names must differ",
                    source=self.name,
                )
            seen[text] = column
        return texts[first : last + 1], (self._offset + first, self._offset + last + 1)

    def __iter__(self) -> Iterator[SourceRow]:
        if self._started:
            raise RuntimeError(f"the rows of {self.name} can be read only once")
        self._started = True
        return self._iterate()

    def _iterate(self) -> Iterator[SourceRow]:
        fields, columns = self.fields, self._columns
        start, end = self._span
        first, last = start - self._offset, end - self._offset
        sheet = self.sheet
        try:
            while (values := self._next()) is not None:
                texts = [cell_text(v) for v in values]
                if not any(texts):
                    continue
                line = self._line
                ref = f"{sheet}, row {line}"
                outside = next(
                    (i for i, t in enumerate(texts) if t and not first <= i < last), None
                )
                if outside is not None:
                    span = f"{column_letters(start)} to {column_letters(end - 1)}"
                    yield SourceRow(
                        line,
                        {},
                        f"{self.ref(self._offset + outside, line)} has a value, but the header"
                        f" names only the columns {span} (is a column name missing?)",
                        ref=ref,
                    )
                    continue
                cells = texts[first:last]
                if len(cells) < len(fields):
                    cells += [""] * (len(fields) - len(cells))
                yield SheetRow(
                    line, dict(zip(fields, cells, strict=True)), ref=ref, columns=columns
                )
        finally:
            self.close()

    def close(self) -> None:
        spooled, self._spooled = self._spooled, None
        if spooled is not None:
            spooled.unlink(missing_ok=True)

    def __enter__(self) -> XlsxReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_xlsx(stream: BinaryIO, settings: Mapping[str, str], name: str) -> TableReader:
    """Start reading a sheet of the xlsx workbook in `stream`: choose the sheet and read
    its header. `name` appears in every error. A stream that is not a local file is
    copied to a private temporary file first (removed when the reader is closed)."""
    check_settings(settings)
    path = _local_path(stream)
    spooled = None
    if path is None:
        spooled = _spool(stream, name)
        path = str(spooled)
    return XlsxReader(path, spooled, settings, name)
