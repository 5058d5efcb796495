"""LDAP connector profiles end to end, against a real slapd (see tests/servers/slapd.py):
preview, dry run, sync, re-sync, rename, mirror delete, paging, TLS and every failure."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Cli, free_port
from tests.servers.slapd import SlapdServer
from tests.servers.slapd_fixtures import ScratchOU

pytestmark = pytest.mark.slapd


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "cli.db")


def person(
    ou: ScratchOU, uid: str, given: str, sn: str, phone: str = "", **attrs: list[str]
) -> str:
    dn = f"uid={uid},{ou.dn}"
    entry: dict[str, list[str]] = {
        "objectClass": ["top", "person", "organizationalPerson", "inetOrgPerson"],
        "uid": [uid],
        "cn": [f"{given} {sn}"],
        "givenName": [given],
        "sn": [sn],
        "displayName": [f"{given} {sn}"],
        **attrs,
    }
    if phone:
        entry["telephoneNumber"] = [phone]
    ou.server.add(dn, entry)
    return dn


def create(
    cli: Cli, server: SlapdServer, name: str, template: str, base_dn: str, *extra: str
) -> None:
    cli(
        "profile", "create", name, "--template", template,
        "--set", f"uri={server.uri}",
        "--set", f"ca_file={server.ca_file}",
        "--set", f"bind_dn={server.reader_dn}",
        "--set", f"bind_password={server.reader_password}",
        "--set", f"base_dn={base_dn}",
        *extra,
    )  # fmt: skip


def sync(cli: Cli, name: str, *args: str, code: int = 0) -> dict[str, Any]:
    result = cli("sync", name, "--json", *args, code=code)
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_ldap_users_preview_dry_run_sync_and_resync(cli: Cli, slapd_scratch: ScratchOU) -> None:
    ou = slapd_scratch
    person(ou, "Alice", "Alice", "Andersen", "1000", mail=["alice@example.test"])
    person(ou, "jgross", "Jürgen", "Groß", "1002", mobile=["+49 170 1234567"])
    create(cli, ou.server, "dir", "ldap-users", ou.dn)

    preview = cli.json("preview", "dir")
    assert {r["uid"] for r in preview} == {"Alice", "jgross"}
    alice = next(r for r in preview if r["uid"] == "Alice")
    assert alice["dn"] == f"uid=Alice,{ou.dn}"
    assert alice["entryUUID"]  # the key is operational and still shown

    dry = sync(cli, "dir", "--dry-run")
    assert dry["counts"]["created"] == 2
    assert cli.json("users", "list") == [u for u in cli.json("users", "list") if u["builtin"]]

    report = sync(cli, "dir")
    assert report["status"] == "ok"
    assert report["counts"]["created"] == 2
    users = {u["username"]: u for u in cli.json("users", "list")}
    assert users["alice"]["displayname"] == "Alice Andersen"
    assert users["alice"]["extension"] == "1000"
    assert (users["alice"]["phone"], users["alice"]["phone_e164"]) == ("1000", None)
    assert users["alice"]["email"] == "alice@example.test"
    assert users["jgross"]["surname"] == "Groß"
    assert users["jgross"]["mobile_e164"] == "+491701234567"
    assert users["alice"]["origin"]["key"] == alice["entryUUID"]

    again = sync(cli, "dir")
    assert again["counts"]["unchanged"] == 2
    assert again["counts"]["created"] == again["counts"]["updated"] == 0


def test_rename_and_move_is_an_update_of_the_same_record(
    cli: Cli, slapd_scratch: ScratchOU
) -> None:
    ou = slapd_scratch
    dn = person(ou, "carol", "Carol", "Clark", "2000")
    ou.server.add(f"ou=moved,{ou.dn}", {"objectClass": ["organizationalUnit"], "ou": ["moved"]})
    create(cli, ou.server, "dir", "ldap-users", ou.dn)
    sync(cli, "dir")
    before = next(u for u in cli.json("users", "list") if u["username"] == "carol")

    new_dn = ou.server.rename(dn, "uid=carol.clark", new_superior=f"ou=moved,{ou.dn}")
    ou.server.modify(new_dn, {"displayName": ["Carol Clark-Smith"]})
    report = sync(cli, "dir")
    assert report["counts"] == {
        "created": 0, "updated": 1, "deleted": 0, "unchanged": 0,
        "invalid": 0, "conflicts": 0, "skipped": 0,
    }  # fmt: skip
    after = next(u for u in cli.json("users", "list") if u["username"] == "carol.clark")
    assert after["id"] == before["id"]
    assert after["displayname"] == "Carol Clark-Smith"


def test_mirror_deletes_what_left_the_directory(cli: Cli, slapd_scratch: ScratchOU) -> None:
    ou = slapd_scratch
    dns = [person(ou, f"u{i}", f"Given{i}", f"Sur{i}", f"30{i:02d}") for i in range(12)]
    create(cli, ou.server, "dir", "ldap-users", ou.dn)
    assert sync(cli, "dir")["counts"]["created"] == 12
    ou.server.delete(dns[0])
    report = sync(cli, "dir")
    assert report["counts"]["deleted"] == 1
    assert "u0" not in {u["username"] for u in cli.json("users", "list")}
    out = cli("sync", "dir", "--dry-run").stdout
    assert "0 would be deleted" in out


def test_dn_values_with_special_characters_round_trip(cli: Cli, slapd_scratch: ScratchOU) -> None:
    ou = slapd_scratch
    tricky = 'Müller, Hans + "Sohn" \\ Söhne; <GmbH> #1'
    dn_value = (
        tricky.replace("\\", "\\\\").replace(",", "\\,").replace("+", "\\+")
        .replace('"', '\\"').replace(";", "\\;").replace("<", "\\<").replace(">", "\\>")
    )  # fmt: skip
    dn = f"cn={dn_value},{ou.dn}"
    ou.server.add(
        dn,
        {
            "objectClass": ["inetOrgPerson"],
            "cn": [tricky],
            "sn": ["Müller"],
            "telephoneNumber": ["+49 991 1234"],
        },
    )
    create(cli, ou.server, "pb", "ldap-phonebook", ou.dn)
    report = sync(cli, "pb")
    assert report["counts"]["created"] == 1
    (entry,) = cli.json("phonebook", "list")
    assert entry["displayname"] == tricky
    assert entry["phone_e164"] == "+499911234"
    assert sync(cli, "pb")["counts"]["unchanged"] == 1
    # Plans name a directory row by its DN.
    ou.server.modify(dn, {"telephoneNumber": ["+49 991 5678"]})
    out = cli("sync", "pb", "--dry-run").stdout
    # (the server gives the DN back in its own escaping: "\\2C" for ",")
    assert "Would update phonebook entry" in out
    assert "(cn=Müller\\2C Hans \\2B" in out


def test_paged_search_gets_past_the_server_size_limit(cli: Cli, slapd_server: SlapdServer) -> None:
    create(cli, slapd_server, "all", "ldap-users", f"ou=people,{slapd_server.suffix}")
    cli("profile", "variables", "all", "extension=")  # some generated users share none
    report = sync(cli, "all", "--dry-run")
    assert report["status"] == "ok"
    counts = report["counts"]
    # Every one of the 5,000 entries was read (the server alone would stop at 500).
    assert counts["created"] + counts["invalid"] + counts["conflicts"] == 5000
    assert counts["created"] > 4900


def test_only_used_attributes_are_requested(cli: Cli, slapd_scratch: ScratchOU) -> None:
    ou = slapd_scratch
    person(ou, "dave", "Dave", "Doe", "4000", description=["not used anywhere"])
    create(cli, ou.server, "dir", "ldap-users", ou.dn)
    cli("profile", "variables", "dir", "displayname={{ cn }} ({{ description }})")
    sync(cli, "dir")
    (dave,) = [u for u in cli.json("users", "list") if u["username"] == "dave"]
    assert dave["displayname"] == "Dave Doe (not used anywhere)"
    # An attribute the entry lacks is empty, not an error.
    cli("profile", "variables", "dir", "job={{ title }}")
    assert sync(cli, "dir")["status"] == "ok"


def test_multi_valued_attributes_are_lists_in_expressions(
    cli: Cli, slapd_scratch: ScratchOU
) -> None:
    ou = slapd_scratch
    dn = person(ou, "erin", "Erin", "Evans", "5000")
    ou.server.modify(dn, {"telephoneNumber": ["5000", "+49 991 5000"]})
    create(cli, ou.server, "dir", "ldap-users", ou.dn)
    cli("profile", "variables", "dir", "homephone={{ telephoneNumber[1] }}")
    sync(cli, "dir")
    (erin,) = [u for u in cli.json("users", "list") if u["username"] == "erin"]
    assert erin["extension"] == "5000"
    assert erin["phone"] == "5000"  # the first value, as for the extension
    assert erin["homephone"] == "+49 991 5000"
    preview = cli.json("preview", "dir")
    assert preview[0]["telephoneNumber"] == ["5000", "+49 991 5000"]


def test_ldaps_and_failover_to_a_second_uri(cli: Cli, slapd_scratch: ScratchOU) -> None:
    ou = slapd_scratch
    person(ou, "frank", "Frank", "Fischer", "6000")
    dead = f"ldaps://127.0.0.1:{free_port()}"
    create(
        cli, ou.server, "dir", "ldap-users", ou.dn,
        "--set", "security=ldaps",
        "--set", f"uri={dead} {ou.server.ldaps_uri}",
    )  # fmt: skip
    report = sync(cli, "dir")
    assert report["status"] == "ok"
    assert report["counts"]["created"] == 1


def failure(cli: Cli, name: str) -> str:
    report = sync(cli, name, code=3)
    assert report["status"] == "failed"
    assert report["counts"]["created"] == 0
    message: str = report["errors"][0]["message"]
    return message


def test_failures_name_server_and_step_and_change_nothing(
    cli: Cli, slapd_scratch: ScratchOU, tmp_path: Path
) -> None:
    ou = slapd_scratch
    person(ou, "gina", "Gina", "Graf", "7000")
    create(cli, ou.server, "dir", "ldap-users", ou.dn)
    sync(cli, "dir")
    ou.server.delete(f"uid=gina,{ou.dn}")  # a mirror run would delete gina…

    dead = f"ldap://127.0.0.1:{free_port()}"
    cli("profile", "set", "dir", f"uri={dead}")
    assert f"{dead}: cannot reach the server" in failure(cli, "dir")

    cli("profile", "set", "dir", f"uri={ou.server.uri}", "bind_password=wrong-password")
    message = failure(cli, "dir")
    assert "refused the bind" in message and ou.server.reader_dn in message

    cli("profile", "set", "dir", f"bind_password={ou.server.reader_password}")
    cli("profile", "set", "dir", f"ca_file={ou.server.wrong_ca_file}")
    message = failure(cli, "dir")
    assert "StartTLS failed" in message

    cli("profile", "set", "dir", "security=ldaps", f"uri={ou.server.ldaps_uri}")
    assert "TLS failed" in failure(cli, "dir")

    cli("profile", "set", "dir", f"ca_file={ou.server.ca_file}")
    cli("profile", "set", "dir", f"base_dn=ou=nowhere,{ou.server.suffix}")
    assert "does not exist" in failure(cli, "dir")

    # …but none of the failed runs changed anything.
    assert "gina" in {u["username"] for u in cli.json("users", "list")}
    runs = cli.json("runs", "dir")
    assert [r["status"] for r in runs].count("failed") == 5


def test_the_bind_password_is_never_shown(cli: Cli, slapd_scratch: ScratchOU) -> None:
    ou = slapd_scratch
    person(ou, "hank", "Hank", "Hill", "8000")
    create(cli, ou.server, "dir", "ldap-users", ou.dn)
    cli("profile", "set", "dir", "bind_password=Very-Secret-Pw1")
    outputs = [
        cli("sync", "dir", code=3).stdout + cli("sync", "dir", code=3).stderr,
        cli("sync", "dir", "--json", code=3).stdout,
        cli("profile", "show", "dir", "--json").stdout,
        cli("profile", "export", "dir").stdout,
        cli("runs", "dir", "--json").stdout,
        cli("preview", "dir", code=3).stderr,
    ]
    for out in outputs:
        assert "Very-Secret-Pw1" not in out
    shown = cli.json("profile", "show", "dir")
    assert "bind_password" in shown["secrets_set"]


def test_empty_bind_password_is_refused_before_contacting_a_server(
    cli: Cli, slapd_scratch: ScratchOU
) -> None:
    ou = slapd_scratch
    create(cli, ou.server, "dir", "ldap-users", ou.dn)
    cli("profile", "set", "dir", "bind_password=", f"uri=ldap://127.0.0.1:{free_port()}")
    message = failure(cli, "dir")
    assert "bind password is empty" in message
    assert "cannot reach" not in message


def test_ldap_phonebook_and_speeddials(cli: Cli, slapd_scratch: ScratchOU) -> None:
    ou = slapd_scratch
    person(ou, "ina", "Ina", "Ilse", "+49 991 100", pager=["81"])
    person(ou, "jan", "Jan", "Jansen", "", mobile=["+49 170 2222222"])
    person(ou, "kai", "Kai", "Kurz")  # no number: not in the phonebook
    create(cli, ou.server, "pb", "ldap-phonebook", ou.dn)
    create(cli, ou.server, "sd", "ldap-speeddials", ou.dn)
    assert sync(cli, "pb")["counts"]["created"] == 2
    names = {e["displayname"] for e in cli.json("phonebook", "list")}
    assert names == {"Ina Ilse", "Jan Jansen"}
    assert sync(cli, "sd")["counts"]["created"] == 1
    (dial,) = cli.json("speeddials", "list")
    assert (dial["code"], dial["number"]) == ("81", "+49 991 100")


def test_ucs_users_only_those_allowed_for_the_phone_system(
    cli: Cli, ucs_slapd_server: SlapdServer
) -> None:
    server = ucs_slapd_server
    cli(
        "profile", "create", "ucs", "--template", "ucs-users",
        "--set", f"uri={server.uri}",
        "--set", f"ca_file={server.ca_file}",
        "--set", f"bind_dn={server.reader_dn}",
        "--set", f"bind_password={server.reader_password}",
        "--set", f"base_dn={server.suffix}",
    )  # fmt: skip
    report = sync(cli, "ucs")
    assert report["status"] == "ok", report
    users = {u["username"]: u for u in cli.json("users", "list")}
    assert "alice" in users and "bob" not in users and "carl" not in users
    assert users["alice"]["email"] == "alice@ucs.test"  # from mailPrimaryAddress
    assert not any(name.endswith("$") for name in users)
    cli("profile", "set", "ucs", "allowed_attribute=")
    report = sync(cli, "ucs")
    users = {u["username"] for u in cli.json("users", "list")}
    assert {"bob", "carl"} <= users


def test_invalid_settings_are_refused_when_set(cli: Cli, slapd_scratch: ScratchOU) -> None:
    ou = slapd_scratch
    create(cli, ou.server, "dir", "ldap-users", ou.dn)
    r = cli("profile", "set", "dir", "filter=(&(uid=*)", code=2)
    assert "invalid LDAP filter" in r.stderr
    r = cli("profile", "set", "dir", "uri=ldaps://x", code=2)
    assert "security=ldaps" in r.stderr
    r = cli("profile", "set", "dir", "page_size=none", code=2)
    assert "page_size must be a number" in r.stderr
    r = cli("profile", "set", "dir", "scope=deep", code=2)
    assert "scope must be one of" in r.stderr


def test_configure_authentication_uses_the_profiles_connection(
    cli: Cli, slapd_scratch: ScratchOU
) -> None:
    ou = slapd_scratch
    person(ou, "lena", "Lena", "Lang", "9000", userPassword=["Lena-Secret-1"])
    create(cli, ou.server, "dir", "ldap-users", ou.dn,
           "--set", "configure_authentication=yes")  # fmt: skip
    sync(cli, "dir")
    (lena,) = [u for u in cli.json("users", "list") if u["username"] == "lena"]
    assert lena["auth"] == "ldap"
    settings = cli.json("auth", "settings")
    assert (settings["mode"], settings["search_base"]) == ("search", ou.dn)
    assert settings["bind_password"] == "(set)"
    cli("auth", "settings", "failure_delay_ms=0")
    assert cli("auth", "check", "lena", stdin="Lena-Secret-1\n").stdout == "accepted\n"
    assert cli("auth", "check", "lena", stdin="wrong\n", code=1).stdout == "rejected\n"


def test_a_server_that_never_answers_times_out_and_the_next_is_tried(
    cli: Cli, slapd_scratch: ScratchOU
) -> None:
    ou = slapd_scratch
    person(ou, "mona", "Mona", "Maier", "9100")
    # Accepts connections (the kernel does, from the backlog) but never says a word.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        mute = f"ldap://127.0.0.1:{silent.getsockname()[1]}"
        create(cli, ou.server, "dir", "ldap-users", ou.dn, "--set", "timeout=1",
               "--set", f"uri={mute}")  # fmt: skip
        message = failure(cli, "dir")
        assert mute in message and "cannot reach the server" in message
        cli("profile", "set", "dir", f"uri={mute} {ou.server.uri}")
        assert sync(cli, "dir")["counts"]["created"] == 1


def test_direct_numbers_are_stored_and_the_extension_derived_when_it_can_be(
    cli: Cli, slapd_scratch: ScratchOU
) -> None:
    ou = slapd_scratch
    person(ou, "din", "Dirk", "Inn", "+49 89 3005-42")
    plain = person(ou, "hq", "Hanna", "Quast", "+49 89 3005")
    person(ou, "internal", "Ingo", "Intern", "2042")
    create(cli, ou.server, "dir", "ldap-users", ou.dn)
    dry = cli("sync", "dir", "--dry-run")  # the plan says so before anything is written
    assert "field 'extension': no extension could be derived from the direct number" in dry.stderr
    report = sync(cli, "dir")
    assert report["status"] == "ok", report
    assert report["counts"]["created"] == 3
    users = {u["username"]: u for u in cli.json("users", "list")}
    din, hq, internal = users["din"], users["hq"], users["internal"]
    assert (din["phone"], din["phone_e164"], din["extension"]) == (
        "+49 89 3005-42", "+4989300542", "42",
    )  # fmt: skip
    # No DIN 5008 extension part: the number is kept, the extension stays empty, and the
    # run says so, naming the entry.
    assert (hq["phone"], hq["phone_e164"], hq["extension"]) == ("+49 89 3005", "+49893005", None)
    assert (internal["phone_e164"], internal["extension"]) == (None, "2042")
    [warning] = report["warnings"]
    assert (warning["field"], warning["ref"]) == ("extension", plain)
    assert warning["message"] == (
        "no extension could be derived from the direct number '+49 89 3005': it has no "
        "DIN 5008 extension part (like '-100'); the user keeps the number but has no extension"
    )
