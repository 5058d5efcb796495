"""CSV files read from a URL: real runs against a real HTTPS server on loopback with its
own CA (`tests.servers.https`): TLS, authentication, limits, redirects, timeouts, and
conditional requests (a `304` is a run that writes nothing)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from pbx_connector.errors import ConfigError, UsageError
from pbx_connector.service import App
from pbx_connector.sources.http import MAX_REDIRECTS, display_url
from pbx_connector.store import records as record_store
from pbx_connector.store.profiles import get_profile, save_profile
from pbx_connector.store.source_state import get_state
from tests.helpers import PHONEBOOK_HEADER, Cli, phonebook_row, records, write_csv
from tests.servers.https import PASSWORD, TOKEN, USER, FileServer, serve_files
from tests.servers.tls import TlsFiles, make_tls_files

ROWS = [
    phonebook_row("Max Muster", "+49 991 12345"),
    phonebook_row("Erika Muster", "+49 991 12346"),
    phonebook_row("Reception", "30000"),
]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("served")


@pytest.fixture(scope="module")
def site(root: Path, tls: TlsFiles) -> Iterator[FileServer]:
    with serve_files(root, tls) as server:
        yield server


@pytest.fixture(scope="module")
def plain(root: Path) -> Iterator[FileServer]:
    with serve_files(root) as server:
        yield server


@pytest.fixture
def name(request: pytest.FixtureRequest, root: Path) -> str:
    """A file of this test's own on the servers, holding ROWS."""
    file = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:16] + ".csv"
    write_csv(root / file, PHONEBOOK_HEADER, ROWS)
    return file


@pytest.fixture
def app(engine: Engine) -> App:
    return App(engine)


def create(app: App, site: FileServer, tls: TlsFiles, path: str, **settings: str) -> None:
    app.profiles.create(
        "pb",
        "csv-phonebook",
        settings={"url": site.url(path), "ca_file": str(tls.ca_file), "timeout": "5", **settings},
    )


def names(engine: Engine) -> set[str]:
    return {r["displayname"] for r in records(engine, "phonebook")}


def stored_state(engine: Engine) -> dict[str, Any] | None:
    with engine.connect() as conn:
        profile = get_profile(conn, "pb")
        assert profile.id is not None
        return get_state(conn, profile.id, "url")


def assert_fails_keeping(app: App, engine: Engine, url: str, step: str) -> str:
    """The run fails naming the URL and the step, and the records of the earlier run
    (mirror mode) stay as they were."""
    before = records(engine, "phonebook")
    report = app.runs.run("pb")
    assert report.status == "failed", report.message
    assert report.message.startswith(f"failed, nothing changed: {display_url(url)}: ")
    assert step in report.message, report.message
    assert records(engine, "phonebook") == before
    return report.message


def test_a_sync_reads_the_file_over_https_with_the_profiles_ca(
    app: App, engine: Engine, site: FileServer, tls: TlsFiles, name: str
) -> None:
    create(app, site, tls, f"/files/{name}")
    asked = len(site.seen(f"/files/{name}"))
    report = app.runs.run("pb")
    assert report.status == "ok" and report.applied, report.message
    assert report.counts.created == 3
    assert names(engine) == {"Max Muster", "Erika Muster", "Reception"}
    # One request per run: the header and the rows come from the same response.
    assert len(site.seen(f"/files/{name}")) - asked == 1


def test_the_cli_syncs_from_a_url(
    site: FileServer, tls: TlsFiles, name: str, tmp_path: Path
) -> None:
    cli = Cli(tmp_path / "cli.db")
    cli(
        "profile",
        "create",
        "pb",
        "--template",
        "csv-phonebook",
        "--set",
        f"url={site.url('/basic/files/' + name)}",
        "--set",
        f"url_user={USER}",
        "--set",
        f"ca_file={tls.ca_file}",
        "--set-secret",
        "url_password",
        stdin=PASSWORD + "\n",
    )
    result = cli("sync", "pb")
    assert "run 1: applied" in result.stdout and "3 created" in result.stdout
    again = cli("sync", "pb")
    assert "run 2: source not modified" in again.stdout
    assert "0 created, 0 updated, 0 deleted" in again.stdout
    shown = cli("profile", "show", "pb").stdout + cli("profile", "show", "pb", "--json").stdout
    exported = cli("profile", "export", "pb").stdout
    for text in (result.stdout, again.stdout, shown, exported):
        assert PASSWORD not in text


# --- TLS ----------------------------------------------------------------------------------


def test_a_certificate_from_another_ca_fails_the_run_and_changes_nothing(
    app: App, engine: Engine, site: FileServer, tls: TlsFiles, name: str
) -> None:
    url = site.url(f"/files/{name}")
    create(app, site, tls, f"/files/{name}")
    app.runs.run("pb")
    app.profiles.update("pb", {"ca_file": str(tls.wrong_ca_file)})
    message = assert_fails_keeping(app, engine, url, "TLS: the certificate of 127.0.0.1:")
    assert "is not trusted" in message and "set ca_file" in message
    # Without ca_file, the system's CAs do not know the test CA either.
    app.profiles.update("pb", {"ca_file": ""})
    assert_fails_keeping(app, engine, url, "is not trusted")


def test_verify_no_reads_from_a_server_it_does_not_trust(
    app: App, engine: Engine, site: FileServer, tls: TlsFiles, name: str
) -> None:
    create(app, site, tls, f"/files/{name}", ca_file=str(tls.wrong_ca_file), verify="no")
    assert app.runs.run("pb").status == "ok"
    assert len(names(engine)) == 3


def test_a_certificate_for_another_host_is_refused(
    app: App, engine: Engine, tmp_path: Path, root: Path, name: str
) -> None:
    other = make_tls_files(tmp_path / "tls", dns_names=["elsewhere.example"], host="127.0.0.2")
    with serve_files(root, other) as server:
        url = server.url(f"/files/{name}")
        app.profiles.create(
            "pb", "csv-phonebook", settings={"url": url, "ca_file": str(other.ca_file)}
        )
        message = assert_fails_keeping(app, engine, url, "TLS: the certificate of")
    assert "is not valid for 127.0.0.1" in message


# --- authentication -----------------------------------------------------------------------


def test_basic_authentication_is_sent_and_a_wrong_password_is_refused(
    app: App, engine: Engine, site: FileServer, tls: TlsFiles, name: str
) -> None:
    url = site.url(f"/basic/files/{name}")
    create(app, site, tls, f"/basic/files/{name}", url_user=USER, url_password=PASSWORD)
    assert app.runs.run("pb").counts.created == 3
    app.profiles.update("pb", {"url_password": "not-the-password"})
    message = assert_fails_keeping(app, engine, url, "HTTP 401 Unauthorized")
    assert "the server refused the credentials" in message
    assert "not-the-password" not in json.dumps(app.runs.list("pb").model_dump(mode="json"))
    app.profiles.update("pb", {"url_password": "", "url_user": ""})
    message = assert_fails_keeping(app, engine, url, "HTTP 401 Unauthorized")
    assert "the server asks for credentials" in message


def test_a_bearer_token_is_sent_and_a_wrong_one_is_refused(
    app: App, engine: Engine, site: FileServer, tls: TlsFiles, name: str
) -> None:
    url = site.url(f"/bearer/files/{name}")
    create(app, site, tls, f"/bearer/files/{name}", url_token=TOKEN)
    assert app.runs.run("pb").counts.created == 3
    assert site.seen(f"/bearer/files/{name}")[-1].headers["authorization"] == f"Bearer {TOKEN}"
    app.profiles.update("pb", {"url_token": "tok-wrong-one"})
    assert_fails_keeping(app, engine, url, "HTTP 401 Unauthorized: the server refused")


def test_basic_and_bearer_together_are_a_configuration_error(
    app: App, engine: Engine, site: FileServer, tls: TlsFiles, name: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        create(app, site, tls, f"/files/{name}", url_user=USER, url_token=TOKEN)
    assert caught.value.field == "url_token"
    assert "url_user and url_password (basic authentication) or url_token" in str(caught.value)
    assert TOKEN not in str(caught.value)
    assert app.profiles.list() == []
    # A store changed by hand is caught again when the run builds the source.
    create(app, site, tls, f"/files/{name}", url_user=USER)
    with engine.begin() as conn:
        profile = get_profile(conn, "pb")
        profile.secrets["url_token"] = TOKEN
        save_profile(conn, profile)
    report = app.runs.run("pb")
    assert report.status == "failed"
    assert "url_user and url_password (basic authentication) or url_token" in report.message
    assert report.errors[0].field == "url_token"
    assert TOKEN not in report.message


def test_credentials_inside_the_url_are_refused(
    app: App, site: FileServer, tls: TlsFiles, name: str
) -> None:
    url = site.url(f"/basic/files/{name}").replace("://", f"://{USER}:{PASSWORD}@")
    with pytest.raises(ConfigError) as caught:
        app.profiles.create("pb", "csv-phonebook", settings={"url": url})
    assert caught.value.field == "url" and "url_user and url_password" in str(caught.value)
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize(
    ("settings", "field", "words"),
    [
        ({"url": "ftp://127.0.0.1/x.csv"}, "url", "https:// or http://"),
        ({"url": "https:///x.csv"}, "url", "no host"),
        ({"url": "https://127.0.0.1:99999/x.csv"}, "url", "not valid"),
        ({"url": "https://h/x.csv", "timeout": "0"}, "timeout", "positive number"),
        ({"url": "https://h/x.csv", "max_size": "-1"}, "max_size", "positive number"),
        ({"url": "https://h/x.csv", "max_size": "lots"}, "max_size", "positive number"),
        ({"url": "https://h/x.csv", "ca_file": "/nonexistent/ca.pem"}, "ca_file", "cannot read"),
        ({"url": "https://h/x.csv", "ca_file": "ca.pem"}, "ca_file", "an absolute path"),
    ],
)
def test_invalid_settings_name_the_setting(
    app: App, settings: dict[str, str], field: str, words: str
) -> None:
    with pytest.raises(UsageError) as caught:
        app.profiles.create("pb", "csv-phonebook", settings=settings)
    assert caught.value.field == field and words in caught.value.message


def test_a_ca_file_that_is_no_certificate_is_refused(app: App, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ConfigError) as caught:
        app.profiles.create(
            "pb", "csv-phonebook", settings={"url": "https://h/x.csv", "ca_file": str(junk)}
        )
    assert caught.value.field == "ca_file" and "holds no PEM certificate" in caught.value.message


# --- HTTP answers, limits, timeouts -------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "step"),
    [
        ("/files/missing.csv", "HTTP 404 Not Found: there is no file at this URL"),
        ("/status/403", "HTTP 403 Forbidden: the server refused access"),
        ("/status/500", "HTTP 500 Internal Server Error: the server failed"),
        ("/status/503", "HTTP 503 Service Unavailable"),
    ],
)
def test_an_http_error_fails_the_run_naming_the_status(
    app: App, engine: Engine, site: FileServer, tls: TlsFiles, name: str, path: str, step: str
) -> None:
    create(app, site, tls, f"/files/{name}")
    app.runs.run("pb")
    app.profiles.update("pb", {"url": site.url(path)})
    assert_fails_keeping(app, engine, site.url(path), step)


def test_a_server_that_is_not_there_fails_the_run(
    app: App, engine: Engine, site: FileServer, tls: TlsFiles, name: str
) -> None:
    create(app, site, tls, f"/files/{name}")
    app.runs.run("pb")
    from tests.helpers import free_port

    url = f"https://127.0.0.1:{free_port()}/files/{name}"
    app.profiles.update("pb", {"url": url})
    assert_fails_keeping(app, engine, url, "cannot connect to 127.0.0.1:")


def test_a_server_that_never_answers_times_out(
    app: App, engine: Engine, site: FileServer, tls: TlsFiles, name: str
) -> None:
    create(app, site, tls, f"/files/{name}")
    app.runs.run("pb")
    app.profiles.update("pb", {"url": site.url("/slow"), "timeout": "0.5"})
    message = assert_fails_keeping(app, engine, site.url("/slow"), "timeout: 127.0.0.1:")
    assert "did not answer within 0.5 s" in message


def test_a_file_over_max_size_is_refused_up_front_and_while_streaming(
    app: App, engine: Engine, site: FileServer, tls: TlsFiles, root: Path, name: str
) -> None:
    big = f"big-{name}"
    rows = [phonebook_row(f"Person {n:06}", f"+49 991 {n:06}") for n in range(40_000)]
    write_csv(root / big, PHONEBOOK_HEADER, rows)
    assert (root / big).stat().st_size > 1024 * 1024
    create(app, site, tls, f"/files/{name}")
    app.runs.run("pb")
    app.profiles.update("pb", {"url": site.url(f"/files/{big}"), "max_size": "1"})
    message = assert_fails_keeping(app, engine, site.url(f"/files/{big}"), "too large:")
    assert "the server announces" in message and "max_size (1 MiB)" in message
    # No Content-Length: counted while reading.
    url = site.url(f"/nolength/files/{big}")
    app.profiles.update("pb", {"url": url})
    message = assert_fails_keeping(app, engine, url, "too large:")
    assert "larger than max_size (1 MiB); reading stopped" in message
    # A small gzip body that unpacks past the limit is stopped while unpacking.
    bomb = f"bomb-{name}"
    (root / bomb).write_bytes(
        (",".join(PHONEBOOK_HEADER) + "\n" + "x,1,,,,,,,\n" * 400_000).encode()
    )
    url = site.url(f"/gzip/files/{bomb}")
    app.profiles.update("pb", {"url": url})
    assert len(gzip.compress((root / bomb).read_bytes())) < 1024 * 1024
    assert "larger than max_size" in assert_fails_keeping(app, engine, url, "too large:")
    # Under the limit, the same file is read.
    app.profiles.update("pb", {"url": site.url(f"/nolength/files/{big}"), "max_size": "20"})
    assert app.runs.run("pb").counts.created == 40_000


def test_a_gzip_body_is_read(
    app: App, engine: Engine, site: FileServer, tls: TlsFiles, name: str
) -> None:
    create(app, site, tls, f"/gzip/files/{name}")
    assert app.runs.run("pb").counts.created == 3
    assert site.seen(f"/gzip/files/{name}")[-1].headers["accept-encoding"] == "gzip"


# --- redirects ----------------------------------------------------------------------------


def redirect(server: FileServer, to: str, status: int = 302) -> str:
    from urllib.parse import quote

    return server.url(f"/redirect?status={status}&to={quote(to, safe='')}")


def test_a_redirect_to_the_same_origin_is_followed(
    app: App, engine: Engine, site: FileServer, tls: TlsFiles, name: str
) -> None:
    start = redirect(site, f"/basic/files/{name}", 301)
    app.profiles.create(
        "pb",
        "csv-phonebook",
        settings={
            "url": start,
            "ca_file": str(tls.ca_file),
            "url_user": USER,
            "url_password": PASSWORD,
        },
    )
    assert app.runs.run("pb").counts.created == 3


def test_a_redirect_to_another_host_is_refused_unless_any_and_gets_no_credentials(
    app: App, engine: Engine, site: FileServer, tls: TlsFiles, name: str
) -> None:
    elsewhere = site.url(f"/files/{name}", host="localhost")
    start = redirect(site, elsewhere)
    create(app, site, tls, "/files/x.csv", url_token=TOKEN)
    app.profiles.update("pb", {"url": start})
    message = assert_fails_keeping(app, engine, start, "redirect refused: HTTP 302 to another")
    assert f"({elsewhere})" in message and "redirects=any" in message
    assert site.seen(f"/files/{name}") == []
    app.profiles.update("pb", {"redirects": "any"})
    assert app.runs.run("pb").counts.created == 3
    followed = site.seen(f"/files/{name}")
    assert followed and all(r.host.startswith("localhost:") for r in followed)
    assert all("authorization" not in r.headers for r in followed)
    assert site.seen("/redirect?")[-1].headers["authorization"] == f"Bearer {TOKEN}"


def test_a_redirect_from_https_to_http_is_always_refused(
    app: App, engine: Engine, site: FileServer, plain: FileServer, tls: TlsFiles, name: str
) -> None:
    start = redirect(site, plain.url(f"/files/{name}"))
    create(app, site, tls, f"/files/{name}", redirects="any")
    app.runs.run("pb")
    app.profiles.update("pb", {"url": start})
    message = assert_fails_keeping(app, engine, start, "redirect refused: HTTP 302 from https")
    assert "unencrypted" in message
    assert plain.seen(name) == []


def test_redirects_none_follows_none_and_a_loop_stops(
    app: App, engine: Engine, site: FileServer, tls: TlsFiles, name: str
) -> None:
    start = redirect(site, f"/files/{name}")
    create(app, site, tls, f"/files/{name}", redirects="none")
    app.runs.run("pb")
    app.profiles.update("pb", {"url": start})
    assert "redirects=none" in assert_fails_keeping(app, engine, start, "redirect refused:")
    app.profiles.update("pb", {"url": site.url("/loop/0"), "redirects": "same-origin"})
    asked = len(site.seen("/loop/"))
    message = assert_fails_keeping(app, engine, site.url("/loop/0"), "redirect refused:")
    assert f"more than {MAX_REDIRECTS} redirects" in message
    assert len(site.seen("/loop/")) - asked == MAX_REDIRECTS + 1


# --- conditional requests -----------------------------------------------------------------


def updated_at(engine: Engine) -> dict[int, Any]:
    with engine.connect() as conn:
        table = record_store.table_for("phonebook")
        return {r.id: r.updated_at for r in conn.execute(select(table))}


def test_an_unchanged_file_is_a_run_that_writes_nothing(
    app: App, engine: Engine, site: FileServer, tls: TlsFiles, name: str
) -> None:
    create(app, site, tls, f"/files/{name}")
    first = app.runs.run("pb")
    state = stored_state(engine)
    assert state is not None and state["state"]["etag"].startswith('"')
    before = updated_at(engine)
    second = app.runs.run("pb")
    assert second.status == "ok" and second.message == "source not modified"
    assert second.applied and second.changes == [] and second.errors == []
    assert second.counts.model_dump() == dict.fromkeys(first.counts.model_dump(), 0)
    assert updated_at(engine) == before
    assert stored_state(engine) == state
    sent = site.seen(f"/files/{name}")[-1].headers
    assert sent["if-none-match"] == state["state"]["etag"]
    assert sent["if-modified-since"] == state["state"]["last_modified"]
    dry = app.runs.run("pb", dry_run=True)
    assert dry.status == "ok" and dry.message == "dry run: source not modified, nothing changed"


def test_a_changed_file_is_read_applied_and_its_new_etag_kept(
    app: App, engine: Engine, site: FileServer, tls: TlsFiles, root: Path, name: str
) -> None:
    create(app, site, tls, f"/files/{name}")
    app.runs.run("pb")
    old = stored_state(engine)
    write_csv(root / name, PHONEBOOK_HEADER, [*ROWS[:2], phonebook_row("Sales", "30001")])
    report = app.runs.run("pb")
    assert report.status == "ok" and report.message == "applied"
    assert report.counts.created == 1 and report.counts.deleted == 1
    assert names(engine) == {"Max Muster", "Erika Muster", "Sales"}
    new = stored_state(engine)
    assert new is not None and old is not None
    assert new["state"]["etag"] != old["state"]["etag"]
    assert app.runs.run("pb").message == "source not modified"


def test_last_modified_alone_is_used_too(
    app: App, engine: Engine, site: FileServer, tls: TlsFiles, root: Path, name: str
) -> None:
    os.utime(root / name, (1_700_000_000, 1_700_000_000))
    create(app, site, tls, f"/lastmodonly/files/{name}")
    app.runs.run("pb")
    assert app.runs.run("pb").message == "source not modified"
    sent = site.seen(f"/lastmodonly/files/{name}")[-1].headers
    assert "if-none-match" not in sent and sent["if-modified-since"].endswith("GMT")


def test_without_validators_every_run_reads_fully(
    app: App, engine: Engine, site: FileServer, tls: TlsFiles, name: str
) -> None:
    create(app, site, tls, f"/novalidators/files/{name}")
    app.runs.run("pb")
    assert stored_state(engine) is None
    report = app.runs.run("pb")
    assert report.message == "applied" and report.counts.unchanged == 3


def test_a_dry_run_keeps_no_validators(
    app: App, engine: Engine, site: FileServer, tls: TlsFiles, name: str
) -> None:
    create(app, site, tls, f"/files/{name}")
    assert app.runs.run("pb", dry_run=True).counts.created == 3
    assert stored_state(engine) is None
    report = app.runs.run("pb")
    assert report.message == "applied" and report.counts.created == 3
    assert "if-none-match" not in site.seen(f"/files/{name}")[-1].headers


def test_a_failed_or_aborted_run_keeps_the_old_validators(
    app: App, engine: Engine, site: FileServer, tls: TlsFiles, root: Path, name: str
) -> None:
    rows = [phonebook_row(f"Entry {n}", f"+49 991 {1000 + n}") for n in range(12)]
    write_csv(root / name, PHONEBOOK_HEADER, rows)
    create(app, site, tls, f"/files/{name}")
    app.runs.run("pb")
    kept = stored_state(engine)
    write_csv(root / name, PHONEBOOK_HEADER, rows[:2])  # a mirror run would delete 10
    assert app.runs.run("pb").status == "aborted"
    assert stored_state(engine) == kept
    (root / name).write_bytes(b'displayname,phone\n"never closed,1\n')
    assert app.runs.run("pb").status == "failed"
    assert stored_state(engine) == kept
    forced = app.runs.run("pb", force=True)
    assert forced.status == "failed"  # forced runs read fully, and the file is broken
    write_csv(root / name, PHONEBOOK_HEADER, rows)
    # Back to the content of the kept ETag: not modified.
    assert app.runs.run("pb").message == "source not modified"


def test_another_url_credentials_or_mapping_means_a_full_read(
    app: App, engine: Engine, site: FileServer, tls: TlsFiles, name: str
) -> None:
    create(app, site, tls, f"/basic/files/{name}", url_user=USER, url_password=PASSWORD)
    app.runs.run("pb")
    assert app.runs.run("pb").message == "source not modified"
    app.profiles.update("pb", {"url_password": "wrong"})
    assert app.runs.run("pb").status == "failed"  # not "not modified": asked in full
    assert "if-none-match" not in site.requests[-1].headers
    # The validators kept belong to the profile as it was then, and stay valid for it.
    app.profiles.update("pb", {"url_password": PASSWORD})
    assert app.runs.run("pb").message == "source not modified"
    app.profiles.update("pb", {"url": site.url(f"/basic/files/{name}?v=2")})
    report = app.runs.run("pb")
    assert report.message == "applied" and report.counts.unchanged == 3
    assert "if-none-match" not in site.requests[-1].headers
    assert app.runs.run("pb").message == "source not modified"
    app.profiles.set_variables("pb", {"organisation": "{{ 'ACME' }}"})
    report = app.runs.run("pb")
    assert report.message == "applied" and report.counts.updated == 3
    assert app.runs.run("pb", force=True).message == "applied"
    assert "if-none-match" not in site.requests[-1].headers


def test_preview_and_evaluate_always_read_fully(
    app: App, engine: Engine, site: FileServer, tls: TlsFiles, name: str
) -> None:
    create(app, site, tls, f"/files/{name}")
    app.runs.run("pb")
    preview = app.profiles.preview("pb")
    assert len(preview.rows) == 3
    assert "if-none-match" not in site.requests[-1].headers
    app.profiles.evaluate("pb")
    assert "if-none-match" not in site.requests[-1].headers


# --- secrets and export -------------------------------------------------------------------


def test_no_secret_in_reports_views_or_exports(
    app: App, engine: Engine, site: FileServer, tls: TlsFiles, name: str
) -> None:
    create(
        app,
        site,
        tls,
        f"/basic/files/{name}?key=s3cr3t-query",
        url_user=USER,
        url_password=PASSWORD,
    )
    app.runs.run("pb")
    app.profiles.update("pb", {"url_password": PASSWORD + "-wrong"})
    app.runs.run("pb")
    app.profiles.update("pb", {"url": site.url("/status/500?key=s3cr3t-query")})
    failed = app.runs.run("pb")
    assert "key=…" in failed.message and "s3cr3t-query" not in failed.message
    texts = [
        json.dumps(app.runs.list("pb").model_dump(mode="json")),
        app.profiles.get("pb").model_dump_json(),
        app.profiles.export("pb"),
    ]
    with engine.connect() as conn:
        profile = get_profile(conn, "pb")
        assert profile.id is not None
        texts.append(json.dumps(get_state(conn, profile.id, "url")))
    for text in texts:
        assert PASSWORD not in text
    exported = json.loads(app.profiles.export("pb"))
    settings = exported["settings"]
    for key in ("url", "url_user", "ca_file", "verify", "timeout", "max_size", "redirects"):
        assert key in settings
    assert "url_password" not in settings and "url_password" in exported["secrets_not_exported"]


# --- streaming and plain http -------------------------------------------------------------


def test_a_large_body_is_streamed_in_constant_memory(
    site: FileServer, tls: TlsFiles, root: Path, name: str
) -> None:
    import tracemalloc

    from pbx_connector.sources.http import UrlFile, url_settings

    large = f"large-{name}"
    block = b"x" * 1023 + b"\n"
    with open(root / large, "wb") as fh:
        for _ in range(30 * 1024):  # 30 MiB
            fh.write(block)
    for path in (f"/files/{large}", f"/gzip/files/{large}", f"/nolength/files/{large}"):
        location = UrlFile(url_settings({"url": site.url(path), "ca_file": str(tls.ca_file)}), {})
        tracemalloc.start()
        try:
            size = 0
            with location.open() as stream:
                while chunk := stream.read(256 * 1024):
                    size += len(chunk)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert size == 30 * 1024 * 1024
        # A few chunks (of the client and of the server, in this process).
        assert peak < 8 * 1024 * 1024, (path, peak)
        assert location.new_state() is not None


def test_a_plain_http_url_is_read(app: App, engine: Engine, plain: FileServer, name: str) -> None:
    app.profiles.create(
        "pb",
        "csv-phonebook",
        settings={"url": plain.url(f"/basic/files/{name}"), "url_user": USER},
    )
    report = app.runs.run("pb")
    assert report.status == "failed" and "HTTP 401 Unauthorized" in report.message
    app.profiles.update("pb", {"url_password": PASSWORD})
    assert app.runs.run("pb").counts.created == 3
    assert app.runs.run("pb").message == "source not modified"
