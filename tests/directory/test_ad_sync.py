"""Active Directory profiles end to end, against a real Samba AD DC on 127.0.0.2
(see tests/servers/samba_ad.py). The DC is shared by the session: tests add their own
entries with unique names and remove them again."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Cli
from tests.servers.samba_ad import BULK_USER_COUNT, SambaAD
from tests.servers.slapd import SlapdServer

pytestmark = pytest.mark.samba


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "cli.db")


def create(cli: Cli, dc: SambaAD, name: str, template: str, *extra: str) -> None:
    cli(
        "profile", "create", name, "--template", template,
        "--set", "domain=example.test",
        "--set", f"server={dc.host}",
        "--set", f"ca_file={dc.ca_file}",
        "--set", "bind_user=Administrator",
        "--set", f"bind_password={dc.admin_password}",
        *extra,
    )  # fmt: skip


def sync(cli: Cli, name: str, *args: str, code: int = 0) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(cli("sync", name, "--json", *args, code=code).stdout)
    return report


def users(cli: Cli) -> dict[str, dict[str, Any]]:
    return {u["username"]: u for u in cli.json("users", "list") if not u["builtin"]}


@pytest.fixture
def people(samba_ad: SambaAD) -> str:
    return samba_ad.people_dn


def test_ad_users_enabled_people_only_over_ldaps(cli: Cli, samba_ad: SambaAD, people: str) -> None:
    create(cli, samba_ad, "ad", "ad-users", "--set", f"base_dn={people}")
    preview = cli.json("preview", "ad", "--limit", "50")
    sams = {r["sAMAccountName"] for r in preview}
    assert {"alice", "jsmith"} <= sams
    alice_row = next(r for r in preview if r["sAMAccountName"] == "alice")
    guid = alice_row["objectGUID"]
    assert str(uuid.UUID(guid)) == guid  # shown as a GUID, not bytes
    assert alice_row["objectSid"].startswith("S-1-5-21-")

    report = sync(cli, "ad")
    assert report["status"] == "ok", report
    found = users(cli)
    # Disabled accounts (carol, dave) and the computer account WS001 are left out.
    assert set(found) == {"alice", "bob", "juergen", "jsmith", "erin"}
    alice = found["alice"]
    assert alice["displayname"] == "Alice Anderson"
    assert alice["extension"] == "101"  # from "+49 991 12345-101"
    assert alice["phone"] == "+49 991 12345-101"  # the direct number, kept whole
    assert alice["phone_e164"] == "+4999112345101"
    assert alice["mobile_e164"] == "+491701234501"
    assert alice["fax"] == "+49 991 12345-9101"
    assert alice["organisation"] == "Example GmbH"
    assert alice["origin"]["key"] == guid
    assert found["juergen"]["surname"] == "Groß"
    assert found["erin"]["extension"] is None
    assert (found["erin"]["phone"], found["erin"]["phone_e164"]) == ("", None)
    assert report["warnings"] == []  # every number had its extension part
    assert sync(cli, "ad")["counts"]["unchanged"] == 5


def test_paging_past_the_page_size_reads_the_whole_domain(cli: Cli, samba_ad: SambaAD) -> None:
    create(cli, samba_ad, "ad", "ad-users", "--set", "page_size=300")
    report = sync(cli, "ad", "--dry-run")
    counts = report["counts"]
    seen = counts["created"] + counts["invalid"] + counts["conflicts"]
    # Every bulk user, the enabled named users, Administrator: over several pages.
    assert seen >= BULK_USER_COUNT + 6
    assert counts["created"] >= BULK_USER_COUNT


def test_group_restriction_includes_nested_groups(cli: Cli, samba_ad: SambaAD, people: str) -> None:
    create(cli, samba_ad, "byname", "ad-users", "--set", "group=Phone Users")
    sync(cli, "byname")
    # alice via Sales, bob via Sales Inside (two levels down), juergen directly; carol is
    # a member too, but disabled.
    assert set(users(cli)) == {"alice", "bob", "juergen"}
    create(cli, samba_ad, "bydn", "ad-users", "--set", f"group={samba_ad.group_dn('Sales')}")
    report = sync(cli, "bydn", "--dry-run")
    assert report["counts"]["conflicts"] == 2  # alice and bob belong to "byname" already
    cli("profile", "set", "bydn", "group=No Such Group")
    report = sync(cli, "bydn", code=3)
    assert "no group named 'No Such Group'" in report["errors"][0]["message"]


@pytest.fixture
def cleanup(samba_ad: SambaAD) -> Iterator[list[str]]:
    """DNs to delete (with their subtrees) after the test."""
    dns: list[str] = []
    yield dns
    for dn in reversed(dns):
        samba_ad.delete(dn, recursive=True)


def test_renamed_and_moved_user_is_updated_not_recreated(
    cli: Cli, samba_ad: SambaAD, cleanup: list[str]
) -> None:
    rdn = f"OU=Move-{uuid.uuid4().hex[:8]}"
    ou = samba_ad.add_ou(rdn)
    cleanup.append(ou)
    sub = samba_ad.add_ou(f"OU=Sub,{rdn}")
    dn = samba_ad.add_user(
        "mover", "Moritz", "Mover", parent=ou, telephoneNumber="+49 991 12345-777"
    )
    create(cli, samba_ad, "ad", "ad-users", "--set", f"base_dn={ou}")
    sync(cli, "ad")
    before = users(cli)["mover"]
    assert before["extension"] == "777"
    new_dn = samba_ad.rename(dn, "CN=Moritz Mover-Neu", new_superior=sub)
    samba_ad.modify(new_dn, {"displayName": "Moritz Mover-Neu"})
    report = sync(cli, "ad")
    assert (report["counts"]["updated"], report["counts"]["created"]) == (1, 0)
    assert report["counts"]["deleted"] == 0
    after = users(cli)["mover"]
    assert after["id"] == before["id"]
    assert after["displayname"] == "Moritz Mover-Neu"


def test_ad_phonebook_and_speeddials(cli: Cli, samba_ad: SambaAD, cleanup: list[str]) -> None:
    create(cli, samba_ad, "pb", "ad-phonebook", "--set", f"base_dn={samba_ad.contacts_dn}")
    report = sync(cli, "pb")
    assert report["status"] == "ok", report
    entries = {e["displayname"]: e for e in cli.json("phonebook", "list")}
    assert set(entries) == {"Acme Hotline", "Zoë Lieferant"}
    assert entries["Acme Hotline"]["phone_e164"] == "+49891234567"
    assert entries["Acme Hotline"]["organisation"] == "Acme AG"

    name = f"Pizza {uuid.uuid4().hex[:6]}"
    cleanup.append(samba_ad.add_contact(name, ipPhone="82", telephoneNumber="+49 991 4711"))
    create(cli, samba_ad, "sd", "ad-speeddials")
    sync(cli, "sd")
    dials = {d["code"]: d for d in cli.json("speeddials", "list")}
    assert dials["82"]["number"] == "+49 991 4711"
    assert dials["82"]["displayname"] == name


def test_starttls_and_failures(
    cli: Cli, samba_ad: SambaAD, people: str, slapd_server: SlapdServer
) -> None:
    create(cli, samba_ad, "ad", "ad-users", "--set", f"base_dn={people}",
           "--set", "security=starttls")  # fmt: skip
    assert sync(cli, "ad")["status"] == "ok"

    cli("profile", "set", "ad", "bind_password=Wrong-Password-1")
    report = sync(cli, "ad", code=3)
    message = report["errors"][0]["message"]
    assert "refused the bind as Administrator@example.test" in message
    assert "Wrong-Password-1" not in json.dumps(report)

    cli("profile", "set", "ad", f"bind_password={samba_ad.admin_password}")
    cli("profile", "set", "ad", f"ca_file={slapd_server.wrong_ca_file}")
    assert "StartTLS failed" in sync(cli, "ad", code=3)["errors"][0]["message"]
    cli("profile", "set", "ad", "security=ldaps")
    assert "TLS failed" in sync(cli, "ad", code=3)["errors"][0]["message"]
    assert len(users(cli)) == 5  # failed runs changed nothing


def test_configure_authentication_checks_imported_users_against_the_dc(
    cli: Cli, samba_ad: SambaAD, people: str
) -> None:
    create(cli, samba_ad, "ad", "ad-users", "--set", f"base_dn={people}",
           "--set", "configure_authentication=yes")  # fmt: skip
    out = cli("sync", "ad").stdout
    assert "authentication settings taken from this profile" in out
    assert {u["auth"] for u in users(cli).values()} == {"ldap"}
    settings = cli.json("auth", "settings")
    assert settings["bind_user"] == "%@example.test"
    assert settings["mode"] == "template"
    cli("auth", "settings", "failure_delay_ms=0")
    assert cli("auth", "check", "alice", stdin="Alice-Secret-1\n").stdout == "accepted\n"
    assert cli("auth", "check", "alice", stdin="nope\n", code=1).stdout == "rejected\n"


def test_a_direct_number_without_an_extension_part_is_kept_with_a_warning(
    cli: Cli, samba_ad: SambaAD, cleanup: list[str]
) -> None:
    ou = samba_ad.add_ou(f"OU=Din-{uuid.uuid4().hex[:8]}")
    cleanup.append(ou)
    plain = samba_ad.add_user("hq", "Hanna", "Quast", parent=ou, telephoneNumber="+49 89 3005")
    samba_ad.add_user("din", "Dirk", "Inn", parent=ou, telephoneNumber="+49 89 3005-42")
    create(cli, samba_ad, "ad", "ad-users", "--set", f"base_dn={ou}")
    dry = cli("sync", "ad", "--dry-run")  # the plan says so before anything is written
    assert "field 'extension': no extension could be derived from the direct number" in dry.stderr
    report = sync(cli, "ad")
    assert report["status"] == "ok", report
    assert report["counts"]["created"] == 2
    found = users(cli)
    assert (found["din"]["extension"], found["din"]["phone_e164"]) == ("42", "+4989300542")
    hq = found["hq"]
    assert (hq["phone"], hq["phone_e164"], hq["extension"]) == ("+49 89 3005", "+49893005", None)
    [warning] = report["warnings"]
    assert warning["field"] == "extension"
    assert warning["ref"].lower() == plain.lower()  # the row is named by its DN
    assert warning["message"].startswith(
        "no extension could be derived from the direct number '+49 89 3005'"
    )
