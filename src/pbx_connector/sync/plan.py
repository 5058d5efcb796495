"""Building a plan: what a run would create, update, delete, and what it must refuse.

The plan is data. A dry run prints it; an apply executes it. It is built in one pass over
the source with memory bounded by the profile's key index: full record values for writes
go to a spool file (see `Spool`), and only a sample of the changes is kept for display.
"""

from __future__ import annotations

import dataclasses
import hashlib
import marshal
import math
import os
import pickle
import socket
import sys
import tempfile
from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Literal, NamedTuple

from sqlalchemy import Connection

from pbx_connector.domain.identity import Identity, describe_identity, identities
from pbx_connector.domain.passwords import hash_secret
from pbx_connector.domain.phone import PhoneNormaliser
from pbx_connector.domain.targets import (
    TARGETS,
    TargetSpec,
    clean_record,
    parse_extension_digits,
)
from pbx_connector.errors import ConfigError, RecordError, RowError
from pbx_connector.mapping import RowMapper
from pbx_connector.sources.base import DigestsEntries, NamesCells, RowValue, Source, SourceRow
from pbx_connector.store import records as store
from pbx_connector.store.db import private_dir
from pbx_connector.store.runs import pid_alive
from pbx_connector.sync.keyindex import KeyIndex, digest_fingerprint, source_fingerprint

Action = Literal["create", "update", "delete", "conflict", "invalid"]


#: How many changes, errors and warnings a plan keeps for display; counts are always exact.
SHOWN = 1000
#: Roles that only an administrator gives, by hand: an import may neither grant nor
#: remove them (they open the API and the admin pages).
RESERVED_ROLES = frozenset({"admin", "viewer"})
#: Identities that must stay unique among the records this profile owns, too.
_TRACK_OWN = ("users", "speeddials")


@dataclass
class Change:
    action: Action
    label: str
    key: str | None = None
    line: int | None = None
    record_id: int | None = None
    field: str | None = None
    message: str = ""
    diff: list[tuple[str, Any, Any]] = dataclasses.field(default_factory=list)
    ref: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "record": self.label, "key": self.key}
        if self.line is not None:
            out["line"] = self.line
        if self.ref is not None:
            out["ref"] = self.ref
        if self.record_id is not None:
            out["id"] = self.record_id
        if self.field:
            out["field"] = self.field
        if self.message:
            out["message"] = self.message
        if self.diff:
            out["diff"] = [{"field": f, "before": b, "after": a} for f, b, a in self.diff]
        return out


class Hashed(str):
    """A secret value that is already an argon2 hash: written as it is."""

    __slots__ = ()


#: What a dry run spools in place of a secret: it is never written.
NOT_SPOOLED = Hashed("(not spooled)")


class Write(NamedTuple):
    """One spooled create or update: column values ready for the store (secrets as
    `Hashed`, never plain: a spool left behind must not hold a password). A named
    tuple, because a million of them are pickled and unpickled, and tuples do that in
    half the time of dataclasses."""

    action: Literal["create", "update"]
    position: int
    key: str
    line: int
    label: str
    record_id: int | None
    values: dict[str, Any]
    e164: dict[str, str | None]
    content_hash: str
    #: The digest of the source row (hex, see `SourceDigests`); None when there is none.
    source_hash: str | None = None


SPOOL_DIR = "spool"


def _spool_prefix() -> str:
    # Host and process in the name: the next run removes spools of processes that ended.
    return f"plan-{socket.gethostname()}-{os.getpid()}-"


def remove_stale_spools() -> int:
    """Remove the spools of processes of this host that are gone (a kill -9 leaves its
    spool behind). Returns how many were removed."""
    removed = 0
    host = socket.gethostname()
    for path in private_dir(SPOOL_DIR).glob("plan-*.spool"):
        rest = path.name[len("plan-") :]
        spool_host = rest.rpartition("-")[0]  # after the last "-": the random part
        spool_host, _, pid_text = spool_host.rpartition("-")
        if spool_host != host or not pid_text.isdigit() or pid_alive(int(pid_text)):
            continue
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


class Spool:
    """An append-only file of pickled writes, so that a million-row import does not
    hold a million records in memory. Created owner-only in the data directory's private
    `spool/` directory (not $TMPDIR, which other users share); removed by `close`, or by
    the next run when its process was killed.

    Writes are pickled in chunks of `CHUNK`: one pickle call per record costs more than
    the record's validation, and a chunk is still small."""

    CHUNK = 512

    def __init__(self) -> None:
        fd, self.path = tempfile.mkstemp(
            prefix=_spool_prefix(), suffix=".spool", dir=private_dir(SPOOL_DIR)
        )
        self._fh: IO[bytes] = os.fdopen(fd, "w+b")
        self._pending: list[Write] = []
        self._chunks = 0
        self.count = 0

    def append(self, write: Write) -> None:
        self._pending.append(write)
        self.count += 1
        if len(self._pending) >= self.CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            pickle.dump(self._pending, self._fh, protocol=pickle.HIGHEST_PROTOCOL)
            self._chunks += 1
            self._pending = []

    def __iter__(self) -> Iterator[Write]:
        self._flush()
        self._fh.flush()
        with open(self.path, "rb") as fh:
            for _ in range(self._chunks):
                yield from pickle.load(fh)

    def close(self) -> None:
        self._fh.close()
        if os.path.exists(self.path):
            os.unlink(self.path)


@dataclass
class Plan:
    target: str
    mode: str
    key_fields: tuple[str, ...]
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("created", "updated", "deleted", "unchanged", "invalid", "conflicts", "skipped"), 0
        )
    )
    rows_read: int = 0
    existing: int = 0
    changes: list[Change] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    spool: Spool = field(default_factory=Spool)
    dropped: set[int] = field(default_factory=set)
    deletes: list[int] = field(default_factory=list)
    managed: tuple[str, ...] = ()
    abort_reason: str | None = None
    #: The row being planned; errors and warnings carry its `ref` (a DN), so that a
    #: directory row is named by its entry rather than by its ordinal alone.
    current_row: SourceRow | None = None
    #: Record field -> the one source field its variable reads (or a key field that is a
    #: source field): an error about the record field names that field's cell, for a row
    #: that names cells (`NamesCells`, a sheet's row).
    columns: Mapping[str, str] = field(default_factory=dict)
    #: Records whose values stay as they are but whose stored source row digest is not
    #: the one of this run's row (none yet, or a row that changed in a way that does not
    #: change the record): ids, and their digests 16 bytes each. Apply stores them.
    source_ids: array[int] = field(default_factory=lambda: array("q"))
    source_digests: bytearray = field(default_factory=bytearray)

    def keep_source(self, record_id: int, digest: bytes) -> None:
        self.source_ids.append(record_id)
        self.source_digests += digest

    def kept_sources(self) -> Iterator[tuple[int, str]]:
        """(record id, source row digest in hex) of each `keep_source`."""
        digests = self.source_digests
        for n, record_id in enumerate(self.source_ids):
            yield record_id, digests[16 * n : 16 * n + 16].hex()

    @property
    def pending(self) -> int:
        return self.counts["created"] + self.counts["updated"] + self.counts["deleted"]

    def note(self, change: Change) -> None:
        if len(self.changes) < SHOWN:
            self.changes.append(change)

    def _ref(self, field: str | None) -> str | None:
        """Where the current row's `field` is: its cell (`People!B7`) when the row names
        cells and the field is read from one; else the row's `ref`."""
        row = self.current_row
        if row is None:
            return None
        if field is not None and isinstance(row, NamesCells):
            column = self.columns.get(field)
            cell = row.cell(column) if column is not None else None
            if cell is not None:
                return cell
        return row.ref

    def error(
        self, kind: str, line: int | None, field: str | None, message: str, key: str | None = None
    ) -> None:
        self.counts["conflicts" if kind == "conflict" else "invalid"] += 1
        if len(self.errors) < SHOWN:
            entry: dict[str, Any] = {"kind": kind, "line": line, "field": field, "message": message}
            if key is not None:
                entry["key"] = key
            ref = self._ref(field)
            if ref is not None:
                entry["ref"] = ref
            self.errors.append(entry)

    def warn(self, line: int | None, field: str | None, message: str) -> None:
        if len(self.warnings) < SHOWN:
            entry: dict[str, Any] = {"line": line, "field": field, "message": message}
            ref = self._ref(field)
            if ref is not None:
                entry["ref"] = ref
            self.warnings.append(entry)

    def close(self) -> None:
        self.spool.close()


def parse_key(setting: str, spec: TargetSpec) -> tuple[str, ...]:
    names = tuple(n.strip() for n in (setting or "").split(",") if n.strip())
    return names or spec.default_key


def delete_limit(setting: str, existing: int) -> int:
    """`max_delete`: a number, or a percentage of the profile's records (at least 5)."""
    text = (setting or "10%").strip()
    bad = ConfigError(
        f"max_delete {text!r} is not a whole number ≥ 0 or a percentage from 0% to 100%",
        field="max_delete",
    )
    if text.endswith("%"):
        try:
            percent = float(text[:-1])
        except ValueError:
            raise bad from None
        if not 0 <= percent <= 100:  # also false for nan
            raise bad
        return max(5, math.ceil(percent / 100 * existing))
    if not text.isdigit() or len(text) > 18:
        raise bad
    return int(text)


class Hasher:
    """Keyed content hash over a record's managed values and the settings that shape them,
    so that an unchanged row needs no validation, no normalisation and no write."""

    def __init__(self, key: bytes, fingerprint: str, names: tuple[str, ...]) -> None:
        self._base = hashlib.blake2b(key=key, digest_size=16)
        self._base.update(fingerprint.encode())
        self._base.update("\x1e".join(names).encode())

    def digest(self, values: Mapping[str, str], names: tuple[str, ...]) -> bytes:
        h = self._base.copy()
        h.update("\x1f".join([values[n] for n in names]).encode("utf-8", "surrogatepass"))
        return h.digest()

    def __call__(self, values: Mapping[str, str], names: tuple[str, ...]) -> str:
        """The content hash as stored: the digest in hex."""
        return self.digest(values, names).hex()


#: Bump when a source row digest stops meaning what it meant (what it covers, or how a
#: row is mapped, changes in a way the fingerprints do not show): every row of every
#: profile is then mapped again once.
SOURCE_DIGEST_VERSION = "1"


class SourceDigests:
    """Keyed digests of source rows, so that a re-sync that meets a row it has seen before
    leaves the record made from it alone without mapping, validating or hashing it.

    A record keeps the digest of the row it was last written (or found unchanged) from;
    the key covers the instance's hash key and `fingerprint`: everything besides the row
    that decides what the row becomes (the profile's source, target, settings, variables
    and pre-filter, the phone rules, the content hash's own fingerprint), this code's
    `SOURCE_DIGEST_VERSION` and the Python version (rows are serialised by `marshal`).
    A change to any of them makes every digest new, so every row is mapped again.

    Two kinds of digest, never equal to each other: `row`, over a row as any source gives
    it, and `entries`, the base a source may copy to digest what it received before
    turning it into a row (see `sources.ldap.LdapSource.digest_entries`)."""

    def __init__(self, key: bytes, fingerprint: str) -> None:
        base = hashlib.blake2b(key=key, digest_size=16)
        version = f"{SOURCE_DIGEST_VERSION}|{sys.version_info[0]}.{sys.version_info[1]}|"
        base.update((version + fingerprint).encode("utf-8", "surrogatepass"))
        self.entries = base.copy()
        self.entries.update(b"\x00entry")
        self._rows = base.copy()
        self._rows.update(b"\x00row")

    def row(self, data: dict[str, RowValue]) -> bytes | None:
        """The digest of a row's fields (names, values and their order); None for a row
        holding something `marshal` does not write."""
        try:
            payload = marshal.dumps(data, 2)  # version 2: no references, so stable
        except ValueError:
            return None
        h = self._rows.copy()
        h.update(payload)
        return h.digest()


def _key_of(
    key_fields: tuple[str, ...],
    lowered: frozenset[str],
    values: Mapping[str, str],
    row: Mapping[str, RowValue],
) -> str:
    parts: list[str] = []
    for name in key_fields:
        raw = values[name] if name in values else row.get(name, "")
        text = (", ".join(raw) if isinstance(raw, list) else str(raw)).strip()
        parts.append(text.lower() if name in lowered else text)
    return "\x1f".join(parts) if any(parts) else ""


KeyOf = Callable[[Mapping[str, str], Mapping[str, RowValue]], str]


def key_function(
    key_fields: tuple[str, ...], lowered: frozenset[str], variables: frozenset[str]
) -> KeyOf:
    """`_key_of` for these fields, as a function of (values, row). The usual key, one
    variable, is its value stripped (and lowered for usernames) without the general
    loop: a variable's value is always a str, and one part needs no joining."""
    if len(key_fields) == 1 and key_fields[0] in variables:
        name = key_fields[0]
        if name in lowered:
            return lambda values, row: values[name].strip().lower()
        return lambda values, row: values[name].strip()
    return lambda values, row: _key_of(key_fields, lowered, values, row)


def show_key(key: str) -> str:
    return key.replace("\x1f", " | ")


@dataclass
class PlanInput:
    profile_id: int
    target: str
    mode: str
    settings: Mapping[str, str]
    mapper: RowMapper
    normaliser: PhoneNormaliser
    hash_key: bytes
    fingerprint: str
    #: Secrets (passwords, PINs) in the spool: "hash" them (a run that writes), or
    #: "drop" them (a dry run, which writes nothing).
    secrets: Literal["hash", "drop"] = "hash"
    #: What besides the row decides what it maps to (see `SourceDigests`); None: keep no
    #: source row digests (each row is mapped, and a record written gets none).
    source_fingerprint: str | None = None
    #: Leave a record alone when its source row's digest is the stored one. False in a
    #: forced run: every row is mapped (and its digest stored all the same).
    match_digests: bool = True


def build_plan(
    conn: Connection, source: Source, pin: PlanInput, progress: Callable[[int], None] | None = None
) -> Plan:
    spec = TARGETS[pin.target]
    key_fields = parse_key(pin.settings.get("key", ""), spec)
    managed = tuple(n for n in spec.field_names if n in pin.mapper.variables)
    plan = Plan(pin.target, pin.mode, key_fields, managed=managed)
    plan.columns = _columns(pin.mapper, key_fields)
    try:
        _fill(conn, source, pin, spec, plan, progress)
    except BaseException:
        plan.close()
        raise
    return plan


def _fill(
    conn: Connection,
    source: Source,
    pin: PlanInput,
    spec: TargetSpec,
    plan: Plan,
    progress: Callable[[int], None] | None,
) -> None:
    key_fields, managed = plan.key_fields, plan.managed
    lowered = frozenset(
        n
        for n in key_fields
        if n in spec.field_names and spec.spec(n).kind in ("username", "owner")
    )
    index = KeyIndex()
    index.load(store.iter_own_index(conn, pin.target, pin.profile_id))
    plan.existing = index.existing
    foreign = store.foreign_identities(conn, pin.target, pin.profile_id)
    owners = store.usernames(conn) if pin.target == "phonebook" else set()
    hasher = Hasher(pin.hash_key, pin.fingerprint, managed)
    extension_digits = parse_extension_digits(pin.settings.get("extension_digits", ""))
    secret_names = tuple(n for n in spec.secret_fields if n in managed)
    manages_roles = pin.target == "users" and "roles" in managed
    kept_roles = store.reserved_roles(conn, pin.profile_id, RESERVED_ROLES) if manages_roles else {}
    mapper = pin.mapper
    accepts = mapper.accepts if mapper.prefilter is not None else None
    key_of = key_function(key_fields, lowered, frozenset(mapper.variables))
    digests = (
        SourceDigests(pin.hash_key, pin.source_fingerprint)
        if pin.source_fingerprint is not None and mapper.pure
        else None
    )
    match = digests is not None and pin.match_digests
    # A source that digests what it receives, before making rows of it, is asked to: it
    # then need not make a row of an entry that a record was made from unchanged.
    entry_digests = digests is not None and _digest_entries(
        source, digests, index, plan, progress if match else None, match
    )
    # Rows that failed before their key was known: their records cannot be told apart
    # from records that left the source, so a mirror run then deletes nothing.
    unkeyed = 0
    claims: list[tuple[Write, list[Identity]]] = []
    updates_for_diff: list[tuple[Change, Write]] = []

    for row in source.rows():
        plan.rows_read += 1
        if progress is not None and plan.rows_read % 1000 == 0:
            progress(plan.rows_read)
        line = row.line
        plan.current_row = row
        if row.error is not None:
            plan.error("invalid", line, None, row.error)
            unkeyed += 1
            continue
        source_digest: bytes | None = None
        if digests is not None:
            source_digest = row.digest if entry_digests else digests.row(row.data)
            if match and source_digest is not None:
                if index.claim(source_digest):
                    plan.counts["unchanged"] += 1
                    continue
                if row.known:
                    # Recognised when its page came, but an earlier row has since taken
                    # the record's key: the row is that record's, so it is a duplicate.
                    key = store.origin_key(conn, pin.target, index.record_of(source_digest))
                    _duplicate(plan, line, key_fields, key)
                    continue
        try:
            if accepts is not None and not accepts(row.data):
                plan.counts["skipped"] += 1
                continue
            values = mapper.apply(row.data)
        except RowError as exc:
            plan.error("invalid", line, exc.field, exc.message)
            unkeyed += 1
            continue
        key = key_of(values, row.data)
        if not key:
            plan.error(
                "invalid", line, key_fields[0], f"the key ({', '.join(key_fields)}) is empty"
            )
            unkeyed += 1
            continue
        duplicate, rid, print_, stored_source = index.see_key(key)
        if duplicate:
            _duplicate(plan, line, key_fields, key)
            continue
        digest = hasher.digest(values, managed)
        # rid: the id of the record this profile made for the key before (0: none yet).
        if rid and print_ == digest_fingerprint(digest):
            plan.counts["unchanged"] += 1
            if source_digest is not None and stored_source != source_fingerprint(source_digest):
                plan.keep_source(rid, source_digest)
            continue
        content_hash = digest.hex()
        try:
            clean = clean_record(
                spec,
                values,
                pin.normaliser,
                partial=bool(rid),
                extension_digits=extension_digits,
            )
        except RecordError as exc:
            plan.error("invalid", line, exc.field, exc.message, key=show_key(key))
            continue
        label = spec.describe(clean.values) or show_key(key)
        owner = clean.values.get("owner")
        if owner and owner not in owners:
            plan.error(
                "invalid",
                line,
                "owner",
                f"owner {owner!r} is not a user, so there is no private phonebook "
                "to put the entry in",
                key=show_key(key),
            )
            continue
        idents = identities(pin.target, clean.values)
        clash = next((i for i in idents if i in foreign), None)
        if clash is not None:
            plan.error(
                "conflict",
                line,
                clash[0],
                f"{describe_identity(clash)} belongs to {foreign[clash]}",
                key=show_key(key),
            )
            continue
        if manages_roles:
            granted = RESERVED_ROLES.intersection(clean.values.get("roles") or ())
            if granted:
                plan.error(
                    "invalid",
                    line,
                    "roles",
                    f"an import may not grant the role {sorted(granted)[0]!r}: an "
                    "administrator gives it by hand",
                    key=show_key(key),
                )
                continue
        for name, message in clean.warnings:
            plan.warn(line, name, message)
        action: Literal["create", "update"] = "update" if rid else "create"
        written: dict[str, Any] = clean.values
        if rid in kept_roles and "roles" in written:
            # Roles given by hand stay: the import manages the others.
            written = {**written, "roles": sorted({*written["roles"], *kept_roles[rid]})}
        if secret_names:
            written = _without_plain_secrets(written, secret_names, pin.secrets)
        write = Write(
            action,
            plan.spool.count,
            key,
            line,
            label,
            rid or None,
            written,
            clean.e164,
            content_hash,
            None if source_digest is None else source_digest.hex(),
        )
        plan.spool.append(write)
        plan.counts[action + "d"] += 1
        change = Change(action, label, show_key(key), line, write.record_id, ref=row.ref)
        plan.note(change)
        if action == "update" and len(updates_for_diff) < SHOWN:
            updates_for_diff.append((change, write))
        if pin.target in _TRACK_OWN:
            claims.append((write, idents))

    plan.current_row = None
    if progress is not None:
        progress(plan.rows_read)
    if pin.mode == "mirror" and unkeyed:
        missing = sum(1 for _ in index.unseen_records())
        if missing:
            plan.warn(
                None,
                None,
                f"{unkeyed} row(s) could not be read or mapped, so their records cannot be "
                f"told apart from records that left the source: {missing} record(s) not seen "
                "in this run are kept; fix the rows and run again to delete what is gone",
            )
    elif pin.mode == "mirror":
        plan.deletes = list(index.unseen_records())
        plan.counts["deleted"] = len(plan.deletes)
        for rid in plan.deletes[:SHOWN]:
            # Key and label are filled in from the stored record (_labels_for_deletes).
            plan.note(Change("delete", "", "", record_id=rid))
    if pin.target in _TRACK_OWN:
        _resolve_own_claims(conn, pin, plan, claims, index)
    _fill_diffs(conn, spec, updates_for_diff)
    _labels_for_deletes(conn, spec, plan)
    _safety(plan, pin.settings)


def _columns(mapper: RowMapper, key_fields: tuple[str, ...]) -> dict[str, str]:
    """Record field -> the source field it is read from, for each variable that reads
    exactly one (`{{ Phone }}`, `{{ Phone | trim }}`); a key field that is no variable is
    a source field itself."""
    columns = {n: next(iter(e.fields)) for n, e in mapper.variables.items() if len(e.fields) == 1}
    for name in key_fields:
        if name not in mapper.variables:
            columns[name] = name
    return columns


def _duplicate(plan: Plan, line: int, key_fields: tuple[str, ...], key: str) -> None:
    plan.error(
        "invalid",
        line,
        key_fields[0],
        f"duplicate key {show_key(key)!r}: an earlier row has the same {', '.join(key_fields)}",
        key=show_key(key),
    )


def _never(digest: bytes) -> bool:
    return False


def _digest_entries(
    source: Source,
    digests: SourceDigests,
    index: KeyIndex,
    plan: Plan,
    progress: Callable[[int], None] | None,
    match: bool,
) -> bool:
    """Ask `source` for the digests of what it receives (`DigestsEntries`), if it offers
    them; whether it does.

    `known(digest)`, asked as a page arrives, tells the source which entries it need not
    make rows of (none unless `match`). `take(digest)`, asked where such an entry comes
    in the order of rows, counts it as read and unchanged, its record as seen, and says
    True; the source then yields nothing for it. If it says False (an earlier row took
    the record in the meantime), the source yields the row with `known` set and no data,
    and the loop reports it."""
    if not isinstance(source, DigestsEntries):
        return False
    if not match:
        return source.digest_entries(digests.entries, _never, _never)
    counts, claim = plan.counts, index.claim

    def take(digest: bytes) -> bool:
        if not claim(digest):
            return False
        plan.rows_read += 1
        counts["unchanged"] += 1
        if progress is not None and plan.rows_read % 1000 == 0:
            progress(plan.rows_read)
        return True

    return source.digest_entries(digests.entries, index.knows, take)


def _without_plain_secrets(
    values: dict[str, Any], names: tuple[str, ...], how: Literal["hash", "drop"]
) -> dict[str, Any]:
    out = dict(values)
    for name in names:
        plain = out.get(name)
        if plain:
            out[name] = NOT_SPOOLED if how == "drop" else Hashed(hash_secret(plain))
    return out


def _resolve_own_claims(
    conn: Connection,
    pin: PlanInput,
    plan: Plan,
    claims: list[tuple[Write, list[Identity]]],
    index: KeyIndex,
) -> None:
    """Two records of this profile may not end up with the same username, extension or
    code. Records that stay as they are keep theirs; writes claim in source order."""
    if not claims:  # nothing is written, so nothing can clash (the common re-sync)
        return
    updated = {w.record_id for w, _ in claims if w.record_id is not None}
    seen_ids = index.seen_records()
    holder: dict[Identity, str] = {}
    for key, (rid, idents) in store.own_identities(conn, pin.target, pin.profile_id).items():
        if rid in seen_ids and rid not in updated:
            for ident in idents:
                holder[ident] = key
    for write, idents in claims:
        clash = next((i for i in idents if holder.get(i, write.key) != write.key), None)
        if clash is None:
            for ident in idents:
                holder[ident] = write.key
            continue
        plan.dropped.add(write.position)
        plan.counts["created" if write.action == "create" else "updated"] -= 1
        plan.changes = [
            c
            for c in plan.changes
            if not (c.action == write.action and c.key == show_key(write.key))
        ]
        plan.error(
            "conflict",
            write.line,
            clash[0],
            f"{describe_identity(clash)} is already given to the record with key "
            f"{show_key(holder[clash])!r} by this profile",
            key=show_key(write.key),
        )


def _fill_diffs(conn: Connection, spec: TargetSpec, updates: list[tuple[Change, Write]]) -> None:
    rows = store.load_rows(
        conn, spec.name, [w.record_id for _, w in updates if w.record_id is not None]
    )
    for change, write in updates:
        assert write.record_id is not None
        stored = rows.get(write.record_id)
        if stored is None:
            continue
        before = store.stored_values(spec, stored)
        for name, after in write.values.items():
            if spec.spec(name).kind in ("secret", "pin"):
                if after:
                    change.diff.append((name, "(hidden)", "(set)"))
                continue
            if before.get(name) != after:
                change.diff.append((name, before.get(name), after))


def _labels_for_deletes(conn: Connection, spec: TargetSpec, plan: Plan) -> None:
    deletes = [c for c in plan.changes if c.action == "delete" and c.record_id is not None]
    rows = store.load_rows(conn, spec.name, [c.record_id for c in deletes if c.record_id])
    for c in deletes:
        stored = rows.get(c.record_id or 0)
        if stored is not None:
            c.key = show_key(stored["origin_key"] or "")
            c.label = spec.describe(store.stored_values(spec, stored)) or c.key


def _safety(plan: Plan, settings: Mapping[str, str]) -> None:
    if plan.mode != "mirror":
        return
    passed = plan.rows_read - plan.counts["skipped"]
    if plan.rows_read == 0:
        plan.abort_reason = (
            "the source yielded no rows; a mirror run would delete every record this "
            "profile imported (force the run if that is what you want)"
        )
    elif passed <= 0:
        plan.abort_reason = (
            "the pre-filter rejected every row; a mirror run would delete every record "
            "this profile imported (force the run if that is what you want)"
        )
    else:
        limit = delete_limit(settings.get("max_delete", "10%"), plan.existing)
        if plan.counts["deleted"] > limit:
            plan.abort_reason = (
                f"the run would delete {plan.counts['deleted']} of {plan.existing} records, "
                f"more than max_delete allows ({limit}); check the source, or force the run"
            )
