"""Read CSV files into `SourceRow`s, whatever carries the bytes.

`read_csv` takes a binary stream (a local file now; an SMB file, an HTTP body or an
upload later), so every transport shares one parser. `CsvSource` is the `Source` for a
local path. Parsing is done by the C `csv` module over lines that an `io.TextIOWrapper`
reads with a size limit, so memory stays flat however long the file (or one line of it)
is, and the Python work per row is one `dict(zip())` and a little bookkeeping per line.

Choices a reader of the code (or an administrator) may want to know:

* **Header.** The first non-blank row names the fields. Names are stripped; an empty
  name becomes `field_N` (N = 1-based column); a repeated name gets the smallest free
  suffix `_2`, `_3`, … A suffix never takes a name that appears literally in the header
  (`phone,phone,phone_2` gives `phone, phone_3, phone_2`), so a mapping written against
  a literal column name always gets that column.
* **Rows.** Values are kept exactly as written (no stripping, no types). Entirely empty
  lines are skipped. A row with a different number of fields than the header is yielded
  with `error` set and no data; the run goes on. `SourceRow.line` is the physical line
  on which the row starts; line breaks inside enclosed values count as lines.
* **Line separators.** `auto` accepts CRLF, LF and CR, mixed. An explicit separator
  (`crlf`, `lf`, `cr`) is the only thing that ends a record *and* the only thing counted
  as a line break, inside enclosures too; any other CR or LF is data, even outside an
  enclosure (with `lf`, a CRLF file keeps a trailing CR on each last value). After a
  closing enclosure only the delimiter or the separator may follow, so `"a"<LF>` in a
  `crlf` file is a malformed row, as `"a"x` is.
* **Enclosure.** `"` or `'`, doubled inside a value to stand for itself; `none` turns
  quoting off, so quote characters are data and values cannot hold the delimiter or
  line breaks. Quoting errors (an enclosure never closed, text after a closing
  enclosure) fail the whole source with the line: everything after such an error is
  unreliable, so no row is better than wrong rows.
* **Encoding.** Any Python text codec. `utf-8` also accepts (and drops) a UTF-8 BOM;
  `utf-16`/`utf-32` use their BOM. Bytes that do not decode fail the source with the
  line number and the offending byte; they are never replaced.
* **Encoding `auto`.** A BOM decides (UTF-8, UTF-16 LE/BE, UTF-32 LE/BE; reported as
  `utf-8-sig`, `utf-16`, `utf-32`, the codecs that read them). Otherwise the
  file is UTF-8 if it decodes as UTF-8 and holds no NUL byte. Because an odd byte can
  sit anywhere, a *seekable* stream (local files, most SMB handles) is validated as
  UTF-8 to the end first, in a constant-memory pass, and rewound; a stream that cannot
  seek is judged on its first MiB, kept in memory and replayed, and a later bad byte
  still fails loudly with its line. When UTF-8 fails, the guess is made on the start of
  the file plus the region of the first bad byte: mostly-valid UTF-8 stays UTF-8 (so the
  damaged byte is reported instead of the whole file turning into mojibake); text that
  reads as Western European in cp1252 is cp1252 (charset-normalizer alone guesses
  exotic code pages for short, mostly-ASCII samples such as one umlaut in a phonebook);
  anything else is charset-normalizer's best guess. `CsvReader.encoding` reports the
  result. Central European cp1250 text without ł/ą/ż (Czech, Hungarian) can pass for
  cp1252: such files should name their encoding.
* **Delimiter `auto`.** `csv.Sniffer` limited to `,` `;` tab `|` on the first 16 KiB of
  text; its answer is kept only if it occurs in the header line, else the candidate
  seen most often in the header line wins (`,` when there is none: one column).
* **Limits.** A record (one row, however many lines it spans) may be
  `RECORD_LIMIT` characters long and a value `FIELD_LIMIT`; the header row
  `HEADER_LIMIT` characters and `MAX_COLUMNS` columns. Lines are read with a size
  limit, so a file without line breaks costs no more memory than one record. A header
  over its limits, or a record over `RECORD_LIMIT`, fails the source: where the next
  record starts is unknown (the cut may be inside an enclosure). A value over
  `FIELD_LIMIT` in a record that fits is one invalid row, named by line and field, and
  the run goes on. `csv.field_size_limit` is raised (process-wide) to `RECORD_LIMIT`,
  so that the C parser never stops first.
* **The file.** `CsvSource` reads regular files only. The path is opened with
  `O_NONBLOCK` and checked with `fstat` on the open descriptor, so a FIFO neither
  blocks nor is read, and a symbolic link is followed only to a regular file. A file
  whose size or modification time changed by the end of the read fails the source: it
  was being written, and the rows read may be half old, half new. Messages quote file
  content only as a short escaped `excerpt`.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO, Final

import charset_normalizer

from pbx_connector.errors import ConfigError, SourceDecodeError, SourceError
from pbx_connector.sources.base import SourceRow, excerpt

__all__ = [
    "FIELD_LIMIT",
    "HEADER_LIMIT",
    "MAX_COLUMNS",
    "RECORD_LIMIT",
    "CsvOptions",
    "CsvReader",
    "CsvSource",
    "open_regular_file",
    "read_csv",
]

#: Characters one record (a row, with the line breaks inside its values) may have.
RECORD_LIMIT: Final = 1024 * 1024
#: Characters one value may have.
FIELD_LIMIT: Final = 64 * 1024
#: Characters the header row may have.
HEADER_LIMIT: Final = 64 * 1024
#: Columns the header row may have.
MAX_COLUMNS: Final = 1000
csv.field_size_limit(max(csv.field_size_limit(), RECORD_LIMIT))

_DELIMITER_WORDS: Final = {"tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
_AUTO_DELIMITERS: Final = ",;\t|"
# The value is what io.TextIOWrapper(newline=...) needs to split lines the same way.
_LINE_SEPARATORS: Final = {"auto": "", "crlf": "\r\n", "lf": "\n", "cr": "\r"}
_LINE_SEPARATOR_LITERALS: Final = {"\r\n": "crlf", "\n": "lf", "\r": "cr"}
_ENCLOSURES: Final = {'"': '"', "'": "'", "": "", "none": ""}

# With an explicit line separator, a stray CR/LF is escaped with this character before
# the C parser sees it (the parser itself always ends records at CR and LF). U+FDD0 is a
# Unicode noncharacter, reserved for internal use; where one occurs in the data it is
# escaped too, so no value is ever changed.
_ESCAPE: Final = "\ufdd0"
_STRAY: Final = {
    "\r\n": re.compile("\r(?!\n)|(?<!\r)\n|\ufdd0"),
    "\n": re.compile("[\r\ufdd0]"),
    "\r": re.compile("[\n\ufdd0]"),
}

_SAMPLE_BYTES: Final = 64 * 1024
_AUTO_PREFIX_BYTES: Final = 1024 * 1024
_SCAN_CHUNK: Final = 1024 * 1024
_SNIFF_CHARS: Final = 16 * 1024

_BOMS: Final = (
    # UTF-32 first: its LE BOM starts with the UTF-16 LE one.
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_UTF8_SEQUENCE: Final = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
_HIGH_BYTE: Final = re.compile(rb"[\x80-\xff]")
_LETTERS: Final = re.compile(r"[^\W\d_]+")
# Symbols that cp1252 makes of the letters of other code pages (cp1250's ł ą ż Ł Ą,
# Shift-JIS and GBK lead bytes, …); Western text does not put them between two letters.
# Left out because they do occur inside Western words: soft hyphen, middle dot, acute
# accent (used as an apostrophe), right single quote, en and em dash.
_SYMBOL_IN_WORD: Final = re.compile(
    r"[^\W\d_]"
    r"[\xa1-\xa9\xab\xac\xae-\xb3\xb6\xb8\xb9\xbb-\xbf\xd7\xf7"
    r"\u02dc\u2018\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u2122]"
    r"[^\W\d_]"
)
_LINE_BREAK: Final = re.compile("\r\n|\r|\n")


def _config_error(setting: str, value: str, allowed: str) -> ConfigError:
    return ConfigError(f"invalid CSV {setting} {value!r}: use {allowed}", field=setting)


def _normal_encoding(value: str) -> str:
    name = value.strip()
    if name.lower() == "auto":
        return "auto"
    allowed = "a Python codec name such as utf-8, cp1252, latin-1, utf-16, or auto"
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise _config_error("encoding", value, allowed) from None
    if not info._is_text_encoding:  # base64, zlib, … are codecs but not text encodings
        raise _config_error("encoding", value, allowed)
    return name


def _normal_delimiter(value: str, enclosure: str) -> str:
    allowed = "one character, or auto, tab, comma, semicolon, pipe"
    word = value.strip().lower()
    if word == "auto":
        return "auto"
    if word in _DELIMITER_WORDS:
        return _DELIMITER_WORDS[word]
    # A lone space is a legitimate delimiter, so strip only when that leaves one character.
    char = value if len(value) == 1 else value.strip()
    if len(char) != 1 or char in "\r\n\0" + _ESCAPE:
        raise _config_error("delimiter", value, allowed)
    if char == enclosure:
        raise ConfigError(
            f"the CSV delimiter and enclosure cannot both be {char!r}", field="delimiter"
        )
    return char


def _normal_line_separator(value: str) -> str:
    if value in _LINE_SEPARATOR_LITERALS:
        return _LINE_SEPARATOR_LITERALS[value]
    word = value.strip().lower()
    if word not in _LINE_SEPARATORS:
        raise _config_error("line_separator", value, "auto, crlf, lf or cr")
    return word


def _normal_enclosure(value: str) -> str:
    key = value if value in _ENCLOSURES else value.strip().lower()
    if key not in _ENCLOSURES:
        raise _config_error("enclosure", value, """'"', "'" or none""")
    return _ENCLOSURES[key]


@dataclass(frozen=True)
class CsvOptions:
    """How to read a CSV file. Values are validated and normalised on construction
    (keywords are case-insensitive; `tab`, `comma`, … become the character, `none`
    becomes `""`), and an invalid one raises `ConfigError` naming the setting."""

    encoding: str = "utf-8"
    delimiter: str = ","
    line_separator: str = "auto"
    enclosure: str = '"'

    def __post_init__(self) -> None:
        for setting in ("encoding", "delimiter", "line_separator", "enclosure"):
            value: object = getattr(self, setting)
            if not isinstance(value, str):  # settings may come from JSON or YAML
                raise ConfigError(f"the CSV {setting} must be text, not {value!r}", field=setting)
        enclosure = _normal_enclosure(self.enclosure)
        object.__setattr__(self, "enclosure", enclosure)
        object.__setattr__(self, "encoding", _normal_encoding(self.encoding))
        object.__setattr__(self, "delimiter", _normal_delimiter(self.delimiter, enclosure))
        object.__setattr__(self, "line_separator", _normal_line_separator(self.line_separator))

    @classmethod
    def from_settings(cls, settings: Mapping[str, str]) -> CsvOptions:
        """Options from a profile's source settings; missing keys take the defaults,
        keys that are not CSV options are ignored."""
        defaults = cls()
        return cls(
            encoding=settings.get("encoding", defaults.encoding),
            delimiter=settings.get("delimiter", defaults.delimiter),
            line_separator=settings.get("line_separator", defaults.line_separator),
            enclosure=settings.get("enclosure", defaults.enclosure),
        )


class _PrefixedStream(io.RawIOBase):
    """The bytes already taken from `stream` for sniffing, then the rest of `stream`.
    `io.TextIOWrapper` reads it through `read()` only.

    Closing it leaves `stream` open: the caller of `read_csv` owns that stream, and the
    text wrapper on top closes its buffer when it is closed or collected.
    """

    def __init__(self, prefix: bytes, stream: BinaryIO, name: str) -> None:
        super().__init__()
        self._prefix = prefix
        self._offset = 0
        self._stream = stream
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        if self._offset < len(self._prefix):
            start = self._offset
            end = len(self._prefix) if size < 0 else min(len(self._prefix), start + size)
            self._offset = end
            chunk = self._prefix[start:end]
            if end == len(self._prefix):
                self._prefix, self._offset = b"", 0
            return chunk
        return self._stream.read(size)


def _read_prefix(stream: BinaryIO, size: int) -> bytes:
    # A pipe or socket may return short reads long before the end.
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def _line_window(data: bytes, position: int) -> bytes:
    """Up to a sample's worth of `data` from the start of the line holding `position`."""
    start = max(data.rfind(b"\n", 0, position) + 1, position - _SAMPLE_BYTES // 2)
    return data[start : start + _SAMPLE_BYTES]


def _utf8_evidence(prefix: bytes, stream: BinaryIO) -> bytes | None:
    """None if the stream is UTF-8 text, else a sample to guess the encoding from:
    the start of the file and the region of the first byte that is not UTF-8."""
    head = prefix[:_SAMPLE_BYTES]
    if b"\0" in prefix:
        # NUL decodes as UTF-8 but never appears in a text CSV: UTF-16/32 without a BOM.
        return head
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(prefix, final=False)
    except UnicodeDecodeError as exc:
        return head if exc.start < len(head) else head + _line_window(exc.object, exc.start)
    if len(prefix) == _AUTO_PREFIX_BYTES and stream.seekable():
        rewind = stream.tell()
        try:
            while chunk := stream.read(_SCAN_CHUNK):
                decoder.decode(chunk, final=False)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            return head + _line_window(exc.object, exc.start)
        finally:
            stream.seek(rewind)
        return None
    if len(prefix) < _AUTO_PREFIX_BYTES:
        # The whole stream is in the prefix: a sequence cut off at the end is an error.
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return head + prefix[-_SAMPLE_BYTES:]
    return None


def _reads_as_western(sample: bytes) -> bool:
    """True if `sample` is plausible cp1252 text: Western European words carry accented
    letters among plain ones, while Cyrillic or Greek bytes read as cp1252 give words made
    only of accented letters, and Polish ones give symbols inside words."""
    try:
        text = sample.decode("cp1252")
    except UnicodeDecodeError:
        return False
    if "\0" in text or _SYMBOL_IN_WORD.search(text):
        return False
    accented = only_accented = 0
    for word in _LETTERS.findall(text):
        if word.isascii():
            continue
        accented += 1
        if len(word) >= 3 and not any(char.isascii() for char in word):
            only_accented += 1
    return only_accented * 4 <= accented


def _guess_encoding(sample: bytes) -> str | None:
    """A codec name for bytes that are not clean UTF-8, or None if they are not text."""
    if b"\0" not in sample:
        sequences = _UTF8_SEQUENCE.findall(sample)
        stray = len(_HIGH_BYTE.findall(sample)) - sum(map(len, sequences))
        if len(sequences) > stray:
            return "utf-8"
        if _reads_as_western(sample):
            return "cp1252"
    best = charset_normalizer.from_bytes(sample).best()
    if best is None:
        return None
    if "cp1252" in best.could_be_from_charset:
        return "cp1252"
    return str(codecs.lookup(str(best.encoding)).name)


def _detect_encoding(prefix: bytes, stream: BinaryIO, name: str) -> str:
    for bom, codec in _BOMS:
        if prefix.startswith(bom):
            return codec
    evidence = _utf8_evidence(prefix, stream)
    if evidence is None:
        return "utf-8"
    guess = _guess_encoding(evidence)
    if guess is None:
        raise SourceDecodeError(
            "cannot detect the encoding (is this a text file?); set the encoding option",
            source=name,
        )
    return guess


def _decode_sample(sample: bytes, codec: str) -> str:
    decoder = codecs.getincrementaldecoder(codec)(errors="replace")
    text: str = decoder.decode(sample, final=False)
    return text


def _sniff_delimiter(sample: str) -> str:
    cut = max(sample.rfind("\n", 0, _SNIFF_CHARS), sample.rfind("\r", 0, _SNIFF_CHARS))
    text = sample[: cut + 1] if cut >= 0 else sample[:_SNIFF_CHARS]
    header = next((line for line in _LINE_BREAK.split(text) if line), "")
    try:
        found = csv.Sniffer().sniff(text, delimiters=_AUTO_DELIMITERS).delimiter
    except csv.Error:
        found = ""
    if found and found in header:
        return found
    counts = [(header.count(char), -rank, char) for rank, char in enumerate(_AUTO_DELIMITERS)]
    count, _, char = max(counts)
    return char if count else ","


def _field_names(header: list[str]) -> list[str]:
    names = [value.strip() for value in header]
    literal = {name for name in names if name}
    used: set[str] = set()
    # The next suffix to try for a base name: a suffix once taken stays taken, so a
    # header of many equal names costs linear time, not quadratic.
    next_number: dict[str, int] = {}
    fields: list[str] = []
    for column, name in enumerate(names, 1):
        chosen = name if name else f"field_{column}"
        base, number = chosen, next_number.get(chosen, 2)
        while chosen in used or (chosen != name and chosen in literal):
            chosen = f"{base}_{number}"
            number += 1
        next_number[base] = number
        used.add(chosen)
        fields.append(chosen)
    return fields


class _RecordTooLong(Exception):
    """A record reached its character limit before it ended."""


def _escape_stray(lines: Iterator[str], separator: str) -> Iterator[str]:
    sub = _STRAY[separator].sub
    width = len(separator)
    for line in lines:
        # str methods, not the regex, decide: this runs for every line, and a clean line
        # holds no CR/LF but its separator.
        expected = width if line.endswith(separator) else 0
        if line.count("\r") + line.count("\n") != expected or _ESCAPE in line:
            line = sub(_ESCAPE + r"\g<0>", line)
            if not line.endswith(separator):
                # Last line of the file: an escaped CR/LF right at the end would leave
                # the parser waiting for more data.
                line += separator
        yield line


def _count_breaks(text: str, separator: str) -> int:
    if separator:
        return text.count(separator)
    return text.count("\r") + text.count("\n") - text.count("\r\n")


def _fields(count: int) -> str:
    return "1 field" if count == 1 else f"{count} fields"


def _long_value(fields: list[str], values: list[str]) -> str | None:
    """The error of a row with a value longer than `FIELD_LIMIT`, if it has one."""
    for name, value in zip(fields, values, strict=False):
        if len(value) > FIELD_LIMIT:
            return (
                f'the value of field "{excerpt(name)}" is {len(value):,} characters long;'
                f" a value may have at most {FIELD_LIMIT:,}"
            )
    return None


class CsvReader:
    """An open CSV stream whose header has been read. Iterate once for the rows; use
    `read_csv` to make one. Closing it (or finishing the iteration) leaves the
    underlying binary stream open."""

    name: str
    fields: list[str]
    encoding: str
    delimiter: str

    def __init__(
        self,
        text: io.TextIOWrapper,
        *,
        name: str,
        encoding: str,
        codec: str,
        delimiter: str,
        options: CsvOptions,
    ) -> None:
        self.name = name
        self.encoding = encoding
        self.delimiter = delimiter
        self._text = text
        self._codec = codec
        self._auto = options.encoding == "auto"
        self._enclosure = options.enclosure
        self._separator = _LINE_SEPARATORS[options.line_separator]
        # Characters the record being parsed may still take; reset after each record.
        self._room = HEADER_LIMIT
        self._in_header = True
        lines = self._bounded_lines(text)
        if self._separator:
            lines = _escape_stray(lines, self._separator)
        self._reader = csv.reader(
            lines,
            delimiter=delimiter,
            quotechar=options.enclosure or None,
            quoting=csv.QUOTE_MINIMAL if options.enclosure else csv.QUOTE_NONE,
            escapechar=_ESCAPE if self._separator else None,
            doublequote=True,
            skipinitialspace=False,
            strict=True,
        )
        self._consumed = 0
        self._started = False
        try:
            self.fields = self._read_header()
        except BaseException:
            text.close()
            raise

    def _bounded_lines(self, text: io.TextIOWrapper) -> Iterator[str]:
        """The lines of `text`, each read with a size limit: the room the current
        record has left. Raises `_RecordTooLong` when a record would pass it."""
        readline = text.readline
        while True:
            room = self._room
            line = readline(room + 1)
            room -= len(line)
            if room < 0:
                raise _RecordTooLong
            if not line:
                return
            self._room = room
            yield line

    def _read_header(self) -> list[str]:
        reader = self._reader
        try:
            for values in reader:
                self._room = HEADER_LIMIT
                if values:
                    line = self._consumed + 1
                    self._consumed = reader.line_num
                    if len(values) > MAX_COLUMNS:
                        raise SourceError(
                            f"the header row has {len(values):,} columns; a CSV file may"
                            f" have at most {MAX_COLUMNS:,}",
                            source=self.name,
                            line=line,
                        )
                    # A BOM survives when a file is read with utf-16-le and the like.
                    values[0] = values[0].removeprefix("\ufeff")
                    self._room = RECORD_LIMIT
                    self._in_header = False
                    return _field_names(values)
                self._consumed = reader.line_num
        except (UnicodeDecodeError, csv.Error, OSError, _RecordTooLong) as exc:
            raise self._error(exc, self._consumed) from exc
        raise SourceError("the CSV is empty: no header row", source=self.name)

    def __iter__(self) -> Iterator[SourceRow]:
        if self._started:
            raise RuntimeError(f"the rows of {self.name} can be read only once")
        self._started = True
        return self._rows()

    def _rows(self) -> Iterator[SourceRow]:
        reader = self._reader
        fields = self.fields
        width = len(fields)
        consumed = self._consumed
        limit = RECORD_LIMIT
        try:
            for values in reader:
                line = consumed + 1
                consumed = reader.line_num
                # Only a record longer than FIELD_LIMIT can hold a value that is.
                size = limit - self._room
                self._room = limit
                if len(values) == width:
                    if size > FIELD_LIMIT and (error := _long_value(fields, values)):
                        yield SourceRow(line, {}, error)
                    else:
                        yield SourceRow(line, dict(zip(fields, values, strict=False)))
                elif values:
                    yield SourceRow(
                        line,
                        {},
                        f"{_fields(len(values))}, but the header has {width}"
                        " (check the delimiter and the enclosure of this line)",
                    )
        except (UnicodeDecodeError, csv.Error, OSError, _RecordTooLong) as exc:
            raise self._error(exc, consumed) from exc
        finally:
            self._text.close()

    def close(self) -> None:
        self._text.close()

    def __enter__(self) -> CsvReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _error(self, exc: Exception, consumed: int) -> SourceError:
        """`consumed` is the last line of the last complete record."""
        if isinstance(exc, UnicodeDecodeError):
            return self._decode_error(exc)
        if isinstance(exc, _RecordTooLong):
            if self._in_header:
                message = (
                    f"the header row is longer than {HEADER_LIMIT:,} characters"
                    " (is this a CSV file?)"
                )
            else:
                message = f"this row is longer than {RECORD_LIMIT:,} characters"
                if self._enclosure:
                    message += f" (is the {self._enclosure} enclosure of a value never closed?)"
            return SourceError(message, source=self.name, line=consumed + 1)
        if isinstance(exc, OSError):
            reason = exc.strerror or str(exc)
            return SourceError(f"cannot read: {reason}", source=self.name, line=consumed + 1)
        text = str(exc)
        if text == "unexpected end of data":
            enclosure = self._enclosure
            return SourceError(
                f"the {enclosure} enclosure of a value in this row is never closed",
                source=self.name,
                line=consumed + 1,
            )
        if "expected after" in text:
            text += (
                f" (after a closing {self._enclosure} only the delimiter or the end of"
                " the line may follow)"
            )
        return SourceError(f"malformed CSV: {text}", source=self.name, line=self._reader.line_num)

    def _decode_error(self, exc: UnicodeDecodeError) -> SourceDecodeError:
        # The text wrapper only decodes a new chunk once every complete line before it
        # has gone to the parser, so the bad byte is on the next line plus the breaks
        # in the chunk before it.
        before = exc.object[: exc.start]
        try:
            decoded = before.decode(exc.encoding, "replace")
        except LookupError:  # a third-party codec may report an unregistered name
            decoded = before.decode(self._codec, "replace")
        line = self._reader.line_num + 1 + _count_breaks(decoded, self._separator)
        byte = exc.object[exc.start]
        suggestion = _guess_encoding(_line_window(exc.object, exc.start))
        if suggestion and codecs.lookup(suggestion).name != codecs.lookup(self._codec).name:
            hint = f"set the encoding option, e.g. {suggestion}"
        else:
            hint = "the file is damaged here, or set the encoding option to its encoding"
        detected = "auto-detected; " if self._auto else ""
        return SourceDecodeError(
            f"cannot decode byte 0x{byte:02x} as {self.encoding} ({detected}{hint})",
            source=self.name,
            line=line,
        )


def read_csv(stream: BinaryIO, options: CsvOptions, name: str) -> CsvReader:
    """Start reading CSV from a binary stream: detect what is `auto` and read the
    header. `name` appears in every error. The stream stays open; it must stay
    readable until the rows have been read."""
    auto_encoding = options.encoding == "auto"
    try:
        prefix = _read_prefix(stream, _AUTO_PREFIX_BYTES if auto_encoding else _SAMPLE_BYTES)
        if auto_encoding:
            codec = encoding = _detect_encoding(prefix, stream, name)
        else:
            encoding = options.encoding
            # utf-8-sig reads UTF-8 with or without a BOM: Excel writes one.
            utf8 = codecs.lookup(encoding).name == "utf-8"
            codec = "utf-8-sig" if utf8 else encoding
    except OSError as exc:
        raise SourceError(f"cannot read: {exc.strerror or exc}", source=name) from exc
    delimiter = options.delimiter
    if delimiter == "auto":
        delimiter = _sniff_delimiter(_decode_sample(prefix[:_SAMPLE_BYTES], codec))
    text = io.TextIOWrapper(
        _PrefixedStream(prefix, stream, name),
        encoding=codec,
        newline=_LINE_SEPARATORS[options.line_separator],
    )
    return CsvReader(
        text, name=name, encoding=encoding, codec=codec, delimiter=delimiter, options=options
    )


_FILE_KINDS: Final = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
# O_NONBLOCK: opening a FIFO does not wait for a writer. O_NOCTTY: a terminal does not
# become the process's controlling terminal. (Both are 0 where the system lacks them.)
_OPEN_FLAGS: Final = (
    os.O_RDONLY
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
)


def _not_regular(mode: int, name: str) -> SourceError | None:
    if stat.S_ISREG(mode):
        return None
    kind = next((kind for test, kind in _FILE_KINDS if test(mode)), "not a regular file")
    return SourceError(f"cannot read {kind}: the CSV path must name a regular file", source=name)


def _open_error(exc: OSError, name: str) -> SourceError:
    return SourceError(f"cannot open the file: {exc.strerror or exc}", source=name)


def open_regular_file(path: str | os.PathLike[str], name: str) -> tuple[BinaryIO, os.stat_result]:
    """Open a regular file for reading, following symbolic links, and return it with
    its status. Anything else (a directory, FIFO, device or socket) raises
    `SourceError` without a byte being read, and without blocking."""
    try:
        # Checked before opening, so that no device is ever opened (opening one can
        # have effects), and again on the open descriptor, which is what is read.
        error = _not_regular(os.stat(path).st_mode, name)
        if error is not None:
            raise error
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise _open_error(exc, name) from exc
    try:
        info = os.fstat(fd)
        error = _not_regular(info.st_mode, name)
        if error is not None:
            raise error
        if _OPEN_FLAGS & getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)
        file = os.fdopen(fd, "rb")
    except OSError as exc:
        os.close(fd)
        raise _open_error(exc, name) from exc
    except BaseException:
        os.close(fd)
        raise
    return file, info


def file_version(info: os.stat_result) -> tuple[int, int]:
    """What changes when a file's content does (an unlink or rename does not count)."""
    return info.st_size, info.st_mtime_ns


class CsvSource:
    """A CSV file on the local file system, read afresh on every `rows()`."""

    open_ended = False

    def __init__(self, path: str | os.PathLike[str], options: CsvOptions) -> None:
        self.path = path
        self.name: str = os.fspath(path)
        self.options = options

    def fields(self) -> list[str]:
        file, _ = open_regular_file(self.path, self.name)
        with file, read_csv(file, self.options, self.name) as reader:
            return reader.fields

    def rows(self) -> Iterator[SourceRow]:
        file, info = open_regular_file(self.path, self.name)
        with file:
            yield from read_csv(file, self.options, self.name)
            if file_version(os.fstat(file.fileno())) != file_version(info):
                raise SourceError(
                    "the file changed while it was read (is it still being written?)",
                    source=self.name,
                )
