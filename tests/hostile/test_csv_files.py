"""Hostile CSV paths and files: FIFOs, devices, directories, sockets and symbolic links as
the path; files without line breaks, with enormous headers or values, NUL bytes, BOMs,
mixed line breaks; files that change, vanish or cannot be read while a run reads them.

Each case uses real files on disk and runs under a deadline, so that a regression fails
instead of hanging the suite. A source that cannot be read fails the run with one message
that names the file (and the line, where there is one) and quotes its content only as a
short escaped excerpt; one bad row in a readable file is an invalid row and the run goes
on.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import pytest

from pbx_connector.errors import SourceError
from pbx_connector.sources.base import describe_fields, excerpt
from pbx_connector.sources.csv import (
    FIELD_LIMIT,
    HEADER_LIMIT,
    MAX_COLUMNS,
    RECORD_LIMIT,
    CsvOptions,
    CsvSource,
)
from pbx_connector.store import db as store_db
from pbx_connector.sync.runner import run_profile
from tests.helpers import PHONEBOOK_HEADER, Cli, make_profile, records

HEADER = ",".join(PHONEBOOK_HEADER).encode()
ROW = b"Anna,+49 991 1,,,,,,,"
BIG = 50 * 1024 * 1024
# Memory the reader may use on a file without line breaks: a few records' worth.
BOUNDED = 12 * 1024 * 1024
SECRET = "root:$6$Ym9ndXNzYWx0$c2VjcmV0LWhhc2gtdGhhdC1tdXN0LW5vdC1sZWFr:19000:0:99999:7:::"


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Fail with TimeoutError instead of hanging (SIGALRM interrupts a blocking open)."""

    def expired(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def source(path: Path | str, **options: str) -> CsvSource:
    return CsvSource(str(path), CsvOptions(**options))


def read_all(path: Path | str, **options: str) -> list[tuple[int, dict[str, object], str | None]]:
    with deadline(20):
        return [(r.line, dict(r.data), r.error) for r in source(path, **options).rows()]


def failure(path: Path | str, **options: str) -> SourceError:
    """The error of reading every row (and, apart, the header) of `path`."""
    with deadline(20), pytest.raises(SourceError) as info:
        for _ in source(path, **options).rows():
            pass
    return info.value


def write_big(path: Path, head: bytes, fill: bytes = b"a", size: int = BIG) -> Path:
    """`head`, then `size` bytes of `fill` and no line break, written in slices."""
    block = fill * (1024 * 1024)
    with open(path, "wb") as file:
        file.write(head)
        for _ in range(size // len(block)):
            file.write(block)
    return path


def peak_of(path: Path, **options: str) -> tuple[SourceError, int]:
    tracemalloc.start()
    try:
        error = failure(path, **options)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return error, peak


# --- not a regular file -------------------------------------------------------------------


def assert_refused(path: Path | str, kind: str) -> None:
    expected = f"{path}: cannot read {kind}: the CSV path must name a regular file"
    with deadline(5):
        for read in (source(path).fields, lambda: list(source(path).rows())):
            with pytest.raises(SourceError) as info:
                read()
            assert info.value.source == str(path)
            assert str(info.value) == expected


def test_a_fifo_neither_blocks_nor_is_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pb.csv"
    os.mkfifo(fifo)
    assert_refused(fifo, "a FIFO (named pipe)")
    link = tmp_path / "link.csv"
    link.symlink_to(fifo)
    assert_refused(link, "a FIFO (named pipe)")


def test_a_fifo_with_a_writer_is_not_read_either(tmp_path: Path) -> None:
    fifo = tmp_path / "pb.csv"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so that the writer may open
    writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(writer, HEADER + b"\n" + ROW + b"\n")
        assert_refused(fifo, "a FIFO (named pipe)")
        assert os.read(reader, 4096).startswith(HEADER)  # nothing was taken from it
    finally:
        os.close(writer)
        os.close(reader)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_a_character_device_is_refused(tmp_path: Path, device: str) -> None:
    if not os.path.exists(device):
        pytest.skip(f"{device} does not exist here")
    assert_refused(device, "a character device")
    link = tmp_path / "pb.csv"
    link.symlink_to(device)
    assert_refused(link, "a character device")


def test_a_directory_is_refused(tmp_path: Path) -> None:
    assert_refused(tmp_path, "a directory")
    (tmp_path / "dir.csv").mkdir()
    assert_refused(tmp_path / "dir.csv", "a directory")


def test_a_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        server.listen()
        assert_refused(path, "a socket")


def test_a_file_swapped_for_a_fifo_after_the_check_is_refused_on_the_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "pb.csv"
    path.write_bytes(HEADER + b"\n" + ROW + b"\n")
    real_open = os.open

    def swap_then_open(file: str, flags: int, *args: int) -> int:
        # The path passes the check as a regular file, then becomes a FIFO before open.
        if os.fspath(file) == str(path) and path.is_file():
            path.unlink()
            os.mkfifo(path)
        return real_open(file, flags, *args)

    monkeypatch.setattr(os, "open", swap_then_open)
    with deadline(5), pytest.raises(SourceError) as info:
        source(path).fields()
    assert str(info.value) == (
        f"{path}: cannot read a FIFO (named pipe): the CSV path must name a regular file"
    )


def test_missing_and_dangling_paths_name_the_file(tmp_path: Path) -> None:
    link = tmp_path / "dangling.csv"
    link.symlink_to(tmp_path / "gone.csv")
    for path in (tmp_path / "nope.csv", link, tmp_path / "nope" / "pb.csv"):
        error = failure(path)
        assert str(error) == f"{path}: cannot open the file: No such file or directory"


def test_a_symlink_to_a_regular_file_is_read(tmp_path: Path) -> None:
    real = tmp_path / "real.csv"
    real.write_bytes(HEADER + b"\n" + ROW + b"\n")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    assert [data["displayname"] for _, data, _ in read_all(link)] == ["Anna"]


# --- what a message may quote -------------------------------------------------------------


def test_a_symlink_to_a_secret_file_never_puts_the_secret_in_a_message(tmp_path: Path) -> None:
    secret = tmp_path / "shadow"
    secret.write_text(
        SECRET + "\n" + "daemon:*:19000:0:99999:7:::,x\n" + "x" * (FIELD_LIMIT + 1) + "\n"
    )
    link = tmp_path / "pb.csv"
    link.symlink_to(secret)
    fields = source(link).fields()
    assert fields == [SECRET]  # a CSV of one column
    got = read_all(link)
    messages = [str(error) for _, _, error in got if error]
    assert messages == [
        "2 fields, but the header has 1 (check the delimiter and the enclosure of this line)",
        'the value of field "root:$6$Ym9ndXNzYWx0$c2VjcmV0LWhhc2gtdGh…" is 65,537 characters'
        " long; a value may have at most 65,536",
    ]
    # What the run says when the profile's columns are missing (see sync.runner).
    listed = describe_fields(fields)
    assert listed == "root:$6$Ym9ndXNzYWx0$c2VjcmV0LWhhc2gtdGh…"
    assert "c2VjcmV0LWhhc2gtdGhhdC1tdXN0LW5vdC1sZWFr" not in listed


def test_excerpts_escape_what_a_terminal_would_act_on() -> None:
    assert excerpt("phone") == "phone"
    assert excerpt("a\x1b[2Jb\r\nc\x00\\d\u202e") == "a\\x1b[2Jb\\r\\nc\\x00\\\\d\\u202e"
    assert excerpt("x" * 100) == "x" * 40 + "…"
    assert len(excerpt("\x00" * 100)) <= 40 + 4 + 1


def test_a_100000_column_header_fails_with_a_short_message(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_bytes(",".join(f"column{i}" for i in range(100_000)).encode() + b"\n1\n")
    error = failure(path)
    assert (error.source, error.line) == (str(path), 1)
    assert error.message == (
        "the header row is longer than 65,536 characters (is this a CSV file?)"
    )
    narrow = tmp_path / "narrow.csv"
    narrow.write_bytes(b",".join([b"x"] * 30_000) + b"\n")  # fits in HEADER_LIMIT
    assert len(narrow.read_bytes()) < HEADER_LIMIT
    error = failure(narrow, line_separator="lf")
    assert str(error) == (
        f"{narrow}, line 1: the header row has 30,000 columns; a CSV file may have at most 1,000"
    )


def test_the_widest_header_allowed_is_listed_in_one_short_line(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    names = [f"column number {i} of a very wide export" for i in range(MAX_COLUMNS)]
    path.write_bytes(",".join(names).encode() + b"\n")
    with deadline(10):
        fields = source(path).fields()
    assert len(fields) == MAX_COLUMNS
    listed = describe_fields(fields)
    assert listed.endswith(", … and 980 more")
    assert listed.startswith("column number 0 of a very wide export, column number 1")
    assert len(listed) < 1000
    path.write_bytes(b",".join([b"x"] * (MAX_COLUMNS + 1)) + b"\n")
    error = failure(path)
    assert str(error) == (
        f"{path}, line 1: the header row has 1,001 columns; a CSV file may have at most 1,000"
    )


def test_a_header_of_equal_or_empty_names_is_read_quickly(tmp_path: Path) -> None:
    path = tmp_path / "same.csv"
    path.write_bytes(b",".join([b"a"] * (MAX_COLUMNS - 4) + [b"", b" a ", b"a_2", b""]) + b"\n")
    with deadline(5):
        fields = source(path).fields()
    assert len(set(fields)) == MAX_COLUMNS
    assert fields[:3] == ["a", "a_3", "a_4"]
    assert fields[-4:] == ["field_997", "a_998", "a_2", "field_1000"]


# --- no line breaks, and memory -------------------------------------------------------------


@pytest.fixture(scope="module")
def big_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    where = tmp_path_factory.mktemp("big")
    yield {
        "header": write_big(where / "header.csv", b""),
        "body": write_big(where / "body.csv", HEADER + b"\r\n" + ROW + b"\n\n"),
        "zeros": write_big(where / "zeros.csv", b"", fill=b"\0"),
    }
    shutil.rmtree(where)


@pytest.mark.parametrize("encoding", ["utf-8", "auto"])
def test_a_file_without_line_breaks_is_not_read_into_memory(
    big_files: dict[str, Path], encoding: str
) -> None:
    path = big_files["header"]
    error, peak = peak_of(path, encoding=encoding)
    assert (error.source, error.line) == (str(path), 1)
    assert error.message == "the header row is longer than 65,536 characters (is this a CSV file?)"
    assert peak < BOUNDED


@pytest.mark.parametrize(
    ("options", "line"),
    [({}, 4), ({"encoding": "auto"}, 4), ({"line_separator": "crlf"}, 2)],
)
def test_a_row_without_end_fails_at_the_record_limit(
    big_files: dict[str, Path], options: dict[str, str], line: int
) -> None:
    path = big_files["body"]
    error, peak = peak_of(path, **options)
    assert (error.source, error.line) == (str(path), line)
    assert error.message.startswith(f"this row is longer than {RECORD_LIMIT:,} characters")
    assert peak < BOUNDED


@pytest.mark.parametrize("encoding", ["utf-8", "auto"])
def test_a_file_of_nul_bytes_like_dev_zero(big_files: dict[str, Path], encoding: str) -> None:
    error, peak = peak_of(big_files["zeros"], encoding=encoding)
    assert error.source == str(big_files["zeros"])
    assert peak < BOUNDED
    assert "\x00" not in str(error)


def test_a_value_over_the_limit_is_one_invalid_row(tmp_path: Path) -> None:
    path = tmp_path / "pb.csv"
    note = "n" * (FIELD_LIMIT + 1)
    path.write_text(f'displayname,"no\x1bte"\nAnna,x\nBert,"{note}"\nCarl,y\n')
    got = read_all(path)
    assert [(line, data.get("displayname")) for line, data, _ in got] == [
        (2, "Anna"),
        (3, None),
        (4, "Carl"),
    ]
    assert got[1][2] == (
        'the value of field "no\\x1bte" is 65,537 characters long; a value may have at most 65,536'
    )


def test_a_long_value_fails_one_row_of_a_run(tmp_path: Path, sqlite_url: str) -> None:
    path = tmp_path / "pb.csv"
    long = "x" * (FIELD_LIMIT + 1)
    path.write_text(
        "\n".join([",".join(PHONEBOOK_HEADER), "Anna,+49 991 1,,,,,,,", f"Bert,+49 991 2,{long}"])
        + ",,,,,,\n"
    )
    engine = store_db.open_store_engine(sqlite_url)
    try:
        make_profile(engine, "pb", "csv-phonebook", path, mode="update")
        with deadline(30):
            report = run_profile(engine, "pb")
        assert report["status"] == "ok", report
        assert report["counts"]["created"] == 1 and report["counts"]["invalid"] == 1
        (error,) = report["errors"]
        assert error["line"] == 3
        assert 'field "givenname"' in error["message"]
        assert [r["displayname"] for r in records(engine, "phonebook")] == ["Anna"]
    finally:
        engine.dispose()


# --- what the body may hold ---------------------------------------------------------------


def test_nul_bytes_in_the_body_are_data(tmp_path: Path) -> None:
    path = tmp_path / "pb.csv"
    path.write_bytes(b'name,note\nA\x00nna,\x00\n\x00,"x\x00\ny"\n')
    assert read_all(path) == [
        (2, {"name": "A\x00nna", "note": "\x00"}, None),
        (3, {"name": "\x00", "note": "x\x00\ny"}, None),
    ]


@pytest.mark.parametrize("encoding", ["utf-8", "auto", "utf-8-sig"])
def test_a_bom_is_not_part_of_the_first_name(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "pb.csv"
    path.write_bytes(b"\xef\xbb\xbfname,note\r\nAnna,\xef\xbb\xbfkept\r\n")
    assert source(path, encoding=encoding).fields() == ["name", "note"]
    assert read_all(path, encoding=encoding) == [(2, {"name": "Anna", "note": "\ufeffkept"}, None)]


def test_mixed_line_breaks_count_as_an_editor_counts(tmp_path: Path) -> None:
    path = tmp_path / "pb.csv"
    path.write_bytes(b'a,b\r\n1,x\n2,"y\r\nz"\r3,w\r\n\n4,v')
    assert read_all(path) == [
        (2, {"a": "1", "b": "x"}, None),
        (3, {"a": "2", "b": "y\r\nz"}, None),
        (5, {"a": "3", "b": "w"}, None),
        (7, {"a": "4", "b": "v"}, None),
    ]


def test_duplicate_and_empty_names(tmp_path: Path) -> None:
    path = tmp_path / "pb.csv"
    path.write_bytes(b",phone, phone ,,phone_2,\n1,2,3,4,5,6\n")
    assert source(path).fields() == ["field_1", "phone", "phone_3", "field_4", "phone_2", "field_6"]
    path.write_bytes(b'"",\n1,2\n')
    assert read_all(path) == [(2, {"field_1": "1", "field_2": "2"}, None)]


# --- a file that changes, vanishes or cannot be read ------------------------------------------


def phonebook(path: Path, rows: int) -> Path:
    path.write_bytes(
        HEADER + b"\n" + b"".join(b"P%d,+49 991 %d,,,,,,,\n" % (i, i) for i in range(rows))
    )
    return path


@pytest.mark.parametrize("change", ["append", "truncate", "rewrite"])
def test_a_file_that_changes_while_read_fails(tmp_path: Path, change: str) -> None:
    path = phonebook(tmp_path / "pb.csv", 20_000)
    rows = source(path).rows()
    with deadline(20), pytest.raises(SourceError) as info:
        next(rows)
        if change == "append":
            with open(path, "ab") as file:
                file.write(b"Late,+49 991 9,,,,,,,\n")
        elif change == "truncate":
            os.truncate(path, path.stat().st_size // 2)
        else:
            # Same size, new content, a later modification time (as a writer leaves it).
            before = path.stat()
            path.write_bytes(path.read_bytes().replace(b"P1", b"Q1"))
            os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
        for _ in rows:
            pass
    assert str(info.value) == (
        f"{path}: the file changed while it was read (is it still being written?)"
    )


def test_a_file_replaced_or_removed_while_read_is_read_as_opened(tmp_path: Path) -> None:
    path = phonebook(tmp_path / "pb.csv", 20_000)
    rows = source(path).rows()
    with deadline(20):
        first = next(rows)
        path.unlink()
        assert 1 + sum(1 for _ in rows) == 20_000
        assert first.data["displayname"] == "P0"
        phonebook(tmp_path / "new.csv", 3)
        phonebook(path, 20_000)
        rows = source(path).rows()
        next(rows)
        os.replace(tmp_path / "new.csv", path)  # how an export should replace a file
        assert 1 + sum(1 for _ in rows) == 20_000


def test_a_file_that_vanishes_between_header_and_rows(tmp_path: Path) -> None:
    path = phonebook(tmp_path / "pb.csv", 2)
    assert source(path).fields() == PHONEBOOK_HEADER
    path.unlink()
    assert str(failure(path)) == f"{path}: cannot open the file: No such file or directory"


def without_root_powers() -> list[str]:
    """A command prefix under which file permissions apply, even to root."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root, and setpriv is missing to drop CAP_DAC_OVERRIDE")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]


def test_a_file_that_cannot_be_read_names_the_file(tmp_path: Path) -> None:
    path = phonebook(tmp_path / "pb.csv", 2)
    path.chmod(0)
    script = (
        "import sys\n"
        "from pbx_connector.errors import SourceError\n"
        "from pbx_connector.sources.csv import CsvOptions, CsvSource\n"
        "try:\n"
        "    list(CsvSource(sys.argv[1], CsvOptions()).rows())\n"
        "except SourceError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [*without_root_powers(), sys.executable, "-c", script, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"{path}: cannot open the file: Permission denied\n"


# --- end to end: the command an administrator runs -------------------------------------------


def pbx(db: Path, *args: str, prefix: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    """The command in a child process with a timeout: a hang fails, it does not block."""
    return subprocess.run(
        [*(prefix or []), sys.executable, "-m", "pbx_connector.cli", "--db", str(db), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_run_failed(db: Path, done: subprocess.CompletedProcess[str], *words: str) -> str:
    """One `error:` line and one failed-run line, exit code 3, and an empty store."""
    assert done.returncode == 3, done
    assert "Traceback" not in done.stderr + done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    failed = [line for line in done.stderr.splitlines() if re.match(r"run \d+: failed", line)]
    assert len(failed) == 1, done.stderr
    for word in words:
        assert word in errors[0], errors[0]
    engine = store_db.open_store_engine(f"sqlite:///{db}")
    try:
        assert records(engine, "phonebook") == []
    finally:
        engine.dispose()
    return errors[0]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "cli.db")


def create_profile(cli: Cli, path: Path | str) -> None:
    with deadline(30):
        created = cli(
            "profile", "create", "p", "--template", "csv-phonebook", "--set", f"path={path}"
        )
    assert "could not read the source yet" in created.stdout + created.stderr


def test_sync_of_a_fifo_fails_at_once_and_releases_the_run_lock(cli: Cli, tmp_path: Path) -> None:
    fifo = tmp_path / "pb.csv"
    os.mkfifo(fifo)
    create_profile(cli, fifo)
    for _ in range(2):  # the second run is not refused as "already running"
        done = pbx(cli.db, "sync", "p")
        assert_run_failed(cli.db, done, str(fifo), "cannot read a FIFO (named pipe)")


def test_sync_of_dev_zero_fails(cli: Cli) -> None:
    create_profile(cli, "/dev/zero")
    done = pbx(cli.db, "sync", "p")
    assert_run_failed(cli.db, done, "/dev/zero: cannot read a character device")


def test_sync_of_a_file_without_line_breaks_fails_with_its_line(
    cli: Cli, big_files: dict[str, Path]
) -> None:
    path = big_files["body"]
    cli("profile", "create", "p", "--template", "csv-phonebook", "--set", f"path={path}")
    done = pbx(cli.db, "sync", "p")
    line = assert_run_failed(cli.db, done, str(path), "this row is longer than 1,048,576")
    assert len(line) < 300
    # The line is reported apart from the message.
    assert "line 4" in done.stderr


def test_sync_of_a_100000_column_header_fails_in_one_short_message(
    cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "wide.csv"
    path.write_bytes(b",".join(b"c%d" % i for i in range(100_000)) + b"\n")
    create_profile(cli, path)
    done = pbx(cli.db, "sync", "p")
    assert_run_failed(cli.db, done, str(path), "header row is longer")
    assert len(done.stdout + done.stderr) < 1000


def test_sync_of_a_file_that_cannot_be_read(cli: Cli, tmp_path: Path) -> None:
    path = phonebook(tmp_path / "pb.csv", 2)
    cli("profile", "create", "p", "--template", "csv-phonebook", "--set", f"path={path}")
    path.chmod(0)
    done = pbx(cli.db, "sync", "p", prefix=without_root_powers())
    assert_run_failed(cli.db, done, f"{path}: cannot open the file: Permission denied")


def test_sync_of_a_symlink_to_a_secret_file_does_not_print_the_secret(
    cli: Cli, tmp_path: Path
) -> None:
    secret = tmp_path / "shadow"
    secret.write_text(SECRET + "\nbin:*:19000:0:99999:7:::\n")
    link = tmp_path / "pb.csv"
    link.symlink_to(secret)
    cli("profile", "create", "p", "--template", "csv-phonebook", "--set", f"path={link}")
    done = pbx(cli.db, "sync", "p")
    assert_run_failed(cli.db, done, str(link))
    hashed = "c2VjcmV0LWhhc2gtdGhhdC1tdXN0LW5vdC1sZWFr"
    assert hashed not in done.stdout + done.stderr
    assert "its columns are: root:$6$" in done.stderr  # an excerpt, cut before the hash
    # Nor is it in the run stored for `runs` and the web pages.
    for file in cli.db.parent.glob(cli.db.name + "*"):
        assert hashed.encode() not in file.read_bytes()
