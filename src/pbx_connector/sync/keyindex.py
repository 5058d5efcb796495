"""The key index of a run in flat arrays: the profile's records by key and by the digest
of the source row each was made from, and the keys the source has shown so far.

A run must hold this for every record it owns, which makes it the one part of a sync
whose memory grows with the data. As Python dicts and sets of strings and tuples it costs
~250 bytes a record (a million-record re-sync: ~800 MB). Here a key is its 64-bit hash in
an open-addressing table (linear probing, at most half full); an owned record's slot
points into dense arrays of record ids, content fingerprints, key hashes and source
digests. A second table finds an owned record by the first 64 bits of its source row's
digest. That is ~25 bytes for a key only the source has, ~90 for an owned record.

Each table is built when it is first asked: a re-sync in which every row is found by
its digest (see `claim`) never builds the table of keys, and one whose source gives no
digests never builds the other.

Two different keys with the same 64-bit hash would be taken for one; with Python's
randomised string hash the chance is about n²/2⁶⁵ (3·10⁻⁸ for a million keys), and a
second run hashes differently. A source digest is compared in full (128 bits).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator

_EMPTY = 0
_MIN_BITS = 10
#: The slot of a key only the source has shown: it needs no record id, fingerprint or
#: seen flag (being in the table is being seen), so a first import stores just the hash.
_NEW = -1


def _key_hash(key: str) -> int:
    h = hash(key)
    return h if h != _EMPTY else 1


def fingerprint(content_hash: str | None) -> int:
    """64 bits of a stored content hash (hex); 0 for none, which matches no row."""
    if not content_hash:
        return 0
    return int(content_hash[:16], 16) or 1


def digest_fingerprint(digest: bytes) -> int:
    """`fingerprint(digest.hex())`, without the hex text: the first 8 bytes, big-endian."""
    return int.from_bytes(digest[:8], "big") or 1


def source_fingerprint(digest: bytes) -> int:
    """The first 64 bits of a source row digest as a table holds them (signed, never 0)."""
    return int.from_bytes(digest[:8], "big", signed=True) or 1


_HALF = 1 << 64
_SIGN = 1 << 63


def _source_halves(source_hash: str | None) -> tuple[int, int]:
    """A stored source row digest (32 hex digits) as (`source_fingerprint`, the other 64
    bits, signed); (0, 0) for none or a malformed one, which then matches no row."""
    if not source_hash or len(source_hash) != 32:
        return 0, 0
    try:
        value = int(source_hash, 16)
    except ValueError:
        return 0, 0
    high, low = value >> 64, value & (_HALF - 1)
    high = (high - _HALF if high >= _SIGN else high) or 1
    return high, low - _HALF if low >= _SIGN else low


class _Table:
    """Open addressing from a non-zero signed 64-bit hash to a slot number."""

    def __init__(self, expected: int = 0) -> None:
        self._alloc(max(_MIN_BITS, (2 * expected + 1).bit_length()))
        self.count = 0

    def _alloc(self, bits: int) -> None:
        self._mask = (1 << bits) - 1
        self._hashes = array("q", bytes(8 << bits))
        self._slots = array("i", bytes(4 << bits))

    @classmethod
    def of(cls, hashes: array[int]) -> _Table:
        """A table of `hashes[n]` → n for every non-zero one (a later equal hash wins),
        sized once (this loop is what a re-sync pays for each record it owns)."""
        table = cls(len(hashes))
        mask, stored, slots = table._mask, table._hashes, table._slots
        count = 0
        for n, h in enumerate(hashes):
            if h == _EMPTY:
                continue
            i = h & mask
            while True:
                found = stored[i]
                if found == _EMPTY:
                    count += 1
                    break
                if found == h:
                    break
                i = (i + 1) & mask
            stored[i] = h
            slots[i] = n
        table.count = count
        return table

    def find(self, h: int) -> int:
        """The table position of hash `h`, or of the empty place where it would go."""
        mask, hashes = self._mask, self._hashes
        i = h & mask
        while True:
            found = hashes[i]
            if found in (h, _EMPTY):
                return i
            i = (i + 1) & mask

    def get(self, h: int) -> int | None:
        i = self.find(h)
        return None if self._hashes[i] == _EMPTY else self._slots[i]

    def insert(self, h: int, slot: int) -> None:
        if 2 * (self.count + 1) > self._mask + 1:
            self._grow()
        i = self.find(h)
        if self._hashes[i] == _EMPTY:
            self.count += 1
        self._hashes[i] = h
        self._slots[i] = slot

    def _grow(self) -> None:
        old_hashes, old_slots = self._hashes, self._slots
        self._alloc((self._mask + 1).bit_length())
        for h, n in zip(old_hashes, old_slots, strict=True):
            if h != _EMPTY:
                i = self.find(h)
                self._hashes[i] = h
                self._slots[i] = n


class KeyIndex:
    def __init__(self) -> None:
        self._ids = array("q")
        self._prints = array("Q")
        self._keys = array("q")
        #: The source digest of each owned record in two halves (`source_fingerprint`
        #: and the rest); 0 for none, or for a record without content hash, which no
        #: digest may then find.
        self._sources = array("q")
        self._sources_low = array("q")
        self._seen = bytearray()
        self._by_key: _Table | None = None
        self._by_source: _Table | None = None
        #: Digest → slot of what `knows` found, until `claim` takes it: a source tests a
        #: page of entries before handing on their rows, and each lookup costs.
        self._known: dict[bytes, int] = {}
        self.existing = 0

    def __len__(self) -> int:
        """How many different keys the index holds (owned, and shown by the source)."""
        return self._key_table().count

    def add_existing(
        self, key: str, record_id: int, content_hash: str | None, source_hash: str | None = None
    ) -> None:
        """A record the profile imported before (before any row is seen)."""
        self.load([(key, record_id, content_hash, source_hash)])

    def load(self, records: Iterable[tuple[str, int, str | None, str | None]]) -> None:
        """`add_existing` for each (key, record id, content hash, source digest)."""
        add_id, add_print, add_key = self._ids.append, self._prints.append, self._keys.append
        add_source, add_low = self._sources.append, self._sources_low.append
        n = 0
        for key, record_id, content_hash, source_hash in records:
            add_id(record_id)
            add_key(_key_hash(key))
            print_ = fingerprint(content_hash)
            add_print(print_)
            # A record without a content hash (edited by hand) is found by its key alone.
            high, low = _source_halves(source_hash) if print_ else (0, 0)
            add_source(high)
            add_low(low)
            n += 1
        self._seen.extend(bytes(n))
        self.existing += n

    def _key_table(self) -> _Table:
        if self._by_key is None:
            self._by_key = _Table.of(self._keys)
        return self._by_key

    def see(self, key: str) -> tuple[bool, int, int]:
        """Mark `key` as shown by the source. Returns (shown before, record id or 0,
        content fingerprint or 0)."""
        duplicate, rid, print_, _ = self.see_key(key)
        return duplicate, rid, print_

    def see_key(self, key: str) -> tuple[bool, int, int, int]:
        """`see`, and the record's stored `source_fingerprint` (0: none)."""
        table = self._key_table()
        h = _key_hash(key)
        n = table.get(h)
        if n is None:
            table.insert(h, _NEW)
            return False, 0, 0, 0
        if n == _NEW:
            return True, 0, 0, 0
        if self._seen[n]:
            return True, self._ids[n], self._prints[n], self._sources[n]
        self._seen[n] = 1
        return False, self._ids[n], self._prints[n], self._sources[n]

    def _by_digest(self, digest: bytes, unseen: bool = True) -> int:
        """The slot of the owned record (not yet seen, with `unseen`) whose source digest
        is `digest`, or -1. Written out: it runs for every row of a re-sync."""
        table = self._by_source
        if table is None:
            table = self._by_source = _Table.of(self._sources)
        h = int.from_bytes(digest[:8], "big", signed=True) or 1
        mask, hashes = table._mask, table._hashes
        i = h & mask
        while True:
            found = hashes[i]
            if found == h:
                break
            if found == _EMPTY:
                return -1
            i = (i + 1) & mask
        n = table._slots[i]
        if (unseen and self._seen[n]) or self._sources_low[n] != int.from_bytes(
            digest[8:16], "big", signed=True
        ):
            return -1
        return n

    def knows(self, digest: bytes) -> bool:
        """Whether `claim(digest)` would find a record now (nothing is marked)."""
        n = self._by_digest(digest)
        if n < 0:
            return False
        self._known[digest] = n
        return True

    def claim(self, digest: bytes) -> int:
        """The id of the owned record, not yet seen, that was made from a source row with
        this digest (and holds a content hash), now marked as seen; 0 if there is none."""
        n = self._known.pop(digest, -1)
        if n < 0:
            n = self._by_digest(digest)
            if n < 0:
                return 0
        elif self._seen[n]:
            return 0
        self._seen[n] = 1
        return self._ids[n]

    def record_of(self, digest: bytes) -> int:
        """The id of the owned record made from a source row with this digest, seen or
        not; 0 if there is none."""
        n = self._by_digest(digest, unseen=False)
        return 0 if n < 0 else self._ids[n]

    def unseen_records(self) -> Iterator[int]:
        """Ids of the records the source did not show (what a mirror run deletes)."""
        for record_id, seen in zip(self._ids, self._seen, strict=True):
            if record_id and not seen:
                yield record_id

    def seen_records(self) -> set[int]:
        return {rid for rid, seen in zip(self._ids, self._seen, strict=True) if rid and seen}
