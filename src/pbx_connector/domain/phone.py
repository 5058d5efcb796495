"""Phone numbers normalised to E.164 for caller-name lookup.

`phonenumbers` is the reference, but parsing costs ~25 µs a number and a phonebook import
normalises four numbers a row. The common shapes (`+49 991 12345`, `0049 …`, `0991/12345`)
are normalised here with string work and phonenumbers' own metadata; everything else takes
the full parser. Tests check that both paths agree wherever the fast one answers.

Rules, in order:
1. Formatting characters (space, `-`, `/`, `.`, brackets) are ignored; `(0)` after a country
   code is the trunk prefix people write by habit and is dropped, as phonenumbers drops it:
   only for countries whose trunk prefix is 0 (not Italy, where the 0 is dialled) and only
   right after the country code (elsewhere it is a digit of the number).
2. When an outside-line prefix is configured, a number that does not start with `+` and
   starts with that prefix has it removed (the source stores dial strings).
3. A number of at most `INTERNAL_MAX_DIGITS` digits with no prefix is an internal extension:
   it stays as given with no E.164 form, and that is not a problem.
4. Anything else that phonenumbers cannot parse, or finds impossible for the region, is kept
   as given, has no E.164 form, and is reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata

INTERNAL_MAX_DIGITS = 6

_FORMATTING = re.compile(r"[\s\-./()\u00a0\u2010-\u2015]")
_DIGITS = re.compile(r"\+?[0-9]+")


@dataclass(frozen=True, slots=True)
class Normalised:
    """`e164` is None for internal or unusable numbers; `problem` says why when unusable."""

    e164: str | None
    problem: str | None = None


@dataclass(frozen=True)
class _Region:
    code: str
    country_code: str
    national_prefix: str
    international_prefix: str


@lru_cache(maxsize=64)
def _region(code: str) -> _Region:
    meta = PhoneMetadata.metadata_for_region(code.upper())
    if meta is None:
        raise ValueError(f"unknown region {code!r}: use a two-letter country code such as DE")
    intl = meta.international_prefix or ""
    # Some regions describe the prefix as a pattern ("0(?:0|11)"); only a plain digit string
    # is safe for the fast path.
    if not intl.isdigit():
        intl = meta.preferred_international_prefix or ""
        if not intl.isdigit():
            intl = ""
    return _Region(
        code=code.upper(),
        country_code=str(meta.country_code),
        national_prefix=meta.national_prefix or "",
        international_prefix=intl,
    )


@lru_cache(maxsize=512)
def _possible_lengths(country_code: str) -> frozenset[int] | None:
    regions = COUNTRY_CODE_TO_REGION_CODE.get(int(country_code))
    if not regions:
        return None
    meta = PhoneMetadata.metadata_for_region_or_calling_code(int(country_code), regions[0])
    if meta is None or meta.general_desc is None:
        return None
    return frozenset(meta.general_desc.possible_length)


def is_valid_region(code: str) -> bool:
    return PhoneMetadata.metadata_for_region(code.upper()) is not None


@dataclass
class PhoneNormaliser:
    """Normalises numbers for one region and outside-line prefix; cheap to call often."""

    region: str = "DE"
    outside_line_prefix: str = ""
    _r: _Region = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._r = _region(self.region)

    def normalise(self, raw: str) -> Normalised:
        text = raw.strip()
        if not text:
            return Normalised(None)
        cleaned = _FORMATTING.sub("", text)
        if (
            self.outside_line_prefix
            and not cleaned.startswith("+")
            and cleaned.startswith(self.outside_line_prefix)
        ):
            cleaned = cleaned[len(self.outside_line_prefix) :]
            text = cleaned
        if not _DIGITS.fullmatch(cleaned):
            return self._slow(text)
        fast = self._fast(cleaned)
        if fast is not None:
            return fast
        return self._slow(text)

    def _fast(self, cleaned: str) -> Normalised | None:
        r = self._r
        if cleaned.startswith("+"):
            return _international(cleaned[1:])
        if r.international_prefix and cleaned.startswith(r.international_prefix):
            return _international(cleaned[len(r.international_prefix) :])
        if r.national_prefix and cleaned.startswith(r.national_prefix):
            national = cleaned[len(r.national_prefix) :]
            if not national or national.startswith("0"):
                return None
            return _checked(r.country_code, national)
        if len(cleaned) <= INTERNAL_MAX_DIGITS:
            return Normalised(None)
        return None

    def _slow(self, text: str) -> Normalised:
        return _parse_with_phonenumbers(text, self._r.code)


@lru_cache(maxsize=512)
def _after_trunk_zero(country_code: str) -> re.Pattern[str] | None:
    """For a country whose trunk prefix is a plain 0: the pattern a national number must
    match for phonenumbers to drop a 0 written after the country code. Else None."""
    regions = COUNTRY_CODE_TO_REGION_CODE.get(int(country_code))
    if not regions:
        return None
    meta = PhoneMetadata.metadata_for_region_or_calling_code(int(country_code), regions[0])
    if (
        meta is None
        or meta.national_prefix_for_parsing != "0"
        or meta.national_prefix_transform_rule
        or meta.general_desc is None
        or not meta.general_desc.national_number_pattern
    ):
        return None
    return re.compile(meta.general_desc.national_number_pattern)


def _international(digits: str) -> Normalised | None:
    if digits.startswith("0"):
        return None  # no country code starts with 0 (`+049 …`): phonenumbers reports it
    for size in (1, 2, 3):
        cc = digits[:size]
        if cc and int(cc) in COUNTRY_CODE_TO_REGION_CODE:
            national = digits[size:]
            if national.startswith("0"):
                # `+49 (0) 991 …`: phonenumbers drops the trunk 0 when what is left is a
                # viable number of that country; anything else is its decision.
                viable = _after_trunk_zero(cc)
                national = national[1:]
                if viable is None or not viable.fullmatch(national):
                    return None
            if not national or national.startswith("0"):
                return None
            return _checked(cc, national)
    return None


def _checked(country_code: str, national: str) -> Normalised | None:
    lengths = _possible_lengths(country_code)
    if lengths is None or len(national) not in lengths or len(country_code + national) > 15:
        # Let phonenumbers decide (and word the problem) for anything unusual.
        return None
    return Normalised(f"+{country_code}{national}")


def _parse_with_phonenumbers(text: str, region: str) -> Normalised:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        return Normalised(None, f"not a phone number ({_reason(exc)})")
    if not phonenumbers.is_possible_number(number):
        return Normalised(None, "not a possible phone number for its country")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if len(e164) > 16:  # "+" and at most 15 digits (ITU-T E.164)
        return Normalised(None, "not a phone number (too long)")
    return Normalised(e164)


def _reason(exc: phonenumbers.NumberParseException) -> str:
    reasons = {
        phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
        phonenumbers.NumberParseException.NOT_A_NUMBER: "no digits to dial",
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
        phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
        phonenumbers.NumberParseException.TOO_LONG: "too long",
    }
    return reasons.get(exc.error_type, "unreadable")


def reference_normalise(raw: str, region: str, outside_line_prefix: str = "") -> Normalised:
    """The slow, phonenumbers-only answer; the fast path must agree with it (tests)."""
    text = raw.strip()
    if outside_line_prefix and not text.startswith("+") and text.startswith(outside_line_prefix):
        text = text[len(outside_line_prefix) :]
    return _parse_with_phonenumbers(text, region)
