"""The throwaway OpenLDAP helper: a real slapd with TLS, AD-like size limits, the generated
trees, and the helpers the connector tests rely on."""

from __future__ import annotations

import socket
from pathlib import Path

import ldap
import ldap.filter
import pytest
from ldap.ldapobject import LDAPObject

from tests.servers import slapd_fixtures
from tests.servers.slapd import (
    ALICE,
    BOB,
    DEFAULT_SUFFIX,
    HANS,
    INJECTION_USERS,
    JUERGEN,
    KNOWN_USERS,
    NOPHONE,
    SIZE_LIMIT,
    UCS_ALICE,
    UCS_BOB,
    UCS_CARL,
    UCS_COMPUTER_UID,
    UCS_KNOWN_USERS,
    UCS_SUFFIX,
    SlapdServer,
    directory_tree,
    ldap_connect,
    start_slapd,
)
from tests.servers.slapd_fixtures import (
    SESSION_CONTACTS,
    SESSION_USERS,
    UCS_SESSION_USERS,
    ScratchOU,
    SlapdFactory,
    require_slapd,
)

pytestmark = pytest.mark.slapd

# Module attributes, not imports: pytest finds them by name, and ruff does not flag test
# parameters that shadow them (F811), as it would for imported names.
slapd_server = slapd_fixtures.slapd_server
slapd_scratch = slapd_fixtures.slapd_scratch
slapd_factory = slapd_fixtures.slapd_factory
ucs_slapd_server = slapd_fixtures.ucs_slapd_server

PEOPLE_FILTER = "(objectClass=inetOrgPerson)"


def _people(server: SlapdServer) -> str:
    return f"ou=people,{server.suffix}"


def _reader(server: SlapdServer, *, ldaps: bool = False, start_tls: bool = False) -> LDAPObject:
    return server.connect(
        server.reader_dn, server.reader_password, ldaps=ldaps, start_tls=start_tls
    )


def _port_closed(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2.0)
        return sock.connect_ex(("127.0.0.1", port)) != 0


# --------------------------------------------------------------------------- binds


def test_admin_simple_bind(slapd_server: SlapdServer) -> None:
    assert slapd_server.uri == f"ldap://127.0.0.1:{slapd_server.port}"
    assert slapd_server.ldaps_uri == f"ldaps://127.0.0.1:{slapd_server.ldaps_port}"
    assert slapd_server.admin_dn == f"cn=admin,{DEFAULT_SUFFIX}"
    conn = slapd_server.connect(slapd_server.admin_dn, slapd_server.admin_password)
    try:
        assert conn.whoami_s() == f"dn:{slapd_server.admin_dn}"
    finally:
        conn.unbind_s()


def test_admin_wrong_password_fails(slapd_server: SlapdServer) -> None:
    with pytest.raises(ldap.INVALID_CREDENTIALS):
        slapd_server.connect(slapd_server.admin_dn, "not-the-password")


def test_anonymous_may_bind_but_not_read(slapd_server: SlapdServer) -> None:
    conn = slapd_server.connect()
    try:
        assert conn.whoami_s() == ""
        # The root DSE stays readable: clients discover naming contexts and controls there.
        root = conn.search_s("", ldap.SCOPE_BASE, "(objectClass=*)", ["namingContexts"])
        assert root[0][1]["namingContexts"] == [DEFAULT_SUFFIX.encode()]
        # Below the suffix slapd does not even disclose that the base exists.
        with pytest.raises(ldap.NO_SUCH_OBJECT):
            conn.search_s(slapd_server.suffix, ldap.SCOPE_SUBTREE, "(uid=alice)")
    finally:
        conn.unbind_s()


def test_user_bind_with_password(slapd_server: SlapdServer) -> None:
    assert ALICE.password == "alice-secret"
    conn = slapd_server.connect(ALICE.dn(), ALICE.password)
    try:
        assert conn.whoami_s() == f"dn:{ALICE.dn()}"
        # Bound users read the directory, but never anybody's password hash.
        entry = conn.search_s(BOB.dn(), ldap.SCOPE_BASE, attrlist=["uid", "userPassword"])
        assert entry == [(BOB.dn(), {"uid": [b"bob"]})]
    finally:
        conn.unbind_s()


def test_user_bind_wrong_password_fails(slapd_server: SlapdServer) -> None:
    with pytest.raises(ldap.INVALID_CREDENTIALS):
        slapd_server.connect(ALICE.dn(), "bob-secret")
    # An entry without userPassword cannot bind at all.
    with pytest.raises(ldap.INVALID_CREDENTIALS):
        slapd_server.connect(NOPHONE.dn(), "anything")


def test_empty_password_is_refused_not_anonymous(slapd_server: SlapdServer) -> None:
    # A DN with an empty password is an "unauthenticated bind". slapd refuses it by
    # default; AD accepts it as anonymous, so auth code must reject empty passwords itself.
    with pytest.raises(ldap.UNWILLING_TO_PERFORM):
        slapd_server.connect(ALICE.dn(), "")


def test_every_known_user_with_a_password_can_bind(slapd_server: SlapdServer) -> None:
    # Covers escaped and multi-valued RDNs, non-ASCII DNs and the UTF-8 password.
    assert JUERGEN.password == "jürgen-Geheimnis"
    for user in KNOWN_USERS:
        if user.password is None:
            continue
        conn = slapd_server.connect(user.dn(), user.password)
        try:
            assert ldap.dn.str2dn(conn.whoami_s()[3:]) == ldap.dn.str2dn(user.dn())
        finally:
            conn.unbind_s()


# --------------------------------------------------------------------------- TLS


def test_starttls_verifies_with_ca_file(slapd_server: SlapdServer) -> None:
    conn = _reader(slapd_server, start_tls=True)
    try:
        assert conn.whoami_s() == f"dn:{slapd_server.reader_dn}"
    finally:
        conn.unbind_s()


def test_ldaps_verifies_with_ca_file(slapd_server: SlapdServer) -> None:
    conn = _reader(slapd_server, ldaps=True)
    try:
        assert conn.whoami_s() == f"dn:{slapd_server.reader_dn}"
    finally:
        conn.unbind_s()


def test_ldaps_localhost_name_verifies(slapd_server: SlapdServer) -> None:
    # libldap checks "localhost" against the machine's host name; the certificate has both.
    conn = ldap_connect(
        f"ldaps://localhost:{slapd_server.ldaps_port}",
        ca_file=slapd_server.ca_file,
        bind_dn=slapd_server.reader_dn,
        password=slapd_server.reader_password,
    )
    conn.unbind_s()


def test_ldaps_with_wrong_ca_fails(slapd_server: SlapdServer) -> None:
    assert slapd_server.wrong_ca_file.read_bytes() != slapd_server.ca_file.read_bytes()
    # libldap reports a failed handshake on ldaps:// as "can't contact" (SERVER_DOWN) ...
    with pytest.raises(ldap.SERVER_DOWN):
        slapd_server.connect(
            slapd_server.reader_dn,
            slapd_server.reader_password,
            ldaps=True,
            ca_file=slapd_server.wrong_ca_file,
        )


def test_starttls_with_wrong_ca_fails(slapd_server: SlapdServer) -> None:
    # ... and on StartTLS as CONNECT_ERROR.
    with pytest.raises(ldap.CONNECT_ERROR):
        slapd_server.connect(start_tls=True, ca_file=slapd_server.wrong_ca_file)


# --------------------------------------------------------------------------- limits


def test_unpaged_search_hits_size_limit(slapd_server: SlapdServer) -> None:
    conn = _reader(slapd_server)
    try:
        with pytest.raises(ldap.SIZELIMIT_EXCEEDED):
            conn.search_s(_people(slapd_server), ldap.SCOPE_SUBTREE, PEOPLE_FILTER, ["1.1"])
    finally:
        conn.unbind_s()


@pytest.mark.parametrize("page_size", [SIZE_LIMIT, 137])
def test_paged_search_returns_every_user(slapd_server: SlapdServer, page_size: int) -> None:
    conn = _reader(slapd_server)
    try:
        rows = slapd_server.paged_search(
            _people(slapd_server), PEOPLE_FILTER, ["uid"], conn=conn, page_size=page_size
        )
    finally:
        conn.unbind_s()
    assert len(rows) == SESSION_USERS
    assert len({dn for dn, _ in rows}) == SESSION_USERS


def test_page_size_above_limit_is_refused(slapd_server: SlapdServer) -> None:
    # Unlike AD, which silently shortens pages to MaxPageSize, slapd refuses the search.
    with pytest.raises(ldap.ADMINLIMIT_EXCEEDED):
        slapd_server.paged_search(
            _people(slapd_server), PEOPLE_FILTER, ["1.1"], page_size=SIZE_LIMIT + 1
        )


def test_root_dn_is_not_size_limited(slapd_server: SlapdServer) -> None:
    assert slapd_server.count(_people(slapd_server), PEOPLE_FILTER) == SESSION_USERS


# --------------------------------------------------------------------------- entryUUID


def test_entry_uuid_only_on_request_and_stable_across_rename(slapd_scratch: ScratchOU) -> None:
    server = slapd_scratch.server
    dn = f"uid=renamed,{slapd_scratch.dn}"
    server.add(
        dn,
        {
            "objectClass": ["inetOrgPerson"],
            "uid": ["renamed"],
            "cn": ["Before Rename"],
            "sn": ["Rename"],
        },
    )
    conn = _reader(server)
    try:
        plain = conn.search_s(dn, ldap.SCOPE_BASE)
        assert "entryUUID" not in plain[0][1]  # operational: only when asked for
        requested = conn.search_s(dn, ldap.SCOPE_BASE, attrlist=["*", "entryUUID"])
        uuid = requested[0][1]["entryUUID"][0].decode()
        assert len(uuid) == 36

        sub = f"ou=moved,{slapd_scratch.dn}"
        server.add(sub, {"objectClass": ["organizationalUnit"], "ou": ["moved"]})
        new_dn = server.rename(dn, "uid=moved-and-renamed", new_superior=sub)
        assert new_dn == f"uid=moved-and-renamed,{sub}"
        with pytest.raises(ldap.NO_SUCH_OBJECT):
            conn.search_s(dn, ldap.SCOPE_BASE)
        after = conn.search_s(new_dn, ldap.SCOPE_BASE, attrlist=["uid", "entryUUID"])
        assert after[0][1]["entryUUID"] == [uuid.encode()]
        assert after[0][1]["uid"] == [b"moved-and-renamed"]  # old RDN value removed
    finally:
        conn.unbind_s()


def test_generated_entries_have_an_entry_uuid(slapd_server: SlapdServer) -> None:
    assert len(slapd_server.entry_uuid(ALICE.dn())) == 36
    assert slapd_server.entry_uuid(ALICE.dn()) != slapd_server.entry_uuid(BOB.dn())


# --------------------------------------------------------------------------- helpers


def test_add_modify_delete_helpers(slapd_scratch: ScratchOU) -> None:
    server = slapd_scratch.server
    dn = f"cn=Zoë Groß\\, Jr.,{slapd_scratch.dn}"
    server.add(
        dn,
        {
            "objectClass": ["inetOrgPerson"],
            "cn": ["Zoë Groß, Jr."],
            "sn": [b"Gro\xc3\x9f"],  # bytes pass through unchanged
            "telephoneNumber": ["4711"],
        },
    )
    assert server.count(slapd_scratch.dn, "(cn=Zoë Groß, Jr.)") == 1

    server.modify(dn, {"telephoneNumber": ["4712", "+49 991 4712"], "mail": ["zoe@example.test"]})
    entry = server.get(dn, ["telephoneNumber", "mail"])
    assert entry == {"telephoneNumber": [b"4712", b"+49 991 4712"], "mail": [b"zoe@example.test"]}

    server.modify(dn, {"mail": []})  # an empty list removes the attribute
    assert server.get(dn, ["mail"]) == {}

    server.delete(dn)
    assert server.get(dn) is None
    assert server.count(slapd_scratch.dn) == 1  # only the scratch OU itself


def test_scratch_subtree_is_removed(slapd_server: SlapdServer, slapd_scratch: ScratchOU) -> None:
    slapd_server.add(
        f"ou=nested,{slapd_scratch.dn}", {"objectClass": ["organizationalUnit"], "ou": ["nested"]}
    )
    slapd_server.delete_subtree(slapd_scratch.dn)
    assert slapd_server.get(slapd_scratch.dn) is None
    slapd_server.delete_subtree(slapd_scratch.dn)  # absent: no error (teardown does it again)


# --------------------------------------------------------------------------- data


def test_generated_people(slapd_server: SlapdServer) -> None:
    rows = slapd_server.paged_search(
        _people(slapd_server), PEOPLE_FILTER, ["uid", "cn", "telephoneNumber"]
    )
    by_uid = {entry["uid"][0].decode(): entry for _, entry in rows}
    assert len(by_uid) == SESSION_USERS
    phones = [entry.get("telephoneNumber", []) for entry in by_uid.values()]
    extensions = [numbers[0] for numbers in phones if numbers]
    assert len(extensions) == SESSION_USERS - 1  # everybody but NOPHONE
    assert len(set(extensions)) == len(extensions)
    assert "telephoneNumber" not in by_uid[NOPHONE.uid]
    assert sum(len(numbers) > 1 for numbers in phones) > 400  # multi-valued
    assert by_uid["jgross"]["cn"] == ["Jürgen Groß".encode()]
    assert by_uid[BOB.uid]["telephoneNumber"] == [p.encode() for p in BOB.phones]
    assert HANS.dn() == f"cn=Müller\\, Hans+uid=hmueller,ou=people,{DEFAULT_SUFFIX}"
    assert slapd_server.get(HANS.dn(), ["cn"]) == {"cn": ["Müller, Hans".encode()]}


def test_injection_uids_need_filter_escaping(slapd_server: SlapdServer) -> None:
    star = INJECTION_USERS[0]
    assert star.uid == "st*r"
    for user in INJECTION_USERS:
        escaped = ldap.filter.escape_filter_chars(user.uid)
        assert slapd_server.count(_people(slapd_server), f"(uid={escaped})") == 1, user.uid
    # Unescaped, a login name "st*" is a substring filter that finds "st*r".
    assert slapd_server.count(_people(slapd_server), "(uid=st*)") == 1
    assert slapd_server.count(_people(slapd_server), "(uid=st\\2a)") == 0


def test_generated_contacts(slapd_server: SlapdServer) -> None:
    base = f"ou=contacts,{slapd_server.suffix}"
    assert slapd_server.count(base, PEOPLE_FILTER) == SESSION_CONTACTS
    assert slapd_server.count(base, "(uid=*)") == 0
    assert slapd_server.count(base, "(&(o=*)(telephoneNumber=*))") == SESSION_CONTACTS
    assert slapd_server.count(base, "(cn=*,*)") > 0  # names filed as "Surname, Given"


def test_ucs_tree(ucs_slapd_server: SlapdServer) -> None:
    server = ucs_slapd_server
    users = f"cn=users,{UCS_SUFFIX}"
    assert server.suffix == UCS_SUFFIX
    assert server.count(users, "(univentionObjectType=users/user)") == UCS_SESSION_USERS
    # A naive uid filter over the whole domain also finds the computer account.
    assert server.count(UCS_SUFFIX, "(uid=*)") == UCS_SESSION_USERS + 1
    assert server.count(UCS_SUFFIX, "(&(uid=*)(!(uid=*$)))") == UCS_SESSION_USERS
    assert server.count(UCS_SUFFIX, f"(uid={UCS_COMPUTER_UID.replace('$', '*')})") == 1

    alice = server.get(UCS_ALICE.dn(UCS_SUFFIX), ["mailPrimaryAddress", "univentionPhoneAllowed"])
    assert alice == {"mailPrimaryAddress": [b"alice@ucs.test"], "univentionPhoneAllowed": [b"1"]}
    assert server.get(UCS_BOB.dn(UCS_SUFFIX), ["univentionPhoneAllowed"]) == {
        "univentionPhoneAllowed": [b"0"]
    }
    assert server.get(UCS_CARL.dn(UCS_SUFFIX), ["univentionPhoneAllowed"]) == {}
    allowed = server.count(users, "(univentionPhoneAllowed=1)")
    assert 0 < allowed < UCS_SESSION_USERS

    for user in UCS_KNOWN_USERS:
        assert user.password is not None
        server.connect(user.dn(UCS_SUFFIX), user.password).unbind_s()


# --------------------------------------------------------------------------- lifecycle


def test_private_server_start_and_stop(slapd_factory: SlapdFactory) -> None:
    server = slapd_factory(
        suffix="o=Tiny Org", entries=lambda suffix: directory_tree(suffix, users=20, contacts=3)
    )
    assert server.count("o=Tiny Org", PEOPLE_FILTER) == 23
    assert server.entry_count == 1 + 1 + 1 + 20 + 1 + 3  # suffix, reader, 2 OUs, entries
    server.stop()
    assert server.process is not None and server.process.returncode is not None
    assert _port_closed(server.port)
    assert _port_closed(server.ldaps_port)
    server.stop()  # idempotent


def test_bad_entry_fails_with_slapadd_output(tmp_path: Path) -> None:
    require_slapd()
    bogus = [(f"uid=x,{DEFAULT_SUFFIX}", {"objectClass": ["inetOrgPerson"], "bogusAttr": ["1"]})]
    with pytest.raises(RuntimeError, match=r"slapadd .* failed[\s\S]*bogusAttr"):
        start_slapd(tmp_path, entries=bogus)
