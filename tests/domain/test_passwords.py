"""Local passwords and PINs are stored as argon2 hashes and checked against them."""

from __future__ import annotations

import pytest

from pbx_connector.domain.passwords import hash_secret, verify_secret


@pytest.fixture(scope="module")
def stored() -> str:
    return hash_secret("Korrekt Pferd Batterie 1")


def test_round_trip(stored: str) -> None:
    assert verify_secret(stored, "Korrekt Pferd Batterie 1")


def test_hash_is_argon2id_and_not_the_plain_text(stored: str) -> None:
    assert stored.startswith("$argon2id$")
    assert "Korrekt" not in stored
    assert stored != "Korrekt Pferd Batterie 1"


@pytest.mark.parametrize(
    "attempt",
    ["korrekt pferd batterie 1", "Korrekt Pferd Batterie 1 "],
)
def test_wrong_password_fails(stored: str, attempt: str) -> None:
    assert not verify_secret(stored, attempt)


def test_same_secret_hashes_differently_each_time() -> None:
    first, second = hash_secret("4711"), hash_secret("4711")
    assert first != second  # salted
    assert verify_secret(second, "4711")


def test_unicode_secret() -> None:
    assert verify_secret(hash_secret("Grüße ☎"), "Grüße ☎")


def test_empty_secret_is_never_hashed() -> None:
    with pytest.raises(ValueError, match="empty"):
        hash_secret("")


@pytest.mark.parametrize("stored_hash", [None, "", "not-a-hash", "$argon2id$broken", "4711"])
def test_nothing_usable_stored_never_verifies(stored_hash: str | None) -> None:
    assert not verify_secret(stored_hash, "4711")


def test_empty_attempt_never_verifies(stored: str) -> None:
    assert not verify_secret(stored, "")
