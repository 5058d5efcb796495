"""Authentication of phone-system users: every rule of pbx_connector.authentication,
against the store and real directories (slapd, Samba AD)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ldap.dn
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from pbx_connector.authentication import authenticate, bind_name, user_filter
from pbx_connector.directory.search import check_filter
from pbx_connector.store import auth_store
from pbx_connector.store.db import open_store_engine
from tests.helpers import Cli, free_port
from tests.servers.samba_ad import SambaAD
from tests.servers.slapd import ALICE, INJECTION_USERS, JUERGEN, SlapdServer


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "cli.db")


@pytest.fixture
def engine(cli: Cli) -> Engine:
    cli("db", "upgrade")
    return open_store_engine(f"sqlite:///{cli.db}")


def fast(cli: Cli) -> None:
    """No answer delay for rejections in tests that make many of them."""
    cli("auth", "settings", "failure_delay_ms=0")


def check(cli: Cli, username: str, password: str) -> bool:
    result = cli("auth", "check", username, stdin=password + "\n", code=None)
    assert result.stdout.strip() in ("accepted", "rejected")
    assert (result.exit_code == 0) == (result.stdout.strip() == "accepted")
    return bool(result.exit_code == 0)


def slapd_template(cli: Cli, server: SlapdServer, *extra: str) -> None:
    cli(
        "auth", "settings", f"uri={server.uri}", f"ca_file={server.ca_file}",
        f"bind_user=uid=%,ou=people,{server.suffix}", *extra,
    )  # fmt: skip


def slapd_search(cli: Cli, server: SlapdServer, *extra: str) -> None:
    # The service password comes from standard input, as docs/auth.md shows.
    cli(
        "auth", "settings", "--set-secret", "bind_password", f"uri={server.uri}",
        f"ca_file={server.ca_file}", "bind_user=", f"bind_dn={server.reader_dn}",
        f"search_base=ou=people,{server.suffix}", "user_attribute=uid", *extra,
        stdin=server.reader_password + "\n",
    )  # fmt: skip


# --- local users ----------------------------------------------------------------------------


def test_internal_users_and_the_rules_before_any_check(cli: Cli) -> None:
    fast(cli)
    cli("users", "add", "username=ivan")
    cli("users", "passwd", "ivan", stdin="Ivan-pw-1\n")
    assert check(cli, "ivan", "Ivan-pw-1")
    assert check(cli, "IVAN", "Ivan-pw-1")  # usernames are stored in lower case
    assert not check(cli, "ivan", "wrong")
    assert not check(cli, "ivan", "")
    assert not check(cli, "nobody", "Ivan-pw-1")

    cli("users", "edit", "ivan", "--auth", "none")
    assert not check(cli, "ivan", "Ivan-pw-1")
    cli("users", "edit", "ivan", "--auth", "internal")
    cli("users", "edit", "ivan", "enabled=no")
    assert not check(cli, "ivan", "Ivan-pw-1")

    log = cli.json("auth", "log")
    reasons = [entry["reason"] for entry in reversed(log)]
    assert reasons == [
        "accepted", "accepted", "bad_password", "empty_password", "unknown_user",
        "method_none", "disabled",
    ]  # fmt: skip
    assert "Ivan-pw-1" not in json.dumps(log)


def test_check_prints_nothing_but_the_answer(cli: Cli) -> None:
    fast(cli)
    cli("users", "add", "username=ivan")
    cli("users", "passwd", "ivan", stdin="Ivan-pw-1\n")
    known = cli("auth", "check", "ivan", stdin="wrong\n", code=1)
    unknown = cli("auth", "check", "nobody", stdin="wrong\n", code=1)
    assert known.stdout == unknown.stdout == "rejected\n"
    assert known.stderr == unknown.stderr == ""


def test_empty_password_fails_before_any_server_is_contacted(cli: Cli) -> None:
    fast(cli)
    cli("users", "add", "username=alice", "auth=ldap")
    cli("auth", "settings", f"uri=ldap://127.0.0.1:{free_port()}", "bind_user=%@example.test")
    out = cli("auth", "test", "alice", stdin="\n", code=1).stdout
    assert "empty password" in out
    assert "contacting" not in out


def test_the_builtin_admin_always_authenticates_locally(cli: Cli) -> None:
    cli("users", "passwd", "admin", stdin="Admin-pw-1\n")
    cli("auth", "settings", f"uri=ldap://127.0.0.1:{free_port()}", "bind_user=%@example.test")
    out = cli("auth", "test", "admin", stdin="Admin-pw-1\n").stdout
    assert "always authenticates locally" in out
    assert "contacting" not in out


def test_lockout_after_repeated_failures_doubles_and_reveals_nothing(
    cli: Cli, engine: Engine
) -> None:
    cli("users", "add", "username=ivan")
    cli("users", "passwd", "ivan", stdin="Ivan-pw-1\n")
    cli("auth", "settings", "failure_delay_ms=0", "lockout_failures=3", "lockout_seconds=60")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def at(seconds: float) -> object:
        return lambda: t0 + timedelta(seconds=seconds)

    for i in range(3):
        assert authenticate(engine, "ivan", "wrong", clock=at(i)).reason == "bad_password"
    locked = authenticate(engine, "ivan", "Ivan-pw-1", clock=at(10))
    assert (locked.accepted, locked.outcome, locked.reason) == (False, "refused", "locked")
    wrong_while_locked = authenticate(engine, "ivan", "wrong", clock=at(11))
    assert wrong_while_locked.outcome == locked.outcome  # same answer either way
    # The lock has run out; three more failures lock again, for twice as long.
    for i in range(3):
        assert authenticate(engine, "ivan", "wrong", clock=at(63 + i)).reason == "bad_password"
    assert authenticate(engine, "ivan", "Ivan-pw-1", clock=at(65 + 61)).reason == "locked"
    assert authenticate(engine, "ivan", "Ivan-pw-1", clock=at(65 + 121)).accepted
    # A success forgets the failures and the level.
    with engine.connect() as conn:
        assert auth_store.get_lockout(conn, "ivan") == auth_store.Lockout()
    # Unknown usernames are locked the same way, so a lock says nothing about existence.
    for i in range(3):
        authenticate(engine, "ghost", "x", clock=at(300 + i))
    assert authenticate(engine, "ghost", "x", clock=at(310)).reason == "locked"


def test_attempts_that_never_finished_cannot_hold_a_username_for_ever(
    cli: Cli, engine: Engine
) -> None:
    cli("users", "add", "username=ivan")
    cli("users", "passwd", "ivan", stdin="Ivan-pw-1\n")
    cli("auth", "settings", "failure_delay_ms=0", "lockout_failures=3", "lockout_seconds=60")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    # Three attempts were counted, and their processes died before they were checked.
    with engine.begin() as conn:
        auth_store.put_lockout(conn, "ivan", auth_store.Lockout(3, 0, None))
    # Every place is taken: refused, and the username is locked, so the lock runs out.
    assert authenticate(engine, "ivan", "Ivan-pw-1", clock=lambda: t0).reason == "locked"
    with engine.connect() as conn:
        assert auth_store.get_lockout(conn, "ivan").locked_until is not None
    later = t0 + timedelta(seconds=61)
    assert authenticate(engine, "ivan", "Ivan-pw-1", clock=lambda: later).accepted
    with engine.connect() as conn:
        assert auth_store.get_lockout(conn, "ivan") == auth_store.Lockout()


def test_rejections_take_at_least_the_failure_delay(cli: Cli, engine: Engine) -> None:
    cli("users", "add", "username=ivan")
    cli("users", "passwd", "ivan", stdin="Ivan-pw-1\n")
    cli("auth", "settings", "failure_delay_ms=300")
    import time

    for name in ("ivan", "nobody"):
        start = time.monotonic()
        assert not authenticate(engine, name, "wrong").accepted
        # a lower bound that sleep guarantees, not a speed limit
        assert time.monotonic() - start >= 0.3


def test_settings_are_validated_and_the_password_never_shown(cli: Cli) -> None:
    r = cli("auth", "settings", "bind_user=uid=x,dc=y", code=2)
    assert "must contain %" in r.stderr
    r = cli("auth", "settings", "security=tls", code=2)
    assert "security must be one of" in r.stderr
    r = cli("auth", "settings", "uri=ldaps://a", code=2)
    assert "security=ldaps" in r.stderr
    r = cli("auth", "settings", "user_filter=(&(a=b)", code=2)
    assert "invalid LDAP filter" in r.stderr
    cli("auth", "settings", "bind_password=Svc-Secret-9")  # still works, undocumented
    shown = cli.json("auth", "settings")
    assert shown["bind_password"] == "(set)"
    assert "Svc-Secret-9" not in cli("auth", "settings").stdout


def stored_secret(engine: Engine) -> str:
    with engine.connect() as conn:
        return auth_store.load(conn).bind_password


def test_the_service_password_is_read_from_standard_input(cli: Cli, engine: Engine) -> None:
    out = cli("auth", "settings", "--set-secret", "bind_password", stdin="Svc-Secret-9\n")
    assert "Svc-Secret-9" not in out.stdout + out.stderr
    assert stored_secret(engine) == "Svc-Secret-9"
    # `bind_password=-` means the same; the value is taken as typed, spaces and all.
    cli("auth", "settings", "bind_password=-", "bind_dn=cn=svc,dc=example,dc=test",
        stdin="  Other secret \r\n")  # fmt: skip
    assert stored_secret(engine) == "  Other secret "
    assert cli.json("auth", "settings")["bind_dn"] == "cn=svc,dc=example,dc=test"
    # Both ways at once read one line, once.
    cli("auth", "settings", "--set-secret", "bind_password", "bind_password=-",
        stdin="Third-9\nnot read\n")  # fmt: skip
    assert stored_secret(engine) == "Third-9"


@pytest.mark.parametrize("stdin", ["\n", "", "   \n"])
def test_an_empty_secret_is_refused(cli: Cli, engine: Engine, stdin: str) -> None:
    cli("auth", "settings", "--set-secret", "bind_password", stdin="Svc-Secret-9\n")
    for args in (("--set-secret", "bind_password"), ("bind_password=-", "timeout=3")):
        r = cli("auth", "settings", *args, stdin=stdin, code=2)
        assert r.stderr.startswith("error: ") and "bind_password is empty" in r.stderr
    assert stored_secret(engine) == "Svc-Secret-9"
    assert cli.json("auth", "settings")["timeout"] == "5"  # nothing else was saved either


def test_only_secrets_are_read_from_standard_input(cli: Cli) -> None:
    r = cli("auth", "settings", "--set-secret", "uri", stdin="ldap://x\n", code=2)
    assert "'uri' is not a secret setting" in r.stderr
    assert cli.json("auth", "settings")["uri"] == ""


# --- escaping ---------------------------------------------------------------------------------

usernames = st.text(
    alphabet=st.sampled_from(list('ab*()\\,+"<>;=# \x00@'))
    | st.characters(exclude_categories=("Cs",)),
    min_size=1,
    max_size=20,
)


@given(usernames)
def test_a_username_never_changes_a_bind_dn(username: str) -> None:
    dn = bind_name("uid=%,ou=people,dc=example,dc=test", username)
    assert dn is not None
    rdns = ldap.dn.str2dn(dn)
    assert len(rdns) == 4 and len(rdns[0]) == 1
    assert rdns[0][0][:2] == ("uid", username)


@given(usernames)
def test_a_username_never_widens_a_filter(username: str) -> None:
    text = user_filter("uid", username, "(objectClass=person)")
    check_filter(text)
    assert text.count("(") == text.count(")") == 3
    assert "*" not in text.removesuffix("(objectClass=person))")


@given(usernames)
def test_a_upn_template_refuses_names_that_would_change_the_account(username: str) -> None:
    upn = bind_name("%@example.test", username)
    if upn is not None:
        assert upn.endswith("@example.test") and upn.count("@") == 1
        assert not any(c in upn for c in '\\,=*()"<>;#')


# --- against slapd ----------------------------------------------------------------------------


@pytest.mark.slapd
def test_slapd_bind_template(cli: Cli, slapd_server: SlapdServer) -> None:
    fast(cli)
    slapd_template(cli, slapd_server)
    cli("users", "add", "username=alice", "auth=ldap")
    cli("users", "add", "username=jgross", "auth=ldap")
    assert check(cli, "alice", ALICE.password)
    assert not check(cli, "alice", "wrong")
    assert check(cli, "jgross", JUERGEN.password)  # non-ASCII password
    out = cli("auth", "test", "alice", stdin=ALICE.password + "\n").stdout
    for expected in (
        "authentication method: ldap",
        f"contacting {slapd_server.uri}",
        "StartTLS established, certificate verified",
        f"binding as uid=alice,ou=people,{slapd_server.suffix}",
        "result: accepted",
    ):
        assert expected in out
    assert ALICE.password not in out


@pytest.mark.slapd
def test_slapd_search_then_bind(cli: Cli, slapd_server: SlapdServer) -> None:
    fast(cli)
    slapd_search(cli, slapd_server)
    cli("users", "add", "username=alice", "auth=ldap")
    cli("users", "add", "username=ghost", "auth=ldap")
    assert check(cli, "alice", ALICE.password)
    assert not check(cli, "alice", "wrong")
    out = cli("auth", "test", "ghost", stdin="x\n", code=1).stdout
    assert "no entry found; exactly one is required" in out
    out = cli("auth", "test", "alice", stdin=ALICE.password + "\n").stdout
    assert f"found uid=alice,ou=people,{slapd_server.suffix}" in out
    assert "Svc" not in out and slapd_server.reader_password not in out


@pytest.mark.slapd
def test_injection_attempts_against_a_real_directory(
    engine: Engine, cli: Cli, slapd_server: SlapdServer
) -> None:
    from pbx_connector.authentication import check_directory

    fast(cli)
    lines: list[str] = []
    for configure in (slapd_template, slapd_search):
        configure(cli, slapd_server)
        with engine.connect() as conn:
            cfg = auth_store.load(conn)
        for user in INJECTION_USERS:
            # The tricky uid logs in with its own password, and only with it.
            assert check_directory(cfg, user.uid, user.password, lines.append) == "accepted"
            assert check_directory(cfg, user.uid, ALICE.password, lines.append) != "accepted"
        # Wildcards and filter tricks match nobody, so nobody's password works.
        for attempt in ("*", "al*", "alice)(uid=*", "*)(|(uid=*", "alice\x00"):
            reason = check_directory(cfg, attempt, ALICE.password, lines.append)
            assert reason != "accepted", (configure.__name__, attempt, reason)


@pytest.mark.slapd
def test_tls_failures_and_failover(cli: Cli, slapd_server: SlapdServer) -> None:
    fast(cli)
    cli("users", "add", "username=alice", "auth=ldap")
    slapd_template(cli, slapd_server, f"ca_file={slapd_server.wrong_ca_file}")
    out = cli("auth", "test", "alice", stdin=ALICE.password + "\n", code=1).stdout
    assert "StartTLS failed" in out and "directory_unavailable" in out
    cli("auth", "settings", "security=ldaps", f"uri={slapd_server.ldaps_uri}")
    out = cli("auth", "test", "alice", stdin=ALICE.password + "\n", code=1).stdout
    assert "TLS failed" in out
    dead = f"ldaps://127.0.0.1:{free_port()}"
    cli("auth", "settings", f"ca_file={slapd_server.ca_file}",
        f"uri={dead} {slapd_server.ldaps_uri}")  # fmt: skip
    out = cli("auth", "test", "alice", stdin=ALICE.password + "\n").stdout
    assert f"{dead}: cannot reach the server" in out
    assert "LDAPS established, certificate verified" in out
    # A directory outage is not the user's failure: no lockout builds up.
    cli("auth", "settings", f"uri={dead}", "lockout_failures=2")
    for _ in range(3):
        assert not check(cli, "alice", ALICE.password)
    cli("auth", "settings", f"uri={slapd_server.ldaps_uri}")
    assert check(cli, "alice", ALICE.password)


# --- against Samba AD -------------------------------------------------------------------------


@pytest.mark.samba
def test_samba_upn_template_and_search_then_bind(cli: Cli, samba_ad: SambaAD) -> None:
    fast(cli)
    cli("users", "add", "username=alice", "auth=ldap")
    cli("users", "add", "username=carol", "auth=ldap")  # disabled in AD
    cli(
        "auth", "settings", f"uri={samba_ad.host}", "security=ldaps",
        f"ca_file={samba_ad.ca_file}", "bind_user=%@example.test",
    )  # fmt: skip
    assert check(cli, "alice", "Alice-Secret-1")
    assert not check(cli, "alice", "Alice-Secret-2")
    assert not check(cli, "carol", "Carol-Secret-1")
    cli(
        "auth", "settings", "bind_user=", f"bind_dn={samba_ad.admin_upn}", "bind_password=-",
        f"search_base={samba_ad.base_dn}", "user_attribute=sAMAccountName",
        "security=starttls", stdin=samba_ad.admin_password + "\n",
    )  # fmt: skip
    assert check(cli, "alice", "Alice-Secret-1")
    assert not check(cli, "alice", "wrong")
    out = cli("auth", "test", "alice", stdin="Alice-Secret-1\n").stdout
    assert "found CN=Alice Anderson,OU=People,DC=example,DC=test" in out
