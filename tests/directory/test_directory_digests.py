"""Directory re-syncs against a real slapd, on SQLite and PostgreSQL: entries are digested
as received, and an entry that a record was made from unchanged is left alone without
being decoded or mapped; every other change behaves as before. What the store holds."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from sqlalchemy import Engine, select

from pbx_connector import profiles as profile_service
from pbx_connector.domain.phone import PhoneNormaliser
from pbx_connector.domain.targets import TARGETS, clean_record
from pbx_connector.sources.base import DigestsEntries
from pbx_connector.sources.registry import open_source
from pbx_connector.store import records as record_store
from pbx_connector.store.profiles import get_profile, insert_profile, save_profile
from pbx_connector.sync.runner import run_profile
from tests.helpers import by, records
from tests.servers.slapd_fixtures import ScratchOU

pytestmark = pytest.mark.slapd


def _person(ou: ScratchOU, uid: str, given: str, sn: str, phone: str, **attrs: list[str]) -> str:
    dn = f"uid={uid},{ou.dn}"
    ou.server.add(
        dn,
        {
            "objectClass": ["top", "person", "organizationalPerson", "inetOrgPerson"],
            "uid": [uid],
            "cn": [f"{given} {sn}"],
            "givenName": [given],
            "sn": [sn],
            "telephoneNumber": [phone],
            **attrs,
        },
    )
    return dn


def _profile(engine: Engine, ou: ScratchOU) -> None:
    server = ou.server
    profile, _ = profile_service.new_profile(
        "dir",
        "ldap-users",
        "mirror",
        {
            "uri": server.uri,
            "ca_file": str(server.ca_file),
            "bind_dn": server.reader_dn,
            "bind_password": server.reader_password,
            "base_dn": ou.dn,
        },
    )
    with engine.begin() as conn:
        insert_profile(conn, profile)


def _stored(engine: Engine) -> dict[str, dict[str, Any]]:
    table = record_store.table_for("users")
    query = select(
        table.c.username, table.c.id, table.c.content_hash, table.c.source_hash, table.c.updated_at
    ).where(table.c.origin_profile_id.is_not(None))
    with engine.connect() as conn:
        return {r.username: dict(r._mapping) for r in conn.execute(query)}


def _users(engine: Engine) -> dict[str, dict[str, Any]]:
    return by([u for u in records(engine, "users") if not u["builtin"]], "username")


@pytest.fixture
def directory(engine: Engine, slapd_scratch: ScratchOU) -> ScratchOU:
    ou = slapd_scratch
    _person(ou, "anna", "Anna", "Alt", "1001", mail=["anna@example.test"])
    _person(ou, "bert", "Bert", "Brandt", "1002")
    _person(ou, "cleo", "Cleo", "Cramer", "1003", title=["Chefin"])
    _profile(engine, ou)
    return ou


def test_directory_rows_carry_the_digest_of_their_entry(
    engine: Engine, directory: ScratchOU
) -> None:
    with engine.connect() as conn:
        profile = get_profile(conn, "dir")
    source = open_source(profile.source, profile.settings, profile.secrets, ["uid", "sn"])
    seen: list[bytes] = []
    taken: list[bytes] = []

    def known(digest: bytes) -> bool:
        seen.append(digest)
        return len(seen) in (2, 3)  # the second and third entries come without data

    def take(digest: bytes) -> bool:
        taken.append(digest)
        return len(taken) == 1  # the second is dealt with, the third is not

    assert isinstance(source, DigestsEntries)
    assert source.digest_entries(hashlib.blake2b(digest_size=16), known, take)
    rows = list(source.rows())
    assert len(set(seen)) == 3
    assert taken == seen[1:]
    assert all(r.digest is not None for r in rows)
    assert [(r.line, r.digest, r.known) for r in rows] == [
        (1, seen[0], False),
        (3, seen[2], True),
    ]
    assert rows[0].data["uid"] == "anna" and rows[1].data == {}
    assert [r.ref for r in rows] == [f"uid={u},{directory.dn}" for u in ("anna", "cleo")]


def test_an_unchanged_directory_is_left_alone_and_changes_still_arrive(
    engine: Engine, directory: ScratchOU
) -> None:
    ou = directory
    assert run_profile(engine, "dir")["counts"]["created"] == 3
    first = _stored(engine)
    assert all(r["source_hash"] for r in first.values())

    report = run_profile(engine, "dir")
    assert (report["counts"]["unchanged"], report["counts"]["updated"]) == (3, 0)
    assert _stored(engine) == first

    # A changed entry is mapped and written; the others stay as they are.
    ou.server.modify(f"uid=bert,{ou.dn}", {"mail": ["bert@example.test"]})
    report = run_profile(engine, "dir")
    assert (report["counts"]["unchanged"], report["counts"]["updated"]) == (2, 1)
    assert _users(engine)["bert"]["email"] == "bert@example.test"
    after = _stored(engine)
    assert after["bert"]["source_hash"] != first["bert"]["source_hash"]
    assert after["anna"] == first["anna"] and after["cleo"] == first["cleo"]

    # A hand edit is undone by the next run, as before.
    with engine.begin() as conn:
        clean = clean_record(
            TARGETS["users"], {"job": "Hausmeister"}, PhoneNormaliser("DE"), partial=True
        )
        record_store.update_record(conn, "users", first["cleo"]["id"], clean)
    report = run_profile(engine, "dir")
    assert (report["counts"]["unchanged"], report["counts"]["updated"]) == (2, 1)
    assert _users(engine)["cleo"]["job"] == "Chefin"
    assert _stored(engine)["cleo"]["source_hash"] == first["cleo"]["source_hash"]

    # An entry that left the directory is deleted by the mirror run.
    ou.server.delete(f"uid=anna,{ou.dn}")
    report = run_profile(engine, "dir")
    assert (report["counts"]["deleted"], report["counts"]["unchanged"]) == (1, 2)
    assert set(_users(engine)) == {"bert", "cleo"}


def test_a_changed_variable_or_a_forced_run_maps_every_entry_again(
    engine: Engine, directory: ScratchOU
) -> None:
    run_profile(engine, "dir")
    first = _stored(engine)

    report = run_profile(engine, "dir", force=True)
    assert report["counts"]["unchanged"] == 3
    assert _stored(engine) == first

    with engine.begin() as conn:
        profile = get_profile(conn, "dir")
        profile.variables["job"] = "{{ title | first_value | upper }}"
        save_profile(conn, profile)
    report = run_profile(engine, "dir")
    assert (report["counts"]["updated"], report["counts"]["unchanged"]) == (1, 2)
    assert _users(engine)["cleo"]["job"] == "CHEFIN"
    after = _stored(engine)
    assert all(after[u]["source_hash"] != first[u]["source_hash"] for u in first)
    assert run_profile(engine, "dir")["counts"]["unchanged"] == 3
