"""CSV files read from an SMB/CIFS share: against a real, private Samba smbd (see
``tests/servers/smbd.py``), never a mock of one."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pbx_connector.errors import ConfigError, SourceError
from pbx_connector.sources.files import open_file_source
from pbx_connector.sources.location import check_location, location_kind
from pbx_connector.sources.smb import SHARE, parse_share_path
from tests.helpers import PHONEBOOK_HEADER, Cli, phonebook_row, silent_server
from tests.servers import smbd_fixtures
from tests.servers.smbd import HOST, SECURE_SHARE, UPN, SmbdServer, free_port

smbd_server = smbd_fixtures.smbd_server

SEED_PATH = "test\\address.csv"
SEED_CSV = (
    b'"displayname","phone","givenname","surname","organisation","email","mobile",'
    b'"homephone","fax"\r\n'
    b'"Max Muster - pascom [30000]","+4999112345","Max","Muster","pascom","","","",'
    b'"+4999112399"\r\n'
)


@pytest.fixture(scope="module")
def share(smbd_server: SmbdServer) -> SmbdServer:
    smbd_server.write("test/address.csv", SEED_CSV)
    return smbd_server


def _settings(server: SmbdServer, **changes: str) -> dict[str, str]:
    settings = {
        "use_share": "yes",
        "share": server.unc(),
        "share_port": str(server.port),
        "path": SEED_PATH,
        "share_user": server.user,
        "timeout": "10",
    }
    settings.update(changes)
    return settings


def _secrets(server: SmbdServer, password: str | None = None) -> dict[str, str]:
    return {"share_password": server.password if password is None else password}


def _rows(settings: dict[str, str], secrets: dict[str, str]) -> list[dict[str, Any]]:
    source = open_file_source(settings, secrets)
    return [dict(row.data) for row in source.rows()]


def _smb_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("msg_worker")]


# --- reading --------------------------------------------------------------------------------


def test_the_seed_example_path_in_a_subfolder(share: SmbdServer) -> None:
    settings = _settings(share)
    assert location_kind(settings).name == "share"
    source = open_file_source(settings, _secrets(share))
    assert source.name == f"\\\\{HOST}\\exports\\test\\address.csv"
    assert source.fields()[:3] == ["displayname", "phone", "givenname"]
    rows = [row.data for row in source.rows()]
    assert rows == [
        {
            "displayname": "Max Muster - pascom [30000]",
            "phone": "+4999112345",
            "givenname": "Max",
            "surname": "Muster",
            "organisation": "pascom",
            "email": "",
            "mobile": "",
            "homephone": "",
            "fax": "+4999112399",
        }
    ]
    assert _smb_threads() == []  # every connection closed again


@pytest.mark.parametrize(
    "share_form, path",
    [
        ("\\\\{host}\\exports", "test/address.csv"),
        ("//{host}/exports", "test/address.csv"),
        ("//{host}/exports/", "/test//address.csv"),
        ("\\\\{host}\\exports\\", "\\test\\.\\address.csv"),
    ],
)
def test_slashes_either_way(share: SmbdServer, share_form: str, path: str) -> None:
    settings = _settings(share, share=share_form.format(host=HOST), path=path)
    rows = _rows(settings, _secrets(share))
    assert [r["displayname"] for r in rows] == ["Max Muster - pascom [30000]"]


@pytest.mark.parametrize("user", ["pbx", "EXAMPLE\\pbx", UPN])
def test_user_forms(share: SmbdServer, user: str) -> None:
    rows = _rows(_settings(share, share_user=user), _secrets(share))
    assert len(rows) == 1


@pytest.mark.parametrize("encoding", ["cp1252", "auto"])
def test_a_cp1252_file(share: SmbdServer, encoding: str) -> None:
    text = "displayname,phone,organisation\r\nJürgen Groß,+49 991 1,Müller & Söhne\r\n"
    share.write("test/cp1252.csv", text.encode("cp1252"))
    settings = _settings(share, path="test\\cp1252.csv", encoding=encoding)
    assert _rows(settings, _secrets(share)) == [
        {"displayname": "Jürgen Groß", "phone": "+49 991 1", "organisation": "Müller & Söhne"}
    ]


def test_cp1252_read_as_utf8_fails_with_the_line(share: SmbdServer) -> None:
    share.write("test/cp1252-bad.csv", "displayname,phone\nJürgen,1\n".encode("cp1252"))
    with pytest.raises(SourceError) as caught:
        _rows(_settings(share, path="test\\cp1252-bad.csv"), _secrets(share))
    assert caught.value.line == 2
    assert "cp1252" in str(caught.value)
    assert caught.value.source == f"\\\\{HOST}\\exports\\test\\cp1252-bad.csv"


def test_a_share_that_requires_encryption(share: SmbdServer) -> None:
    share.write("enc.csv", b"displayname,phone\nSecret,1\n", share=SECURE_SHARE)
    settings = _settings(share, share=share.unc(SECURE_SHARE), path="enc.csv")
    location = SHARE.build(settings, _secrets(share))
    with location.open() as stream:
        # While the file is open, the server lists the connection to the share as
        # encrypted (smbstatus -S: one line per share connection).
        status = subprocess.run(
            ["smbstatus", "-S", "-s", str(share.conf)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert stream.read() == b"displayname,phone\nSecret,1\n"
    line = next(li for li in status.stdout.splitlines() if li.startswith(SECURE_SHARE))
    assert "AES" in line, status.stdout


def test_the_stream_is_seekable_and_buffered(share: SmbdServer) -> None:
    location = SHARE.build(_settings(share), _secrets(share))
    with location.open() as stream:
        assert stream.seekable()
        head = stream.read(20)
        stream.seek(0)
        assert stream.read(20) == head
        assert stream.seek(0, os.SEEK_END) == len(SEED_CSV)
        assert stream.read() == b""


_MEMORY_PROBE = textwrap.dedent(
    """
    import json, resource, sys
    from pbx_connector.sources.files import open_file_source
    settings, secrets, encoding = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
    settings["encoding"] = encoding
    import pbx_connector.sources.csv, pbx_connector.sources.smb, smbprotocol.connection
    source = open_file_source(settings, secrets)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    source.fields()
    rows = 0
    size = 0
    for row in source.rows():
        rows += 1
        size += len(row.data["displayname"])
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rows": rows, "size": size, "growth_kib": after - before}))
    """
)


@pytest.fixture(scope="module")
def large_file(share: SmbdServer) -> tuple[str, int, int]:
    """A 50 MB CSV file on the share: (path, rows, bytes)."""
    line = "Person {:07d},+49 991 {:07d},Given,Surname,Example GmbH,x@example.test\n"
    header = "displayname,phone,givenname,surname,organisation,email\n"
    rows = 700_000
    target = share.share_dir / "large" / "big.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="ascii") as fh:
        fh.write(header)
        for start in range(0, rows, 10_000):
            fh.write("".join(line.format(i, i) for i in range(start, start + 10_000)))
    size = target.stat().st_size
    assert size > 50_000_000
    return "large\\big.csv", rows, size


@pytest.mark.parametrize("encoding", ["utf-8", "auto"])
def test_a_large_file_is_streamed_in_constant_memory(
    share: SmbdServer, large_file: tuple[str, int, int], encoding: str
) -> None:
    path, rows, size = large_file
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _MEMORY_PROBE,
            json.dumps(_settings(share, path=path)),
            json.dumps(_secrets(share)),
            encoding,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["rows"] == rows
    # The whole file would be 50 MB (and far more as rows); a few chunks of 1 MiB are not.
    assert result["growth_kib"] < 20 * 1024, result
    assert size > 50_000_000


# --- failures -------------------------------------------------------------------------------


@pytest.fixture
def silent_port() -> Iterator[int]:
    with silent_server(HOST) as port:
        yield port


def _failure_settings(server: SmbdServer, case: str, silent_port: int) -> dict[str, str]:
    if case == "wrong password":
        return _settings(server)
    if case == "unknown share":
        return _settings(server, share=f"\\\\{HOST}\\nosuch")
    if case == "missing file":
        return _settings(server, path="test\\missing.csv")
    if case == "missing folder":
        return _settings(server, path="nofolder\\address.csv")
    if case == "unreachable server":
        return _settings(server, share_port=str(free_port()))
    if case == "server never answers":
        return _settings(server, share_port=str(silent_port), timeout="1")
    raise AssertionError(case)


FAILURES = {
    # case: (what the message names, the step)
    "wrong password": (
        f"\\\\{HOST}\\exports\\test\\address.csv",
        f"cannot log on to {HOST} as pbx: wrong user name or password (STATUS_LOGON_FAILURE)",
    ),
    "unknown share": (
        f"\\\\{HOST}\\nosuch\\test\\address.csv",
        f"cannot open the share \\\\{HOST}\\nosuch: the server has no such share",
    ),
    "missing file": (
        f"\\\\{HOST}\\exports\\test\\missing.csv",
        "cannot open the file test\\missing.csv on the share: no such file",
    ),
    "missing folder": (
        f"\\\\{HOST}\\exports\\nofolder\\address.csv",
        "cannot open the file nofolder\\address.csv on the share: a folder of the path "
        "does not exist",
    ),
    "unreachable server": (
        f"\\\\{HOST}\\exports\\test\\address.csv",
        "cannot connect to the SMB server 127.0.0.1:",
    ),
    "server never answers": (
        f"\\\\{HOST}\\exports\\test\\address.csv",
        "the server did not answer within 1 s",
    ),
}
WRONG_PASSWORD = "Wrong-Pw-4711"


@pytest.mark.parametrize("case", list(FAILURES))
def test_each_failure_names_the_share_and_the_step(
    share: SmbdServer, silent_port: int, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    password = WRONG_PASSWORD if case == "wrong password" else share.password
    settings = _failure_settings(share, case, silent_port)
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        _rows(settings, _secrets(share, password))
    elapsed = time.monotonic() - started
    name, step = FAILURES[case]
    text = str(caught.value)
    assert caught.value.source == name
    assert text.startswith(f"{name}: ")
    assert step in text
    if case == "unreachable server":
        assert "refused" in text
    if case == "server never answers":
        assert elapsed < 15  # the 1 s timeout, not smbprotocol's own minutes
    for secret in (password, share.password):
        assert secret not in text
        assert secret not in caplog.text
        assert secret not in repr(caught.value.__cause__) + repr(caught.value.__context__)
    assert caught.value.__cause__ is None
    assert _smb_threads() == []


def _serving_pids(server: SmbdServer) -> list[int]:
    """The smbd processes that serve a client now (smbstatus -p: one line per session)."""
    out = subprocess.run(
        ["smbstatus", "-p", "-s", str(server.conf)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return [
        int(line.split()[0])
        for line in out.splitlines()
        if line.split()[:1] != [] and line.split()[0].isdigit()
    ]


def test_a_server_that_stops_answering_mid_file_fails_after_the_timeout(
    share: SmbdServer, large_file: tuple[str, int, int]
) -> None:
    """smbprotocol waits forever for an answer unless told otherwise: the timeout holds
    for every read too, not only for the connect."""
    path, _rows_count, _size = large_file
    location = SHARE.build(_settings(share, path=path, timeout="1"), _secrets(share))
    stopped: list[int] = []
    started = 0.0
    try:
        with pytest.raises(SourceError) as caught, location.open() as stream:
            assert stream.read(10) == b"displayname"[:10]
            stopped = _serving_pids(share)
            assert stopped
            for pid in stopped:
                os.kill(pid, signal.SIGSTOP)
            started = time.monotonic()
            while stream.read(1024 * 1024):
                pass
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
    assert time.monotonic() - started < 15
    assert str(caught.value) == (
        f"\\\\{HOST}\\exports\\large\\big.csv: cannot read the file large\\big.csv: "
        "no answer within 1 s"
    )
    assert _smb_threads() == []


def test_a_wrong_password_is_one_failed_logon(share: SmbdServer) -> None:
    """The server sees exactly one logon attempt per run (no retry, no second protocol),
    so that a run cannot lock a domain account by itself."""
    before = share.failed_logons()
    with pytest.raises(SourceError):
        _rows(_settings(share), _secrets(share, WRONG_PASSWORD))
    after = share.failed_logons()
    assert after - before == 1


def test_a_password_that_is_a_word_of_the_message_leaves_it_intact(share: SmbdServer) -> None:
    with pytest.raises(SourceError) as caught:
        _rows(_settings(share), _secrets(share, "wrong"))
    assert str(caught.value) == (
        f"\\\\{HOST}\\exports\\test\\address.csv: cannot log on to {HOST} as pbx: wrong user "
        "name or password (STATUS_LOGON_FAILURE); the logon was tried once; fix share_user or "
        "share_password before the next run, as repeated failures can lock the account"
    )


@pytest.mark.parametrize(
    "setting, value, message",
    [
        ("share", "fileserver\\exports", "UNC path"),
        ("share", "\\\\fileserver", "a server and a share name"),
        ("share", "\\\\fileserver\\exports\\test", "put the folders inside it into path"),
        ("share", "\\\\file server\\exports", "not a server name"),
        ("share", "\\\\fileserver\\ex*ports", "not a valid share name"),
        ("share_port", "0", "1 to 65535"),
        ("share_port", "65536", "1 to 65535"),
        ("share_port", "smb", "1 to 65535"),
        ("share_user", "EXAMPLE\\", "DOMAIN\\user"),
        ("share_user", "\\pbx", "DOMAIN\\user"),
        ("share_user", "A\\B\\pbx", "DOMAIN\\user"),
        ("share_user", "pbx@", "user@domain"),
        ("share_user", "@example.test", "user@domain"),
        ("path", "..\\secret.csv", "cannot leave the share"),
        ("path", "test/../../x.csv", "cannot leave the share"),
        ("path", "test\\a?.csv", "cannot have"),
        ("path", "test\\address.csv:stream", "cannot have"),
        ("timeout", "0", "positive number"),
        ("timeout", "-3", "positive number"),
        ("timeout", "soon", "positive number"),
        ("timeout", "nan", "positive number"),
    ],
)
def test_settings_are_checked_when_set(setting: str, value: str, message: str) -> None:
    settings = {"use_share": "yes", setting: value}
    with pytest.raises(ConfigError) as caught:
        check_location(settings)
    assert caught.value.field == setting
    assert message in caught.value.message


def test_unset_settings_are_not_checked_but_needed_to_read() -> None:
    check_location({"use_share": "yes"})  # a profile may be saved before all are set
    check_location({"use_share": "yes", "share": "\\\\[fd00::1]\\exports", "timeout": "2.5"})
    base = {"use_share": "yes", "share": "\\\\fs\\exports", "path": "a.csv", "share_user": "u"}
    for missing, field in (("share", "share"), ("path", "path"), ("share_user", "share_user")):
        settings = {k: v for k, v in base.items() if k != missing}
        with pytest.raises(ConfigError) as caught:
            open_file_source(settings, {"share_password": "x"})
        assert caught.value.field == field
    with pytest.raises(ConfigError) as caught:
        open_file_source(base, {})
    assert caught.value.field == "share_password"


def test_share_paths_keep_their_folders() -> None:
    assert parse_share_path("test/address.csv") == "test\\address.csv"
    assert parse_share_path("\\\\test\\\\address.csv") == "test\\address.csv"
    assert parse_share_path(" Export 2024\\Adressen.csv ") == "Export 2024\\Adressen.csv"


def test_the_location_never_shows_the_password(share: SmbdServer) -> None:
    location = SHARE.build(_settings(share), _secrets(share))
    assert share.password not in repr(location)
    assert share.password not in location.name


# --- through a real sync --------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "cli.db")


def _create(cli: Cli, server: SmbdServer, name: str, path: str, mode: str = "mirror") -> None:
    cli(
        "profile",
        "create",
        name,
        "--template",
        "csv-phonebook",
        "--mode",
        mode,
        "--set",
        "use_share=yes",
        "--set",
        f"share={server.unc()}",
        "--set",
        f"share_port={server.port}",
        "--set",
        f"path={path}",
        "--set",
        "share_user=EXAMPLE\\pbx",
        "--set",
        # Long enough for a logon on a loaded machine; the silent server's case sets 1 s.
        "timeout=15",
        "--set-secret",
        "share_password",
        stdin=server.password + "\n",
    )


def _phonebook_csv(*names: str) -> bytes:
    lines = [",".join(PHONEBOOK_HEADER)]
    for i, name in enumerate(names):
        lines.append(",".join(phonebook_row(name, f"+49 991 {1000 + i}")))
    return ("\r\n".join(lines) + "\r\n").encode()


def _breakages(server: SmbdServer, cli: Cli, name: str, silent: int) -> Iterator[str]:
    """Break the profile in each way, one after another; yield what each run must say."""
    cli("profile", "set", name, "--set-secret", "share_password", stdin=WRONG_PASSWORD + "\n")
    yield "cannot log on to 127.0.0.1 as EXAMPLE\\pbx: wrong user name or password"
    cli("profile", "set", name, "--set-secret", "share_password", stdin=server.password + "\n")
    cli("profile", "set", name, f"share=\\\\{HOST}\\nosuch")
    yield f"cannot open the share \\\\{HOST}\\nosuch: the server has no such share"
    cli("profile", "set", name, f"share={server.unc()}")
    cli("profile", "set", name, "path=sync\\gone.csv")
    yield "cannot open the file sync\\gone.csv on the share: no such file"
    cli("profile", "set", name, "path=sync\\pb.csv")
    cli("profile", "set", name, f"share_port={free_port()}")
    yield "cannot connect to the SMB server 127.0.0.1:"
    cli("profile", "set", name, f"share_port={silent}", "timeout=1")
    yield "the server did not answer within 1 s"


@pytest.mark.parametrize("mode", ["mirror", "update"])
def test_a_failing_run_changes_nothing(
    share: SmbdServer, cli: Cli, silent_port: int, mode: str
) -> None:
    share.write("sync/pb.csv", _phonebook_csv("Anna Alt", "Bernd Bau", "Clara Chor"))
    _create(cli, share, "pb", "sync\\pb.csv", mode)
    report = cli.json("sync", "pb")
    assert report["status"] == "ok" and report["counts"]["created"] == 3
    before = cli.json("phonebook", "list")
    # The file now lacks two entries: a mirror run that read it would delete them.
    share.write("sync/pb.csv", _phonebook_csv("Anna Alt"))
    for expected in _breakages(share, cli, "pb", silent_port):
        result = cli("sync", "pb", code=3)
        assert expected in result.stderr
        assert f"\\\\{HOST}\\" in result.stderr
        assert share.password not in result.stderr + result.stdout
        assert WRONG_PASSWORD not in result.stderr + result.stdout
        assert cli.json("phonebook", "list") == before
    runs = cli.json("runs", "pb")
    assert [r["status"] for r in runs[:5]] == ["failed"] * 5
    for run in runs[:5]:
        shown = cli("run", "show", str(run["id"]), "--json").stdout
        assert share.password not in shown and WRONG_PASSWORD not in shown
        assert "\\\\127.0.0.1\\" in shown
    # Repaired, the next run applies the new file.
    cli("profile", "set", "pb", f"share_port={share.port}")
    report = cli.json("sync", "pb")
    assert report["status"] == "ok"
    names = sorted(e["displayname"] for e in cli.json("phonebook", "list"))
    assert names == (["Anna Alt"] if mode == "mirror" else sorted(e["displayname"] for e in before))


def test_show_and_export_never_carry_the_password(
    share: SmbdServer, cli: Cli, tmp_path: Path
) -> None:
    share.write("sync/show.csv", _phonebook_csv("Dora Dach"))
    _create(cli, share, "show", "sync\\show.csv")
    shown = cli("profile", "show", "show").stdout + cli("profile", "show", "show", "--json").stdout
    assert share.password not in shown
    out = tmp_path / "show.json"
    cli("profile", "export", "show", "-o", str(out))
    text = out.read_text()
    assert share.password not in text
    exported = json.loads(text)
    settings = exported["settings"]
    assert settings["use_share"] == "yes"
    assert settings["share"] == share.unc()
    assert settings["path"] == "sync\\show.csv"
    assert settings["share_user"] == "EXAMPLE\\pbx"
    assert "share_password" not in settings
    assert exported["secrets_not_exported"] == ["share_password"]
    report = cli.json("sync", "show")
    assert report["status"] == "ok" and report["counts"]["created"] == 1
    assert share.password not in json.dumps(report)


def test_profile_create_keeps_the_share_path_as_typed(share: SmbdServer, cli: Cli) -> None:
    cli(
        "profile",
        "create",
        "typed",
        "--template",
        "csv-phonebook",
        "--set",
        "use_share=yes",
        "--set",
        f"share={share.unc()}",
        "--set",
        f"path={SEED_PATH}",
        "--set",
        "share_user=pbx",
    )
    assert cli.json("profile", "show", "typed")["settings"]["path"] == SEED_PATH
