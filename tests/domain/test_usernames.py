"""Usernames: one spelling per name (NFKC, case folding), one script per name, and no
name that passes for an ASCII one (TR 39 skeletons)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pbx_connector.domain.usernames import (
    UsernameError,
    canonical_username,
    fold_username,
    username_skeleton,
)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("carol", "carol"),
        ("Carol", "carol"),
        ("ｃａｒｏｌ", "carol"),  # fullwidth
        ("ＣＡＲＯＬ", "carol"),
        ("𝐜𝐚𝐫𝐨𝐥", "carol"),  # mathematical bold
        ("ﬁona", "fiona"),  # the fi ligature
        ("  max.muster@example.com ", "max.muster@example.com"),
        ("Jürgen", "jürgen"),
        ("ju\u0308rgen", "jürgen"),  # decomposed ü
        ("Straße", "strasse"),
        ("İlkay", "ilkay"),
        ("Иван", "иван"),
        ("Ελένη", "ελένη"),
        ("山田たろう", "山田たろう"),  # Han and Hiragana: Japanese, one script
        ("ﾔﾏﾀﾞ", "ヤマダ"),  # halfwidth katakana
        ("김철수", "김철수"),
        ("o'neil".replace("'", "_"), "o_neil"),
        ("a+b-c_d.e@f", "a+b-c_d.e@f"),
        ("user１２", "user12"),  # fullwidth digits
    ],
)
def test_canonical_form(given: str, stored: str) -> None:
    assert canonical_username(given) == stored


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("аdmin", "mixes letters of several scripts (Cyrillic 'а' (U+0430), Latin 'd'"),
        ("pаypal", "mixes letters of several scripts (Latin 'p' (U+0070), Cyrillic 'а'"),
        ("αdmin", "mixes letters of several scripts (Greek 'α'"),
        ("ѕсоре", "looks like the name 'scope' but is spelt with 'ѕ' (U+0455)"),
        ("ΑΟ", "looks like the name 'ao'"),  # Greek capitals fold to α ο
        ("fatıma", "looks like the name 'fatima' but is spelt with 'ı' (U+0131)"),
        ("ɑdmin", "looks like the name 'admin'"),
        ("зоо", "looks like the name '3oo'"),
        ("max muster", "' ' (U+0020) is not allowed"),
        ("max\u200bmuster", "(U+200B) is not allowed"),  # zero-width space
        ("max\u00admuster", "(U+00AD) is not allowed"),  # soft hyphen
        ("max\x00", "(U+0000) is not allowed"),
        ("max/muster", "'/' (U+002F) is not allowed"),
        ("٣max", "(U+0663) is not allowed (digits are 0-9 only)"),
        ("x\u0301y", "(U+0301) is not allowed (an accent must belong to its letter)"),
        ("ᏗᎳ", "(letters of this script are not accepted in usernames)"),  # Cherokee
        ("ʼmax", "(U+02BC) is not allowed"),  # a modifier letter
        ("😀", "(U+1F600) is not allowed"),
    ],
)
def test_refused(name: str, reason: str) -> None:
    with pytest.raises(UsernameError) as info:
        canonical_username(name)
    message = str(info.value)
    assert message.startswith(f"{name.strip()!r} is not a valid username: ") or (
        message.startswith(f"{name!r} is not a valid username: ")
    )
    assert reason in message


def test_empty_is_refused() -> None:
    with pytest.raises(UsernameError, match="empty"):
        canonical_username("   ")


def test_skeleton_of_an_ascii_name_is_the_name() -> None:
    assert username_skeleton("Admin") == "admin"
    assert username_skeleton("user1") == "user1"
    # ASCII names never collide with each other: l and 1, rn and m stay apart.
    assert username_skeleton("paypa1") != username_skeleton("paypal")
    assert username_skeleton("rn") != username_skeleton("m")


def test_look_alikes_share_a_skeleton() -> None:
    assert username_skeleton("аdmin") == "admin"
    assert username_skeleton("ａｄｍｉｎ") == "admin"
    assert username_skeleton("үи") == username_skeleton("уи")  # two Cyrillic letters alike
    assert username_skeleton("ӧл") == username_skeleton("öл")  # decomposed alike
    assert username_skeleton("иван") != username_skeleton("ivan")
    assert username_skeleton("jürgen") == "ju\u0308rgen"


def test_fold_never_refuses() -> None:
    assert fold_username("аdmin") == "аdmin"
    assert fold_username("ＡＢ c") == "ab c"
    assert fold_username("max\x00") == "max\x00"


@given(st.from_regex(r"[A-Za-z0-9._@+\-]{1,20}", fullmatch=True))
def test_ascii_names_are_only_lower_cased(name: str) -> None:
    assert canonical_username(name) == name.lower() == username_skeleton(name)


@given(st.text(max_size=12))
def test_canonical_names_are_stable(text: str) -> None:
    try:
        name = canonical_username(text)
    except UsernameError:
        return
    assert canonical_username(name) == name
    assert fold_username(name) == name
    assert name.isascii() or not username_skeleton(name).isascii()
