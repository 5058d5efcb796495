"""The throwaway Samba AD DC behaves like the Active Directory the connector must handle.

These tests pin down the server behaviour other tests rely on (binds, TLS, disabled
accounts, nested groups, paging), including where Samba 4.17 differs from Windows AD.
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import ldap
import pytest
from ldap.controls import SimplePagedResultsControl
from ldap.ldapobject import LDAPObject

from tests.servers.samba_ad import (
    BULK_USER_COUNT,
    COMPUTER_NAME,
    CONTACTS,
    DISABLED_USERS,
    GROUPS,
    MATCHING_RULE_IN_CHAIN,
    PHONE_USERS_TRANSITIVE,
    UAC_ACCOUNTDISABLE,
    USERS,
    USERS_BY_SAM,
    SambaAD,
    new_connection,
    provision_samba_ad,
    samba_unavailable_reason,
)
from tests.servers.samba_fixtures import samba_ad  # noqa: F401

pytestmark = pytest.mark.samba

PERSON_USERS = "(&(objectCategory=person)(objectClass=user))"
# AD's diagnostic "data" codes in a failed bind: wrong password, account disabled.
BAD_PASSWORD = "data 52e"
ACCOUNT_DISABLED = "data 533"


def _sam_names(entries: list[tuple[str, dict[str, list[bytes]]]]) -> set[str]:
    return {attrs["sAMAccountName"][0].decode() for _dn, attrs in entries}


def _can_read_directory(conn: LDAPObject, base_dn: str) -> bool:
    """Whether ``conn`` is authenticated: Samba 4.17 has no WhoAmI extended operation, and
    an anonymous connection may read the rootDSE but nothing below the base DN."""
    try:
        conn.search_s(base_dn, ldap.SCOPE_BASE, attrlist=["objectGUID"])
    except ldap.OPERATIONS_ERROR:
        return False
    return True


def _port_closed(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2.0)
        return sock.connect_ex((host, port)) != 0


def test_handle_describes_the_domain(samba_ad: SambaAD) -> None:  # noqa: F811
    assert samba_ad.host.startswith("127.0.0.")  # 127.0.0.2 unless another DC holds it
    assert samba_ad.uri == f"ldap://{samba_ad.host}"
    assert samba_ad.ldaps_uri == f"ldaps://{samba_ad.host}"
    assert samba_ad.realm == "EXAMPLE.TEST"
    assert samba_ad.domain == "EXAMPLE"
    assert samba_ad.base_dn == "DC=example,DC=test"
    assert samba_ad.admin_upn == "Administrator@example.test"
    assert samba_ad.admin_dn == "CN=Administrator,CN=Users,DC=example,DC=test"
    assert samba_ad.ca_file.is_file()


@pytest.mark.parametrize("who", ["upn", "dn", "netbios"])
def test_administrator_binds_with_upn_dn_or_down_level_name(
    samba_ad: SambaAD,  # noqa: F811
    who: str,
) -> None:
    name = {
        "upn": samba_ad.admin_upn,
        "dn": samba_ad.admin_dn,
        "netbios": f"{samba_ad.domain}\\Administrator",
    }[who]
    conn = samba_ad.bind(name, samba_ad.admin_password)
    try:
        assert _can_read_directory(conn, samba_ad.base_dn)
    finally:
        conn.unbind_s()


def test_seeded_users_carry_names_and_phone_numbers(samba_ad: SambaAD) -> None:  # noqa: F811
    entries = samba_ad.search(PERSON_USERS, ["*"], base=samba_ad.people_dn)
    by_sam = {attrs["sAMAccountName"][0].decode(): (dn, attrs) for dn, attrs in entries}
    assert set(by_sam) == set(USERS_BY_SAM)

    for user in USERS:
        dn, attrs = by_sam[user.sam]
        assert dn == samba_ad.user_dn(user.sam)
        assert attrs["givenName"] == [user.given.encode()]
        assert attrs["sn"] == [user.sn.encode()]
        assert attrs["displayName"] == [user.common_name.encode()]
        assert attrs["userPrincipalName"] == [f"{user.sam}@example.test".encode()]
        for name, value in user.attrs.items():
            assert attrs[name] == [value.encode()], (user.sam, name)

    dn, attrs = by_sam["juergen"]
    assert dn == "CN=Jürgen Groß,OU=People,DC=example,DC=test"
    assert attrs["displayName"][0].decode() == "Jürgen Groß"  # values are UTF-8
    assert by_sam["jsmith"][0] == "CN=Smith\\, John,OU=People,DC=example,DC=test"
    assert "telephoneNumber" not in by_sam["erin"][1]
    # A non-ASCII assertion value in a filter works too.
    assert _sam_names(samba_ad.search("(sn=Groß)", ["sAMAccountName"])) == {"juergen"}


def test_disabled_accounts_carry_uac_bit_2(samba_ad: SambaAD) -> None:  # noqa: F811
    entries = samba_ad.search(PERSON_USERS, ["sAMAccountName", "userAccountControl"])
    disabled = {
        attrs["sAMAccountName"][0].decode()
        for _dn, attrs in entries
        if int(attrs["userAccountControl"][0]) & UAC_ACCOUNTDISABLE
    }
    # The domain's built-in Guest and krbtgt accounts are disabled too.
    assert disabled == {*DISABLED_USERS, "Guest", "krbtgt"}
    assert {"carol", "dave"} == DISABLED_USERS

    # The usual server-side filter, with AD's bitwise-AND matching rule.
    bitwise = f"(&{PERSON_USERS}(userAccountControl:1.2.840.113556.1.4.803:=2))"
    found = samba_ad.search(bitwise, ["sAMAccountName"], base=samba_ad.people_dn)
    assert _sam_names(found) == DISABLED_USERS


def test_nested_group_members_via_matching_rule_in_chain(samba_ad: SambaAD) -> None:  # noqa: F811
    phone_users = samba_ad.group_dn("Phone Users")
    direct = samba_ad.search(f"(&{PERSON_USERS}(memberOf={phone_users}))", ["sAMAccountName"])
    assert _sam_names(direct) == {"juergen"}

    in_chain = f"(memberOf:{MATCHING_RULE_IN_CHAIN}:={phone_users})"
    users = samba_ad.search(f"(&{PERSON_USERS}{in_chain})", ["sAMAccountName"])
    assert _sam_names(users) == PHONE_USERS_TRANSITIVE == {"alice", "bob", "carol", "juergen"}
    # Without objectCategory=person the nested groups match as well.
    everything = samba_ad.search(in_chain, ["sAMAccountName"])
    assert _sam_names(everything) == {*PHONE_USERS_TRANSITIVE, "Sales", "Sales Inside"}

    sales = samba_ad.search("(cn=Sales)", ["member"], base=samba_ad.groups_dn)
    assert {m.decode() for m in sales[0][1]["member"]} == {
        samba_ad.members_dn(member) for member in GROUPS["Sales"]
    }


def test_object_guid_is_16_raw_bytes(samba_ad: SambaAD) -> None:  # noqa: F811
    [(_dn, attrs)] = samba_ad.search("(sAMAccountName=alice)", ["objectGUID"])
    [raw] = attrs["objectGUID"]
    assert isinstance(raw, bytes)
    assert len(raw) == 16
    # AD stores the first three fields little-endian: uuid.UUID(bytes_le=...).
    guid = uuid.UUID(bytes_le=raw)
    # A binary value in a filter: every byte escaped as \hh.
    escaped = "".join(f"\\{byte:02x}" for byte in raw)
    by_guid = samba_ad.search(f"(objectGUID={escaped})", ["cn"])
    assert [dn for dn, _ in by_guid] == [samba_ad.user_dn("alice")]
    # The GUID in its string form is also accepted as a base DN: <GUID=...>.
    found = samba_ad.search(base=f"<GUID={guid}>", scope=ldap.SCOPE_BASE, attrs=["cn"])
    assert found[0][1]["cn"] == [b"Alice Anderson"]


def test_contacts_and_the_computer_account(samba_ad: SambaAD) -> None:  # noqa: F811
    contacts = samba_ad.search("(objectClass=contact)", ["cn", "telephoneNumber"])
    assert {
        attrs["cn"][0].decode(): attrs["telephoneNumber"][0].decode() for _, attrs in contacts
    } == {contact.cn: contact.attrs["telephoneNumber"] for contact in CONTACTS}
    # A computer is objectClass user as well: only objectCategory=person leaves it out.
    users = samba_ad.search("(objectClass=user)", ["cn"], base=samba_ad.people_dn)
    assert samba_ad.computer_dn in {dn for dn, _ in users}
    persons = samba_ad.search(PERSON_USERS, ["cn"], base=samba_ad.people_dn)
    assert samba_ad.computer_dn not in {dn for dn, _ in persons}
    assert COMPUTER_NAME == "WS001"


def test_ldaps_verifies_the_server_with_ca_file(samba_ad: SambaAD) -> None:  # noqa: F811
    conn = samba_ad.bind(samba_ad.admin_upn, samba_ad.admin_password, uri=samba_ad.ldaps_uri)
    try:
        assert _can_read_directory(conn, samba_ad.base_dn)
    finally:
        conn.unbind_s()


def test_ldaps_fails_without_the_test_ca(samba_ad: SambaAD) -> None:  # noqa: F811
    # The system's CAs do not know the test CA: certificate verification must fail.
    conn = new_connection(samba_ad.ldaps_uri)
    conn.set_option(ldap.OPT_X_TLS_CACERTFILE, "/etc/ssl/certs/ca-certificates.crt")
    conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
    conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
    with pytest.raises(ldap.SERVER_DOWN):
        conn.simple_bind_s(samba_ad.admin_upn, samba_ad.admin_password)


def test_starttls_on_the_plain_port(samba_ad: SambaAD) -> None:  # noqa: F811
    conn = samba_ad.bind("alice@example.test", "Alice-Secret-1", starttls=True)
    try:
        assert conn.get_option(ldap.OPT_X_TLS_VERSION)  # a TLS session is up
        assert _can_read_directory(conn, samba_ad.base_dn)
    finally:
        conn.unbind_s()


@pytest.mark.parametrize("sam", ["alice", "bob", "juergen", "jsmith", "erin"])
def test_enabled_users_bind_with_their_password(samba_ad: SambaAD, sam: str) -> None:  # noqa: F811
    user = USERS_BY_SAM[sam]
    for who in (f"{sam}@example.test", samba_ad.user_dn(sam), f"EXAMPLE\\{sam}"):
        conn = samba_ad.bind(who, user.password)
        try:
            assert _can_read_directory(conn, samba_ad.base_dn)
        finally:
            conn.unbind_s()


def test_wrong_password_and_disabled_account_fail_to_bind(samba_ad: SambaAD) -> None:  # noqa: F811
    with pytest.raises(ldap.INVALID_CREDENTIALS) as wrong:
        samba_ad.bind("alice@example.test", "Alice-Secret-2")
    assert BAD_PASSWORD in wrong.value.args[0]["info"]

    with pytest.raises(ldap.INVALID_CREDENTIALS) as disabled:
        samba_ad.bind("carol@example.test", USERS_BY_SAM["carol"].password)
    assert ACCOUNT_DISABLED in disabled.value.args[0]["info"]

    with pytest.raises(ldap.INVALID_CREDENTIALS):
        samba_ad.bind("nobody@example.test", "Whatever-1")


def test_empty_password_bind(samba_ad: SambaAD) -> None:  # noqa: F811
    """A simple bind with a name and an empty password is, by RFC 4513, an
    "unauthenticated bind": Windows AD answers it with success, as anonymous, so a client
    that takes "bind succeeded" for "password correct" lets anybody in without a password.
    The product must therefore reject empty passwords itself.

    Samba 4.17 is stricter than Windows and refuses it (invalid credentials, data 52e), so
    this DC cannot demonstrate the hole; what it does show is that a successful anonymous
    bind (empty name and password) proves nothing: the connection may not read the
    directory.
    """
    with pytest.raises(ldap.INVALID_CREDENTIALS) as exc:
        samba_ad.bind("alice@example.test", "")
    assert BAD_PASSWORD in exc.value.args[0]["info"]

    anonymous = samba_ad.bind("", "")  # succeeds
    try:
        assert not _can_read_directory(anonymous, samba_ad.base_dn)
        [(_dn, root_dse)] = anonymous.search_s(
            "", ldap.SCOPE_BASE, attrlist=["defaultNamingContext"]
        )
        assert root_dse["defaultNamingContext"] == [samba_ad.base_dn.encode()]
    finally:
        anonymous.unbind_s()


def test_paged_search_returns_every_bulk_user(samba_ad: SambaAD) -> None:  # noqa: F811
    conn = samba_ad.bind(samba_ad.admin_upn, samba_ad.admin_password)
    try:
        control = SimplePagedResultsControl(True, size=250, cookie=b"")
        pages: list[int] = []
        sams: set[str] = set()
        while True:
            msgid = conn.search_ext(
                samba_ad.bulk_dn,
                ldap.SCOPE_ONELEVEL,
                PERSON_USERS,
                attrlist=["sAMAccountName"],
                serverctrls=[control],
            )
            _type, data, _msgid, controls = conn.result3(msgid)
            pages.append(len(data))
            sams |= {attrs["sAMAccountName"][0].decode() for _dn, attrs in data}
            [response] = [c for c in controls if c.controlType == control.controlType]
            if not response.cookie:
                break
            control.cookie = response.cookie
        assert pages == [250, 250, 250, 250, 100]
        assert len(sams) == BULK_USER_COUNT == 1100  # more than AD's MaxPageSize of 1000

        # Samba 4.17, unlike Windows AD, enforces no MaxPageSize (lDAPAdminLimits is read
        # but not applied): an unpaged search returns all 1,100 entries, where Windows
        # would stop at 1,000 with sizeLimitExceeded. Paging is still what a client must do.
        unpaged = conn.search_s(samba_ad.bulk_dn, ldap.SCOPE_ONELEVEL, PERSON_USERS, ["cn"])
        assert len(unpaged) == BULK_USER_COUNT
        # It ignores a client's sizeLimit as well (no sizeLimitExceeded): test limits
        # against slapd, whose test server has a size limit.
        limited = conn.search_ext_s(
            samba_ad.bulk_dn, ldap.SCOPE_ONELEVEL, PERSON_USERS, ["cn"], sizelimit=5
        )
        assert len(limited) == BULK_USER_COUNT
    finally:
        conn.unbind_s()


def test_helpers_add_modify_rename_and_delete(samba_ad: SambaAD) -> None:  # noqa: F811
    # A name no other test uses: the DC is shared by the whole session.
    dn = samba_ad.add_user(
        "helper.test",
        "Helga",
        "Helper",
        "Helga-Secret-1",
        telephoneNumber="+49 991 12345-199",
        mobile=["+49 170 1111111"],
    )
    try:
        assert dn == f"CN=Helga Helper,{samba_ad.people_dn}"
        samba_ad.modify(dn, {"telephoneNumber": "+49 991 12345-198", "mobile": None})
        [(_dn, attrs)] = samba_ad.search(
            "(sAMAccountName=helper.test)", ["telephoneNumber", "mobile"]
        )
        assert attrs == {"telephoneNumber": [b"+49 991 12345-198"]}

        dn = samba_ad.rename(dn, "CN=Helga Helper-Meier")
        assert dn == f"CN=Helga Helper-Meier,{samba_ad.people_dn}"
        dn = samba_ad.rename(dn, "CN=Helga Helper-Meier", new_superior=samba_ad.contacts_dn)
        assert dn == f"CN=Helga Helper-Meier,{samba_ad.contacts_dn}"
        # Renamed and moved, the account keeps its password (and its objectGUID).
        conn = samba_ad.bind("helper.test@example.test", "Helga-Secret-1")
        conn.unbind_s()
    finally:
        samba_ad.delete(dn)
    assert samba_ad.search("(sAMAccountName=helper.test)", ["cn"]) == []


def test_stop_ends_the_server(tmp_path: Path) -> None:
    reason = samba_unavailable_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    # Its own DC on another loopback address (the session's DC may hold 127.0.0.2).
    dc = provision_samba_ad(tmp_path / "dc")
    with dc:
        dc.start()
        assert dc.running
        assert dc.process is not None
        pid = dc.process.pid
        conn = dc.bind(dc.admin_upn, dc.admin_password, uri=dc.ldaps_uri)
        conn.unbind_s()
    assert not dc.running
    assert _port_closed(dc.host, 389)
    assert _port_closed(dc.host, 636)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # the whole process group is gone
    dc.stop()  # idempotent
