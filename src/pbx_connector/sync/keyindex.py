"""The key index of a run in flat arrays: the profile's records by key, and the keys the
source has shown so far.

A run must hold this for every record it owns, which makes it the one part of a sync
whose memory grows with the data. As Python dicts and sets of strings and tuples it costs
~250 bytes a record (a million-record re-sync: ~800 MB). Here a key is its 64-bit hash in
an open-addressing table (linear probing, at most half full); an owned record's slot
points into dense arrays of record ids and content fingerprints. That is ~25 bytes for a
key only the source has, ~40 for an owned record.

Two different keys with the same 64-bit hash would be taken for one; with Python's
randomised string hash the chance is about n²/2⁶⁵ (3·10⁻⁸ for a million keys), and a
second run hashes differently.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator

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


class KeyIndex:
    def __init__(self, expected: int = 0) -> None:
        bits = max(_MIN_BITS, (2 * expected + 1).bit_length())
        self._alloc(bits)
        self._ids = array("q")
        self._prints = array("Q")
        self._seen = bytearray()
        self._count = 0
        self.existing = 0

    def _alloc(self, bits: int) -> None:
        self._mask = (1 << bits) - 1
        self._hashes = array("q", bytes(8 << bits))
        self._slots = array("i", bytes(4 << bits))

    def __len__(self) -> int:
        return self._count

    def _find(self, h: int) -> int:
        """The table position of hash `h`, or of the empty place where it would go."""
        mask, hashes = self._mask, self._hashes
        i = h & mask
        while True:
            found = hashes[i]
            if found in (h, _EMPTY):
                return i
            i = (i + 1) & mask

    def _insert(self, h: int, slot: int) -> None:
        if 2 * (self._count + 1) > self._mask + 1:
            self._grow()
        i = self._find(h)
        self._hashes[i] = h
        self._slots[i] = slot
        self._count += 1

    def _grow(self) -> None:
        old_hashes, old_slots = self._hashes, self._slots
        self._alloc((self._mask + 1).bit_length())
        for h, n in zip(old_hashes, old_slots, strict=True):
            if h != _EMPTY:
                i = self._find(h)
                self._hashes[i] = h
                self._slots[i] = n

    def add_existing(self, key: str, record_id: int, content_hash: str | None) -> None:
        """A record the profile imported before."""
        self._insert(_key_hash(key), len(self._ids))
        self._ids.append(record_id)
        self._prints.append(fingerprint(content_hash))
        self._seen.append(0)
        self.existing += 1

    def see(self, key: str) -> tuple[bool, int, int]:
        """Mark `key` as shown by the source. Returns (shown before, record id or 0,
        content fingerprint or 0)."""
        h = _key_hash(key)
        i = self._find(h)
        if self._hashes[i] == _EMPTY:
            self._insert(h, _NEW)
            return False, 0, 0
        n = self._slots[i]
        if n == _NEW:
            return True, 0, 0
        if self._seen[n]:
            return True, self._ids[n], self._prints[n]
        self._seen[n] = 1
        return False, self._ids[n], self._prints[n]

    def unseen_records(self) -> Iterator[int]:
        """Ids of the records the source did not show (what a mirror run deletes)."""
        for record_id, seen in zip(self._ids, self._seen, strict=True):
            if record_id and not seen:
                yield record_id

    def seen_records(self) -> set[int]:
        return {rid for rid, seen in zip(self._ids, self._seen, strict=True) if rid and seen}
