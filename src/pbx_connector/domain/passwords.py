"""Hashing of local passwords and PINs (argon2id). Plain values are never stored."""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    return PasswordHasher()


def hash_secret(plain: str) -> str:
    if not plain:
        raise ValueError("refusing to hash an empty secret")
    return _hasher().hash(plain)


def verify_secret(stored_hash: str | None, plain: str) -> bool:
    if not stored_hash or not plain:
        return False
    try:
        return _hasher().verify(stored_hash, plain)
    except (VerificationError, InvalidHashError):
        return False
