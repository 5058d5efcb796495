"""The `peer` source against real pbx-connector instances: two `serve` processes on
loopback, the first (the peer) read by a `peer-phonebook` profile of the second."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from pbx_connector.errors import ConfigError, SourceError
from pbx_connector.sources.peer import CHANGED, PAGE_SIZE, check_settings, open_peer
from tests.api.conftest import Server, run_cli
from tests.helpers import PHONEBOOK_HEADER, free_port, write_csv
from tests.servers.tls import TlsFiles, make_tls_files

PROFILE = "from-peer"


# --- two instances --------------------------------------------------------------------------


#: `serve` with TLS: the same application, handed to uvicorn with a certificate (as a
#: TLS-terminating proxy in front of `serve` would present one).
_SERVE_TLS = """
import sys, uvicorn
from pbx_connector.api import create_api
from pbx_connector.service.app import App
db, port, cert, key = sys.argv[1:]
uvicorn.run(create_api(App.open(db)), host="127.0.0.1", port=int(port),
            ssl_certfile=cert, ssl_keyfile=key, log_level="info", access_log=False)
"""


@contextmanager
def _serve(
    directory: Path, tls: TlsFiles | None = None
) -> Iterator[tuple[Server, subprocess.Popen[bytes]]]:
    """`pbx-connector serve` on its own SQLite store and data directory, with an admin
    token; its log must hold no traceback (and is checked for tokens by the tests)."""
    directory.mkdir()
    home = directory / "home"
    db = f"sqlite:///{directory / 'store.db'}"
    token = run_cli(db, home, "token", "create", "tests", "--role", "admin").stdout.strip()
    port = free_port()
    log_path = directory / "serve.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    if tls is None:
        command = ["-m", "pbx_connector.cli", "--db", db, "serve", "--port", str(port)]
    else:
        command = ["-c", _SERVE_TLS, db, str(port), str(tls.cert_file), str(tls.key_file)]
    proc = subprocess.Popen(
        [sys.executable, *command],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PBX_CONNECTOR_HOME": str(home)},
    )
    url = f"{'http' if tls is None else 'https'}://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                httpx.get(f"{url}/api/v1/openapi.json", timeout=2, verify=False)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(log_path.read_text()) from None
                time.sleep(0.1)
        yield Server(url, db, home, token), proc
    finally:
        _stop(proc)
        log.close()
        text = log_path.read_text()
        assert "Traceback" not in text, text


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def peer_proc(tmp_path: Path) -> Iterator[tuple[Server, subprocess.Popen[bytes]]]:
    with _serve(tmp_path / "peer") as started:
        yield started


@pytest.fixture
def peer(peer_proc: tuple[Server, subprocess.Popen[bytes]]) -> Server:
    """The instance whose global phonebook is read."""
    return peer_proc[0]


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Server]:
    """The instance with the peer-phonebook profile."""
    with _serve(tmp_path / "local") as (server, _):
        yield server


def cli(
    server: Server, *args: str, stdin: str = "", code: int = 0
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "pbx_connector.cli", "--db", server.db, *args],
        capture_output=True,
        text=True,
        input=stdin,
        env={**os.environ, "PBX_CONNECTOR_HOME": str(server.home)},
        timeout=120,
    )
    assert result.returncode == code, (result.stdout, result.stderr)
    return result


def viewer_token(
    server: Server, name: str = "peer reader", role: str = "viewer"
) -> tuple[str, int]:
    made = json.loads(cli(server, "token", "create", name, "--role", role, "--json").stdout)
    return made["token"], made["view"]["id"]


def add_entry(server: Server, **fields: str) -> dict[str, Any]:
    with server.client(server.admin_token) as client:
        response = client.post("/api/v1/phonebook", json=fields)
    assert response.status_code == 201, response.text
    entry: dict[str, Any] = response.json()
    return entry


def global_phonebook(server: Server) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    with server.client(server.admin_token) as client:
        while True:
            page = client.get(
                "/api/v1/phonebook",
                params={"owner": "", "order": "id", "limit": 1000, "offset": len(items)},
            ).json()
            items += page["items"]
            if len(items) >= page["total"]:
                return items


def create_profile(local: Server, peer: Server, token: str, *extra: str) -> str:
    result = cli(
        local,
        "profile",
        "create",
        PROFILE,
        "-t",
        "peer-phonebook",
        "--set",
        f"url={peer.url}",
        "--set-secret",
        "token",
        *extra,
        stdin=token + "\n",
    )
    return result.stdout + result.stderr


def api_run(local: Server, dry_run: bool = False) -> dict[str, Any]:
    """A run of the profile through the local instance's API, waited for."""
    with local.client(local.admin_token) as client:
        started = client.post(f"/api/v1/profiles/{PROFILE}/runs", json={"dry_run": dry_run})
        assert started.status_code == 202, started.text
        run_id = started.json()["id"]
        deadline = time.monotonic() + 120
        while True:
            run: dict[str, Any] = client.get(f"/api/v1/runs/{run_id}").json()
            if run["status"] not in ("queued", "running"):
                return run
            assert time.monotonic() < deadline, run
            time.sleep(0.1)


def imported(local: Server) -> dict[str, dict[str, Any]]:
    """The local global phonebook by the peer's id (the key of the entries' origin)."""
    entries = global_phonebook(local)
    assert all(e["origin"] and e["origin"]["profile"] == PROFILE for e in entries), entries
    return {_key(e["origin"]["key"]): e for e in entries}


def _key(key: Any) -> str:
    # The origin's key as the store shows it: the key value, or a list/dict holding it.
    if isinstance(key, str):
        return key
    if isinstance(key, list) and len(key) == 1:
        return str(key[0])
    if isinstance(key, dict) and len(key) == 1:
        return str(next(iter(key.values())))
    raise AssertionError(f"unexpected key {key!r}")


_COMPARED = (
    "displayname",
    "phone",
    "givenname",
    "surname",
    "organisation",
    "email",
    "mobile",
    "homephone",
    "fax",
    "notes",
    "homepage",
    "customernumber",
)


def assert_mirrors(local: Server, peer: Server) -> None:
    """The local global phonebook holds exactly the peer's global entries, field by field."""
    theirs = {str(e["id"]): e for e in global_phonebook(peer)}
    ours = imported(local)
    assert set(ours) == set(theirs)
    for key, entry in theirs.items():
        assert {f: ours[key][f] for f in _COMPARED} == {f: entry[f] for f in _COMPARED}
        assert ours[key]["owner"] == ""


def no_token_anywhere(token: str, *texts: str) -> None:
    for text in texts:
        assert token not in text
        assert token[8:24] not in text  # not even a part past the public prefix


# --- the scenarios ----------------------------------------------------------------------------


def test_global_phonebook_is_mirrored_across_syncs(
    peer_proc: tuple[Server, subprocess.Popen[bytes]], local: Server
) -> None:
    peer, peer_process = peer_proc
    anna = add_entry(
        peer,
        displayname="Anna Berg",
        phone="+49 991 1001",
        givenname="Anna",
        surname="Berg",
        organisation="ACME",
        email="anna@example.test",
        mobile="+49 170 1001",
        homephone="+49 991 9001",
        fax="+49 991 1099",
        notes="line one\nline two",
        homepage="https://acme.example.test/anna",
        customernumber="K-1",
    )
    bernd = add_entry(peer, displayname="Bernd Çelik – Straße", phone="0991 4711")
    carla = add_entry(peer, displayname="Carla", email="carla@example.test")
    with peer.client(peer.admin_token) as client:
        made = client.post("/api/v1/users", json={"username": "alice"})
        assert made.status_code == 201, made.text
    add_entry(peer, displayname="Private One", phone="+49 991 5555", owner="alice")
    add_entry(peer, displayname="Private Two", owner="admin")
    token, token_id = viewer_token(peer)

    notes = create_profile(local, peer, token)
    shown = cli(local, "profile", "show", PROFILE).stdout
    shown_json = cli(local, "profile", "show", PROFILE, "--json").stdout
    exported = cli(local, "profile", "export", PROFILE).stdout
    data = json.loads(exported)
    assert data["template"] == "peer-phonebook"
    assert data["settings"]["url"] == peer.url and data["secrets_not_exported"] == ["token"]
    assert {"ca_file", "verify", "timeout"} <= set(data["settings"])
    assert "token" not in data["settings"]
    assert json.loads(shown_json)["settings"]["key"] == "id"

    # The first sync: exactly the global entries, with every field.
    run = api_run(local)
    assert run["status"] == "ok", run
    assert run["counts"]["created"] == 3, run["counts"]
    assert_mirrors(local, peer)
    ours = imported(local)
    assert ours[str(anna["id"])]["notes"] == "line one\nline two"
    assert ours[str(bernd["id"])]["displayname"] == "Bernd Çelik – Straße"
    assert {e["displayname"] for e in ours.values()} == {
        "Anna Berg",
        "Bernd Çelik – Straße",
        "Carla",
    }

    # Nothing changed: nothing to do.
    run = api_run(local)
    assert run["status"] == "ok" and run["counts"].get("created", 0) == 0, run
    assert run["counts"].get("updated", 0) == 0 and run["counts"].get("deleted", 0) == 0

    # Create, update and delete on the peer show up after the next sync (mirror mode).
    dora = add_entry(peer, displayname="Dora", phone="+49 991 2002")
    with peer.client(peer.admin_token) as client:
        assert (
            client.patch(
                f"/api/v1/phonebook/{bernd['id']}",
                json={"phone": "+49 991 3003", "organisation": "Beta"},
            ).status_code
            == 200
        )
        assert client.delete(f"/api/v1/phonebook/{carla['id']}").status_code == 204
    kept_id = ours[str(bernd["id"])]["id"]
    synced = cli(local, "sync", PROFILE)
    report = json.loads(cli(local, "run", "show", _last_run_id(local), "--json").stdout)
    assert report["counts"]["created"] == 1 and report["counts"]["updated"] == 1
    assert report["counts"]["deleted"] == 1, report["counts"]
    assert_mirrors(local, peer)
    ours = imported(local)
    assert str(dora["id"]) in ours and str(carla["id"]) not in ours
    assert ours[str(bernd["id"])]["id"] == kept_id  # updated in place
    assert ours[str(bernd["id"])]["organisation"] == "Beta"

    # An admin token of the peer works as well.
    admin_token, _ = viewer_token(peer, "peer admin", role="admin")
    cli(local, "profile", "set", PROFILE, "--set-secret", "token", stdin=admin_token + "\n")
    run = api_run(local)
    assert run["status"] == "ok", run
    cli(local, "profile", "set", PROFILE, "--set-secret", "token", stdin=token + "\n")

    # A revoked token fails the run, names the peer and the refused token, deletes nothing.
    before = imported(local)
    cli(peer, "token", "revoke", str(token_id))
    run = api_run(local)
    assert run["status"] == "failed", run
    assert run["message"].startswith("failed, nothing changed: ")
    assert f"{peer.url}: the peer refused the API token (HTTP 401)" in run["message"]
    assert "revoked" in run["message"]
    assert imported(local) == before
    failed = cli(local, "sync", PROFILE, code=3)
    assert "the peer refused the API token" in failed.stdout + failed.stderr
    assert peer.url in failed.stdout + failed.stderr

    # A token that is not a pbx-connector token at all is refused the same way.
    cli(local, "profile", "set", PROFILE, "--set-secret", "token", stdin="pbxc_not-a-real-token\n")
    run = api_run(local)
    assert run["status"] == "failed" and "HTTP 401" in run["message"], run
    cli(local, "profile", "set", PROFILE, "--set-secret", "token", stdin=admin_token + "\n")

    # A stopped peer fails the run and deletes nothing.
    _stop(peer_process)
    run = api_run(local)
    assert run["status"] == "failed", run
    assert f"{peer.url}: cannot connect to the peer: " in run["message"], run["message"]
    assert imported(local) == before
    stopped = cli(local, "sync", PROFILE, code=3)
    preview = cli(local, "preview", PROFILE, code=3)

    # No token text anywhere a person or a file could see it.
    runs = cli(local, "runs", "--json").stdout
    every_report = [
        cli(local, "run", "show", str(r["id"]), "--json").stdout for r in json.loads(runs)
    ]
    logs = [(server.home.parent / "serve.log").read_text() for server in (local, peer)]
    texts = [
        notes,
        shown,
        shown_json,
        exported,
        synced.stdout,
        synced.stderr,
        failed.stdout,
        failed.stderr,
        stopped.stdout,
        stopped.stderr,
        preview.stdout,
        preview.stderr,
        runs,
        *every_report,
        *logs,
        cli(local, "profile", "export", PROFILE).stdout,
    ]
    for secret in (token, admin_token):
        no_token_anywhere(secret, *texts)


def fill(server: Server, count: int, directory: Path) -> None:
    """`count` global entries on `server`, imported there from a CSV file (quicker than
    one request each)."""
    csv_file = write_csv(
        directory / "many.csv",
        PHONEBOOK_HEADER,
        [
            [f"Person {n:04}", f"+49 991 {10000 + n}", "", "", f"Org {n % 7}", "", "", "", ""]
            for n in range(count)
        ],
    )
    cli(server, "profile", "create", "bulk", "-t", "csv-phonebook", "--set", f"path={csv_file}")
    cli(server, "sync", "bulk")


def _last_run_id(server: Server) -> str:
    runs = json.loads(cli(server, "runs", "--json").stdout)
    return str(max(r["id"] for r in runs))


def test_more_entries_than_a_page(peer: Server, local: Server, tmp_path: Path) -> None:
    count = 2 * PAGE_SIZE + 200
    fill(peer, count, tmp_path)
    token, _ = viewer_token(peer)
    create_profile(local, peer, token)
    run = api_run(local)
    assert run["status"] == "ok", run
    assert run["counts"]["created"] == count
    assert_mirrors(local, peer)


def test_a_phonebook_changing_while_it_is_read_fails_the_read(peer: Server, tmp_path: Path) -> None:
    """Deleting an entry already read moves the later ones down a place; adding one
    changes the total: either way the read stops instead of skipping an entry."""
    fill(peer, PAGE_SIZE + 20, tmp_path)
    token, _ = viewer_token(peer)
    entries = global_phonebook(peer)
    source = open_peer({"url": peer.url}, {"token": token})
    assert source.name == peer.url and source.open_ended is False
    assert source.fields()[0] == "id" and "owner" not in source.fields()

    rows = list(source.rows())
    assert [r.data["id"] for r in rows] == [str(e["id"]) for e in entries]
    assert [r.line for r in rows] == list(range(1, len(entries) + 1))
    assert rows[0].ref == f"{peer.url} entry {entries[0]['id']}"
    assert all(isinstance(v, str) for r in rows for v in r.data.values())

    with peer.client(peer.admin_token) as client:
        reading = source.rows()
        for _ in range(10):
            next(reading)
        assert client.delete(f"/api/v1/phonebook/{entries[3]['id']}").status_code == 204
        with pytest.raises(SourceError, match=CHANGED) as caught:
            list(reading)
        assert caught.value.source == peer.url

        reading = source.rows()
        next(reading)
        add_entry(peer, displayname="Late")
        with pytest.raises(SourceError, match=CHANGED):
            list(reading)


def test_what_each_failure_says(peer: Server) -> None:
    token, _ = viewer_token(peer)

    def error(settings: dict[str, str], secret: str = token) -> str:
        with pytest.raises(SourceError) as caught:
            list(open_peer(settings, {"token": secret}).rows())
        assert token not in str(caught.value)
        return str(caught.value)

    # Another path below the same server: not a pbx-connector API.
    assert "no pbx-connector phonebook API at" in error({"url": f"{peer.url}/somewhere"})
    assert "HTTP 404" in error({"url": f"{peer.url}/somewhere"})
    # Nothing listens there.
    gone = f"http://127.0.0.1:{free_port()}"
    assert error({"url": gone}).startswith(f"{gone}: cannot connect to the peer: ")
    # https:// to a plain-HTTP server.
    tls = error({"url": peer.url.replace("http://", "https://")})
    assert "TLS handshake with the peer failed (wrong version number)" in tls
    assert "does it serve plain http" in tls
    # A 401 and no token at all.
    assert "HTTP 401" in error({"url": peer.url}, "pbxc_wrong")
    with pytest.raises(ConfigError, match="no API token of the peer is set") as missing:
        list(open_peer({"url": peer.url}, {}).rows())
    assert missing.value.field == "token"


def test_a_server_that_is_not_a_peer(tmp_path: Path) -> None:
    """A plain web server where the url points, and one that accepts the connection but
    never answers: the read fails and says why."""
    root = tmp_path / "www"
    for prefix, body in (
        ("html", "<html><body>Welcome</body></html>"),
        ("object", '{"items": "none", "total": 1}'),
        ("private", '{"items": [{"id": 1, "displayname": "P", "owner": "alice"}], "total": 1}'),
        (
            "ids",
            '{"items": [{"id": 2, "displayname": "B"}, {"id": 1, "displayname": "A"}], "total": 2}',
        ),
        ("numbers", '{"items": [{"id": 1, "displayname": 7}], "total": 1}'),
    ):
        (root / prefix / "api" / "v1").mkdir(parents=True)
        (root / prefix / "api" / "v1" / "phonebook").write_text(body)
    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    hung = socket.socket()
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base, timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)

        def error(prefix: str) -> str:
            with pytest.raises(SourceError) as caught:
                list(open_peer({"url": f"{base}/{prefix}"}, {"token": "pbxc_t"}).rows())
            assert caught.value.source == f"{base}/{prefix}"
            return caught.value.message

        assert (
            error("html")
            == "the peer's answer is not a phonebook page of pbx-connector's API (not JSON)"
        )
        assert 'no "items" list' in error("object")
        assert "answered a private phonebook entry" in error("private")
        assert error("ids") == CHANGED
        assert "field 'displayname' of entry 1 is not text" in error("numbers")

        hung.bind(("127.0.0.1", 0))
        hung.listen()
        url = f"http://127.0.0.1:{hung.getsockname()[1]}"
        with pytest.raises(SourceError, match=r"did not answer within 0\.5 s \(timeout\)"):
            list(open_peer({"url": url, "timeout": "0.5"}, {"token": "pbxc_t"}).rows())
    finally:
        hung.close()
        web.terminate()
        web.wait(timeout=20)


def test_creating_a_profile_does_not_need_the_peer(local: Server) -> None:
    gone = Server(f"http://127.0.0.1:{free_port()}", "", Path("."), "")
    notes = create_profile(local, gone, "pbxc_some-token")
    assert "pbxc_some-token" not in notes
    shown = json.loads(cli(local, "profile", "show", PROFILE, "--json").stdout)
    assert shown["settings"]["url"] == gone.url and shown["template"] == "peer-phonebook"
    # Export and import carry the settings, never the token.
    exported = cli(local, "profile", "export", PROFILE).stdout
    assert "pbxc_some-token" not in exported
    path = local.home.parent / "export.json"
    path.write_text(exported)
    cli(local, "profile", "import", str(path), "--name", "copy")
    copy = json.loads(cli(local, "profile", "show", "copy", "--json").stdout)
    assert copy["settings"]["url"] == gone.url and copy["settings"]["timeout"] == "30"
    assert "token" not in copy.get("secrets_set", [])
    # Bad settings are refused naming the setting.
    bad = cli(local, "profile", "set", PROFILE, "url=ftp://x.example.test", code=2)
    assert "https:// or http://" in bad.stderr
    bad = cli(local, "profile", "set", PROFILE, "timeout=0", code=2)
    assert "timeout" in bad.stderr


# --- settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://pbx2.example.test",
        "https://pbx2.example.test:8443/",
        "http://127.0.0.1:8080",
        "https://[::1]:8080/pbx",
        "https://proxy.example.test/pbx/connector/",
        "",
    ],
)
def test_check_settings_accepts(url: str) -> None:
    check_settings({"url": url, "timeout": "2.5", "verify": "no"})


@pytest.mark.parametrize(
    ("settings", "field", "message"),
    [
        ({"url": "ftp://pbx2.example.test"}, "url", "https:// or http://"),
        ({"url": "pbx2.example.test"}, "url", "https:// or http://"),
        ({"url": "https://user:s3cret@pbx2.example.test"}, "url", "must not hold a user"),
        ({"url": "https://user@pbx2.example.test"}, "url", "must not hold a user"),
        ({"url": "https://"}, "url", "no host"),
        ({"url": "https://pbx2.example.test/?a=b"}, "url", "query"),
        ({"url": "https://pbx2.example.test/#top"}, "url", "fragment"),
        ({"url": "https://pbx2.example.test/api/v1"}, "url", "without /api/v1"),
        ({"url": "https://pbx2.example.test/api/v1/phonebook"}, "url", "without /api/v1"),
        ({"url": "https://pbx2.example.test:99999"}, "url", "not a valid URL"),
        ({"url": "https://pbx2 example.test"}, "url", "spaces"),
        ({"timeout": "0"}, "timeout", "greater than 0"),
        ({"timeout": "-1"}, "timeout", "greater than 0"),
        ({"timeout": "nan"}, "timeout", "greater than 0"),
        ({"timeout": "soon"}, "timeout", "number of seconds"),
        ({"verify": "maybe"}, "verify", "yes or no"),
        ({"ca_file": "/no/such/ca.pem"}, "ca_file", "does not exist or cannot be read"),
    ],
)
def test_check_settings_refuses(settings: dict[str, str], field: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        check_settings(settings)
    assert caught.value.field == field
    assert "s3cret" not in str(caught.value)


def test_check_settings_reads_the_ca_file(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate")
    check_settings({"ca_file": str(ca)})  # readable: its content is checked when used
    with pytest.raises(ConfigError, match="cannot be used") as caught:
        list(open_peer({"url": "https://127.0.0.1:1", "ca_file": str(ca)}, {"token": "t"}).rows())
    assert caught.value.field == "ca_file"
    with pytest.raises(ConfigError, match="is not set") as caught:
        open_peer({}, {})
    assert caught.value.field == "url"


# --- TLS ----------------------------------------------------------------------------------------


def test_tls_uses_the_ca_file_and_verify(tmp_path: Path) -> None:
    """A peer over https: its certificate is checked against ca_file (or the system's
    CAs); verify=no reads it anyway; a certificate for another name is refused."""
    tls = make_tls_files(tmp_path / "tls")
    other_name = make_tls_files(tmp_path / "tls-other", host="127.0.0.2", dns_names=["pbx9.test"])
    with _serve(tmp_path / "peer", tls) as (peer, _):
        add_entry_tls = {"displayname": "Over TLS", "phone": "+49 991 7007"}
        with httpx.Client(
            base_url=peer.url,
            verify=ssl.create_default_context(cafile=tls.ca_file),
            headers={"Authorization": f"Bearer {peer.admin_token}"},
        ) as client:
            assert client.post("/api/v1/phonebook", json=add_entry_tls).status_code == 201
        token, _ = viewer_token(peer)

        def names(**settings: str) -> list[object]:
            source = open_peer({"url": peer.url, **settings}, {"token": token})
            return [row.data["displayname"] for row in source.rows()]

        def refused(**settings: str) -> str:
            with pytest.raises(SourceError) as caught:
                names(**settings)
            assert caught.value.source == peer.url and token not in str(caught.value)
            return caught.value.message

        assert names(ca_file=str(tls.ca_file)) == ["Over TLS"]
        assert names(verify="no") == ["Over TLS"]
        assert refused().startswith("TLS: the peer's certificate was not accepted (")
        assert "set ca_file to the CA that signed it" in refused()
        wrong = refused(ca_file=str(tls.wrong_ca_file))
        assert "ca_file is not the CA that signed it" in wrong
        # The CA of another certificate set is no better.
        assert "not accepted" in refused(ca_file=str(other_name.ca_file))
        with pytest.raises(SourceError, match="without an HTTP answer; does it serve https"):
            list(open_peer({"url": peer.url.replace("https:", "http:")}, {"token": token}).rows())
    with _serve(tmp_path / "peer-other", other_name) as (misnamed, _):
        token, _ = viewer_token(misnamed)
        with pytest.raises(SourceError, match=r"not accepted .*127\.0\.0\.1") as caught:
            list(
                open_peer(
                    {"url": misnamed.url, "ca_file": str(other_name.ca_file)}, {"token": token}
                ).rows()
            )
        assert (
            "Hostname mismatch" in caught.value.message
            or "IP address mismatch" in caught.value.message
        )
