"""Every directory template through the whole cycle a user goes through: preview, dry
run, sync, unchanged re-sync, a renamed and moved entry (an update of the same record),
and a removed entry (a mirror delete). test_ldap_sync.py and test_ad_sync.py cover the
users templates' details; this covers the rest the same way."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Cli
from tests.servers.samba_ad import SambaAD
from tests.servers.slapd import UCS_SUFFIX, UCS_USER_CLASSES, SlapdServer, ucs_tree
from tests.servers.slapd_fixtures import ScratchOU, SlapdFactory

COUNT = 6  # a mirror delete of one is well within max_delete


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "cli.db")


def sync(cli: Cli, name: str, *args: str) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(cli("sync", name, "--json", *args).stdout)
    assert report["status"] == "ok", report
    return report


@dataclass
class Directory:
    """What a cycle needs from a directory: where entries go and how to change them."""

    settings: list[str]
    base: str
    add: Callable[[int, str], str]  # (n, parent DN) -> DN
    rename: Callable[[str, str, str], str]  # (dn, new RDN, new parent) -> new DN
    modify: Callable[[str, int], None]  # change a mapped value of entry n
    delete: Callable[[str], None]
    add_container: Callable[[str], str]


@dataclass
class Case:
    template: str
    listing: str  # the records command
    field: str  # a field that identifies the records in the listing
    expected: Callable[[int], str]  # field value of entry n


def run_cycle(cli: Cli, d: Directory, case: Case) -> None:
    dns = [d.add(n, d.base) for n in range(COUNT)]
    cli("profile", "create", "p", "--template", case.template, *d.settings)

    preview = cli.json("preview", "p", "--limit", "50")
    assert sorted(row["dn"].lower() for row in preview) == sorted(dn.lower() for dn in dns)

    dry = sync(cli, "p", "--dry-run")
    assert dry["counts"]["created"] == COUNT
    assert cli.json(case.listing, "list") == [
        r for r in cli.json(case.listing, "list") if r.get("builtin")
    ]

    assert sync(cli, "p")["counts"]["created"] == COUNT
    records = {r[case.field]: r for r in cli.json(case.listing, "list") if not r.get("builtin")}
    assert set(records) == {case.expected(n) for n in range(COUNT)}
    assert sync(cli, "p")["counts"]["unchanged"] == COUNT

    moved_to = d.add_container(d.base)
    new_dn = d.rename(dns[0], "renamed", moved_to)
    d.modify(new_dn, 0)
    report = sync(cli, "p")
    assert (report["counts"]["updated"], report["counts"]["created"]) == (1, 0)
    assert report["counts"]["deleted"] == 0
    after = {r["id"] for r in cli.json(case.listing, "list") if not r.get("builtin")}
    assert after == {r["id"] for r in records.values()}  # same records, same ids

    d.delete(dns[1])
    report = sync(cli, "p")
    assert report["counts"]["deleted"] == 1
    left = {r[case.field] for r in cli.json(case.listing, "list") if not r.get("builtin")}
    assert case.expected(1) not in left and len(left) == COUNT - 1


# --- OpenLDAP: ldap-phonebook, ldap-speeddials ------------------------------------------------


def slapd_directory(server: SlapdServer, base: str, make: Callable[[int], dict[str, list[str]]],
                    rdn: Callable[[int], str]) -> Directory:  # fmt: skip
    def add(n: int, parent: str) -> str:
        dn = f"{rdn(n)},{parent}"
        server.add(dn, make(n))
        return dn

    def add_container(parent: str) -> str:
        dn = f"ou=moved,{parent}"
        server.add(dn, {"objectClass": ["organizationalUnit"], "ou": ["moved"]})
        return dn

    def rename(dn: str, new_rdn: str, parent: str) -> str:
        attr = dn.split("=", 1)[0]
        return str(server.rename(dn, f"{attr}={new_rdn}", new_superior=parent))

    return Directory(
        settings=[
            "--set", f"uri={server.uri}", "--set", f"ca_file={server.ca_file}",
            "--set", f"bind_dn={server.reader_dn}",
            "--set", f"bind_password={server.reader_password}", "--set", f"base_dn={base}",
        ],
        base=base,
        add=add,
        rename=rename,
        modify=lambda dn, n: server.modify(dn, {"telephoneNumber": [f"+49 991 777{n}"]}),
        delete=server.delete,
        add_container=add_container,
    )  # fmt: skip


def _contact(n: int) -> dict[str, list[str]]:
    return {
        "objectClass": ["inetOrgPerson"],
        "cn": [f"Kontakt {n} Ö"],
        "sn": [f"Kontakt {n}"],
        "telephoneNumber": [f"+49 991 100{n}"],
        "pager": [f"7{n}"],
    }


@pytest.mark.slapd
@pytest.mark.parametrize(
    "case",
    [
        Case("ldap-phonebook", "phonebook", "displayname", lambda n: f"Kontakt {n} Ö"),
        Case("ldap-speeddials", "speeddials", "code", lambda n: f"7{n}"),
    ],
    ids=lambda c: c.template,
)
def test_ldap_templates_cycle(cli: Cli, slapd_scratch: ScratchOU, case: Case) -> None:
    d = slapd_directory(
        slapd_scratch.server, slapd_scratch.dn, _contact, lambda n: f"cn=Kontakt {n} Ö"
    )
    # the renamed entry keeps its cn (only the RDN changes), so the records stay the same
    d.rename = lambda dn, new_rdn, parent: str(
        slapd_scratch.server.rename(dn, "cn=Kontakt 0 Ö", new_superior=parent)
    )
    run_cycle(cli, d, case)


# --- UCS ------------------------------------------------------------------------------------


def _ucs_user(n: int) -> dict[str, list[str]]:
    uid = f"cycle{n}"
    return {
        "objectClass": list(UCS_USER_CLASSES),
        "uid": [uid],
        "cn": [f"Cycle {n}"],
        "sn": [f"Cycle{n}"],
        "givenName": ["Zyklus"],
        "uidNumber": [str(5000 + n)],
        "gidNumber": ["5001"],
        "homeDirectory": [f"/home/{uid}"],
        "univentionObjectType": ["users/user"],
        "mailPrimaryAddress": [f"{uid}@ucs.test"],
        "univentionPhoneAllowed": ["1"],
        "telephoneNumber": [f"60{n}"],
    }


@pytest.mark.slapd
def test_ucs_users_cycle(cli: Cli, slapd_factory: SlapdFactory) -> None:
    server = slapd_factory(suffix=UCS_SUFFIX, entries=lambda suffix: ucs_tree(suffix, users=5))
    # Below cn=users, apart from the tree's own users (some of them allowed, too).
    base = f"ou=cycle,cn=users,{UCS_SUFFIX}"
    server.add(base, {"objectClass": ["organizationalUnit"], "ou": ["cycle"]})
    d = slapd_directory(server, base, _ucs_user, lambda n: f"uid=cycle{n}")
    d.settings[-1] = f"base_dn={UCS_SUFFIX}"
    d.settings += ["--set", f"search_base={base}"]
    # Renamed and moved: a new uid is a new username, which is what an update shows.
    run_cycle(cli, d, Case("ucs-users", "users", "email", lambda n: f"cycle{n}@ucs.test"))


# --- Active Directory: ad-phonebook, ad-speeddials ----------------------------------------------


@pytest.fixture
def ad_ou(samba_ad: SambaAD) -> Iterator[str]:
    rdn = f"OU=Cycle-{uuid.uuid4().hex[:8]}"
    dn = samba_ad.add_ou(rdn)
    yield dn
    samba_ad.delete(dn, recursive=True)


@pytest.mark.samba
@pytest.mark.parametrize(
    "case",
    [
        Case("ad-phonebook", "phonebook", "displayname", lambda n: f"Firma {n}"),
        Case("ad-speeddials", "speeddials", "code", lambda n: f"8{n}"),
    ],
    ids=lambda c: c.template,
)
def test_ad_templates_cycle(cli: Cli, samba_ad: SambaAD, ad_ou: str, case: Case) -> None:
    dc = samba_ad

    def add(n: int, parent: str) -> str:
        return dc.add_contact(
            f"Firma {n}", parent=parent, displayName=f"Firma {n}",
            telephoneNumber=f"+49 89 555{n}", ipPhone=f"8{n}",
        )  # fmt: skip

    def add_container(parent: str) -> str:
        return dc.add_ou(f"OU=Moved,{parent.split(',' + dc.base_dn)[0]}")

    d = Directory(
        settings=[
            "--set", "domain=example.test", "--set", f"server={dc.host}",
            "--set", f"ca_file={dc.ca_file}", "--set", "bind_user=Administrator",
            "--set", f"bind_password={dc.admin_password}", "--set", f"base_dn={ad_ou}",
        ],
        base=ad_ou,
        add=add,
        rename=lambda dn, _rdn, parent: str(dc.rename(dn, "CN=Firma 0 neu", new_superior=parent)),
        modify=lambda dn, n: dc.modify(dn, {"telephoneNumber": f"+49 89 777{n}"}),
        delete=dc.delete,
        add_container=add_container,
    )  # fmt: skip
    run_cycle(cli, d, case)
