"""Phone-number normalisation: concrete written forms, and the fast path against phonenumbers."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbx_connector.domain import phone
from pbx_connector.domain.phone import (
    INTERNAL_MAX_DIGITS,
    Normalised,
    PhoneNormaliser,
    is_valid_region,
    reference_normalise,
)

DE = PhoneNormaliser("DE")


@pytest.mark.parametrize(
    "raw",
    [
        "+49 991 12345",
        "+4999112345",
        "+49 (0) 991 12345",
        "+49(0)991-12345",
        "+49 (0)991/12345",
        "0049 991 12345",
        "0049 (0) 991 12345",
        "0049-991-12345",
        "+49.991.12345",
        "0991 12345",
        "0991/12345",
        "0991/123-45",
        "(0991) 12345",
        "( 0991 ) 123 45",
        "0991-12345",
        "0991\u00a012345",  # no-break space, as spreadsheets export it
        "0991\u201312345",  # en dash
        "  0991 12345  ",
    ],
)
def test_german_number_in_many_written_forms(raw: str) -> None:
    assert DE.normalise(raw) == Normalised("+4999112345", None)


@pytest.mark.parametrize(
    ("region", "raw", "e164"),
    [
        ("DE", "0171 2345678", "+491712345678"),
        ("DE", "+49 (0)171 234 5678", "+491712345678"),
        ("DE", "030 1234567", "+49301234567"),
        ("AT", "01 2345678", "+4312345678"),
        ("AT", "+43 (0) 1 234 5678", "+4312345678"),
        ("AT", "0043 1 2345678", "+4312345678"),
        ("AT", "0991 12345", "+4399112345"),  # a national number takes the region's code
        ("CH", "044 123 45 67", "+41441234567"),
        ("CH", "+41 (0)44 123 45 67", "+41441234567"),
        ("CH", "0041 44 123 45 67", "+41441234567"),
        ("FR", "01 23 45 67 89", "+33123456789"),
        ("FR", "+33 (0)1 23 45 67 89", "+33123456789"),
        ("FR", "0033 6 12 34 56 78", "+33612345678"),
        # A foreign number written internationally does not depend on the region.
        ("DE", "+43 1 234567", "+431234567"),
        ("DE", "0041 44 123 45 67", "+41441234567"),
        ("CH", "+49 991 12345", "+4999112345"),
        ("FR", "0049 991 12345", "+4999112345"),
    ],
)
def test_numbers_of_neighbouring_countries(region: str, raw: str, e164: str) -> None:
    assert PhoneNormaliser(region).normalise(raw) == Normalised(e164, None)


def test_region_code_is_case_insensitive() -> None:
    assert PhoneNormaliser("de").normalise("0991 12345").e164 == "+4999112345"


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        # "(0)" is the trunk prefix only right after a country code; anywhere else it is a
        # digit of the number and must not disappear.
        ("0991 (0) 12345", "+49991012345"),
        ("0991 12345 (0)", "+49991123450"),
        ("+49 991 (0) 12345", "+49991012345"),
        # Italian numbers keep their leading 0 after the country code.
        ("+39 06 1234 5678", "+390612345678"),
        ("+39 (0)6 1234 5678", "+390612345678"),
    ],
)
def test_bracketed_zero_is_dropped_only_where_it_is_a_trunk_prefix(raw: str, e164: str) -> None:
    assert DE.normalise(raw) == Normalised(e164, None)
    assert reference_normalise(raw, "DE").e164 == e164


@pytest.mark.parametrize(
    "raw",
    [
        "+49 991 12345",
        "+49 (0) 991 12345",
        "+49 (0)171 234 5678",
        "0049 991 12345",
        "0991/123-45",
        "(0991) 12345",
        "+43 1 234567",
        "30000",
    ],
)
def test_common_shapes_do_not_need_the_full_parser(
    raw: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without this, the agreement properties below could pass with a fast path that never
    # answers. The expected values are those of the parametrised tests above.
    expected = DE.normalise(raw)

    def refuse(text: str, region: str) -> Normalised:
        raise AssertionError(f"{raw!r} went to phonenumbers")

    monkeypatch.setattr(phone, "_parse_with_phonenumbers", refuse)
    assert DE.normalise(raw) == expected


@pytest.mark.parametrize(
    ("region", "raw"),
    [
        ("DE", "+049 991 12345"),
        ("DE", "+0 49 991 12345"),
        ("US", "+049 991 12345"),
        ("US", "011 049 991 12345"),  # 011: the international prefix in the US
    ],
)
def test_country_code_with_a_leading_zero_is_reported(region: str, raw: str) -> None:
    # "+049" mixes up 0049 and +49; no country code starts with 0, so there is no E.164 form.
    result = PhoneNormaliser(region).normalise(raw)
    assert result.e164 is None
    assert result.problem is not None
    assert reference_normalise(raw, region).e164 is None


@pytest.mark.parametrize("raw", ["1", "12", "123", "1234", "12345", "123456", " 30000 "])
def test_internal_extension_has_no_e164_and_no_problem(raw: str) -> None:
    assert DE.normalise(raw) == Normalised(None, None)
    assert PhoneNormaliser("FR").normalise(raw) == Normalised(None, None)


def test_seven_digits_are_no_longer_an_extension() -> None:
    assert len("1234567") == INTERNAL_MAX_DIGITS + 1
    assert DE.normalise("1234567") == Normalised("+491234567", None)


@pytest.mark.parametrize("raw", ["", "   ", "\t"])
def test_empty_number_is_neither_normalised_nor_a_problem(raw: str) -> None:
    assert DE.normalise(raw) == Normalised(None, None)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("abc", "not a phone number (no digits to dial)"),
        ("call me", "not a phone number (no digits to dial)"),
        ("+999 1", "not a phone number (unknown country code)"),
        ("00991 12345", "not a phone number (unknown country code)"),
        ("+49", "not a phone number (no digits to dial)"),
        ("0049", "not a phone number (too short)"),
    ],
)
def test_garbage_has_no_e164_and_a_problem(raw: str, problem: str) -> None:
    assert DE.normalise(raw) == Normalised(None, problem)


def test_impossible_number_for_its_country_is_reported() -> None:
    result = PhoneNormaliser("CH").normalise("0171 2345678")
    assert result == Normalised(None, "not a possible phone number for its country")


class TestOutsideLinePrefix:
    P = PhoneNormaliser("DE", "0")

    @pytest.mark.parametrize(
        "raw",
        ["00991 12345", "0 0991 12345", "0(0991) 12345", "0 0991/123-45", "0 +49 991 12345"],
    )
    def test_dial_string_loses_its_outside_line_prefix(self, raw: str) -> None:
        assert self.P.normalise(raw) == Normalised("+4999112345", None)

    def test_international_dial_string(self) -> None:
        assert self.P.normalise("0 0043 1 2345678") == Normalised("+4312345678", None)

    def test_plus_numbers_are_never_stripped(self) -> None:
        assert self.P.normalise("+49 991 12345") == Normalised("+4999112345", None)
        assert self.P.normalise("+43 1 234567") == Normalised("+431234567", None)

    def test_without_the_prefix_the_same_dial_string_is_unknown(self) -> None:
        assert DE.normalise("00991 12345").e164 is None
        assert DE.normalise("00991 12345").problem is not None

    def test_other_prefix(self) -> None:
        nine = PhoneNormaliser("DE", "9")
        assert nine.normalise("9 0991 12345") == Normalised("+4999112345", None)
        assert nine.normalise("90991/12345") == Normalised("+4999112345", None)

    def test_internal_extension_stays_internal(self) -> None:
        assert self.P.normalise("30000") == Normalised(None, None)


def test_unknown_region_is_refused_with_a_hint() -> None:
    with pytest.raises(ValueError, match=r"unknown region 'XX'.*two-letter country code"):
        PhoneNormaliser("XX")


@pytest.mark.parametrize(
    ("code", "valid"),
    [("DE", True), ("de", True), ("AT", True), ("ch", True), ("XX", False), ("", False)],
)
def test_is_valid_region(code: str, valid: bool) -> None:
    assert is_valid_region(code) is valid


def test_reference_strips_the_outside_line_prefix() -> None:
    assert reference_normalise("0 0991 12345", "DE", "0").e164 == "+4999112345"
    assert reference_normalise("+49 991 12345", "DE", "0").e164 == "+4999112345"


# --- the fast path against phonenumbers ---------------------------------------------------
#
# `PhoneNormaliser.normalise` answers common shapes with string work and hands everything
# else to phonenumbers; `reference_normalise` always asks phonenumbers. They must give the
# same E.164 form, with two intentional exceptions the strategies below leave out:
# * a number of at most INTERNAL_MAX_DIGITS digits without a prefix is an internal
#   extension for the normaliser (no E.164), while phonenumbers reads it as a local number;
# * an empty number is "no number" for the normaliser and a problem for phonenumbers.

REGIONS = ("DE", "AT", "CH", "FR")
COUNTRY_CODES = ("49", "43", "41", "33", "39", "44", "31", "1")
SEPARATORS = st.sampled_from(["", " ", "-", "/", ".", " - "])


def _digits(min_size: int, max_size: int, first: str = "0123456789") -> st.SearchStrategy[str]:
    return st.tuples(
        st.sampled_from(first),
        st.text("0123456789", min_size=min_size - 1, max_size=max_size - 1),
    ).map("".join)


@st.composite
def written_numbers(draw: st.DrawFn) -> str:
    area = draw(_digits(1, 5, first="123456789"))
    subscriber = draw(_digits(2, 8))
    sep1, sep2 = draw(SEPARATORS), draw(SEPARATORS)
    shape = draw(st.integers(0, 5))
    if shape <= 2:
        cc = draw(st.sampled_from(COUNTRY_CODES))
        lead = ("+", "00", "+ ")[shape]
        trunk = draw(st.sampled_from(["", " (0) ", "(0)", " (0)", "0", " 0"]))
        return f"{lead}{cc}{sep1}{trunk}{area}{sep2}{subscriber}"
    if shape == 3:
        return f"0{area}{sep1}{subscriber}"
    if shape == 4:
        return f"(0{area}){sep1}{subscriber}"
    # A "(0)" somewhere inside a national number: a digit, not a trunk prefix.
    return f"0{area}{sep1}(0){sep2}{subscriber}"


@settings(max_examples=400, deadline=None)
@given(region=st.sampled_from(REGIONS), raw=written_numbers())
def test_fast_path_agrees_with_phonenumbers(region: str, raw: str) -> None:
    assert PhoneNormaliser(region).normalise(raw).e164 == reference_normalise(raw, region).e164


@settings(max_examples=200, deadline=None)
@given(region=st.sampled_from(REGIONS), raw=written_numbers(), spaced=st.booleans())
def test_fast_path_agrees_with_phonenumbers_on_dial_strings(
    region: str, raw: str, spaced: bool
) -> None:
    dialled = ("0 " if spaced else "0") + raw
    fast = PhoneNormaliser(region, "0").normalise(dialled).e164
    assert fast == reference_normalise(dialled, region, "0").e164


@settings(max_examples=200, deadline=None)
@given(region=st.sampled_from(REGIONS), raw=st.text("0123456789", min_size=7, max_size=14))
def test_fast_path_agrees_with_phonenumbers_on_bare_digits(region: str, raw: str) -> None:
    assert PhoneNormaliser(region).normalise(raw).e164 == reference_normalise(raw, region).e164


@given(raw=_digits(1, INTERNAL_MAX_DIGITS, first="123456789"))
def test_short_numbers_without_prefix_are_internal(raw: str) -> None:
    assert DE.normalise(raw) == Normalised(None, None)


@settings(max_examples=300, deadline=None)
@given(
    region=st.sampled_from(REGIONS),
    prefix=st.sampled_from(["", "0"]),
    raw=st.text(max_size=30) | st.text("0123456789+()-/. ", max_size=20),
)
def test_any_text_gives_a_valid_e164_form_or_none(region: str, prefix: str, raw: str) -> None:
    result = PhoneNormaliser(region, prefix).normalise(raw)
    if result.e164 is not None:
        assert result.problem is None
        # E.164: a plus, a country code (never starting with 0), at most 15 digits.
        assert re.fullmatch(r"\+[1-9][0-9]{1,14}", result.e164), result.e164
