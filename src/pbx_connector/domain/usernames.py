"""Usernames: one spelling per name, and no name that passes for another.

A username is a login name on a desk phone and a key across imports, so two strings that
look the same must be the same name, and a name that merely *looks* like another must be
refused. The rules (after Unicode TR 39, "Unicode Security Mechanisms", kept deliberately
conservative; no third-party table):

1. **One spelling.** NFKC turns compatibility forms into their plain letters (fullwidth
   `ｃａｒｏｌ` and mathematical `𝐜𝐚𝐫𝐨𝐥` are `carol`), and case folding makes `Carol`,
   `CAROL` and `carol` one name (`ß` becomes the `ss` it folds to, Turkish `İ` an `i`).
   `fold_username` does just this and never refuses; `canonical_username` also applies
   the rules below.
2. **Allowed characters.** Letters, the ASCII digits `0`–`9` and `. _ @ + -`. No spaces,
   no other punctuation or symbols, no invisible or control characters, no digits of other
   scripts, and no loose combining marks (an accent with no precomposed letter).
3. **One script.** The letters of a name belong to one script: Latin, Greek, Cyrillic,
   Armenian, Georgian, Hebrew, Arabic, Thai, Devanagari, Han, or Hangul. Japanese (Han with
   Hiragana and Katakana) and Korean (Hangul with Han) count as one script each. Other
   scripts are refused: their letters are not covered by rule 4. So `аdmin`, with a
   Cyrillic `а`, is refused (TR 39 mixed-script detection).
4. **No look-alike of an ASCII name.** The *skeleton* of a name replaces each letter that
   looks like an ASCII letter or digit by it (Cyrillic `а` → `a`, Greek `ο` → `o`, Latin
   `ı` → `i`…; see `_PROTOTYPES`) after NFD. A name that is not ASCII but whose skeleton is
   ASCII is refused: `ѕсоре`, all Cyrillic, would pass for `scope` (TR 39 whole-script
   confusables). Accented names are not affected: `jürgen` keeps its `ü` in the skeleton.
5. **No two names with one skeleton.** The store refuses a user whose skeleton equals
   another user's (`username_skeleton`). For ASCII names the skeleton is the name itself,
   so this changes nothing for them.
"""

from __future__ import annotations

import unicodedata

#: Allowed besides letters; ASCII digits are allowed too.
PUNCTUATION = frozenset("._@+-")
_DIGITS = frozenset("0123456789")

#: The scripts a username may be written in, by the first word of a character's Unicode
#: name (Python's `unicodedata` has no Script property; the names carry it for these).
_SCRIPT_OF_NAME = {
    "LATIN": "Latin",
    "GREEK": "Greek",
    "CYRILLIC": "Cyrillic",
    "ARMENIAN": "Armenian",
    "GEORGIAN": "Georgian",
    "HEBREW": "Hebrew",
    "ARABIC": "Arabic",
    "THAI": "Thai",
    "DEVANAGARI": "Devanagari",
    "CJK": "Han",
    "IDEOGRAPHIC": "Han",
    "HIRAGANA": "Hiragana",
    "KATAKANA": "Katakana",
    "KATAKANA-HIRAGANA": "Katakana",
    "HANGUL": "Hangul",
}
#: Script sets that one language writes together: they count as one script.
_TOGETHER = (frozenset({"Han", "Hiragana", "Katakana"}), frozenset({"Han", "Hangul"}))

#: Letters that look like an ASCII letter or digit, lower case (names are case-folded
#: first), from the TR 39 confusables data. Only what a conservative check needs: the
#: letters of the allowed scripts that can stand in for ASCII ones.
_PROTOTYPES: dict[int, str] = {
    ord(k): v
    for k, v in {
        # Cyrillic
        "а": "a", "ԁ": "d", "е": "e", "һ": "h", "і": "i", "ј": "j", "ӏ": "l", "о": "o",
        "р": "p", "ԛ": "q", "ѕ": "s", "с": "c", "ѵ": "v", "ԝ": "w", "ѡ": "w", "х": "x",
        "у": "y", "ү": "y", "г": "r", "п": "n", "ь": "b", "з": "3",
        # Greek
        "α": "a", "γ": "y", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "ϱ": "p",
        "υ": "u", "χ": "x", "ϲ": "c", "ϳ": "j", "ω": "w", "η": "n",
        # Armenian
        "ա": "w", "հ": "h", "ո": "n", "օ": "o", "ս": "u", "ց": "g", "զ": "q",
        # Latin letters outside ASCII
        "ı": "i", "ɩ": "i", "ɑ": "a", "ȷ": "j", "ǀ": "l", "ɡ": "g",
    }.items()
}  # fmt: skip


class UsernameError(ValueError):
    """A username breaks one of the rules; the message says which and how."""


def fold_username(name: str) -> str:
    """NFKC and case folding (NFKC_Casefold in effect): the one spelling of a name.
    Never refuses anything; use it to look a name up (a login), not to accept one."""
    if name.isascii():
        return name.lower()
    folded = unicodedata.normalize("NFKC", name).casefold()
    # Turkish `İ` folds to `i` and a combining dot above, which no letter absorbs.
    return unicodedata.normalize("NFKC", folded.replace("i\u0307", "i"))


def username_skeleton(name: str) -> str:
    """What a name looks like: letters that pass for ASCII ones replaced by them (TR 39
    skeleton, restricted to look-alikes of ASCII). Equal skeletons, confusable names."""
    folded = fold_username(name)
    if folded.isascii():
        return folded
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", folded).translate(_PROTOTYPES))


def _script(ch: str) -> str | None:
    """The script of a letter or mark, or None when it is not one a name may use."""
    name = unicodedata.name(ch, "")
    return _SCRIPT_OF_NAME.get(name.split(" ", 1)[0])


def _describe(ch: str) -> str:
    return f"{ch!r} (U+{ord(ch):04X})"


def canonical_username(name: str) -> str:
    """The stored form of a username, or `UsernameError` when the rules refuse it."""
    folded = fold_username(name.strip())
    if not folded:
        raise UsernameError("the username is empty")
    if folded.isascii():
        bad = next((ch for ch in folded if not (ch.isalnum() or ch in PUNCTUATION)), None)
        if bad is not None:
            raise UsernameError(
                f"{name!r} is not a valid username: {_describe(bad)} is not allowed "
                "(letters, digits and . _ @ + - only)"
            )
        return folded
    scripts: dict[str, str] = {}  # script -> its first letter in the name
    for ch in folded:
        if ch in PUNCTUATION or ch in _DIGITS:
            continue
        category = unicodedata.category(ch)
        script = _script(ch) if category[0] in "LM" else None
        if script is None:
            if category == "Nd":
                why = "digits are 0-9 only"
            elif category[0] == "M":
                why = "an accent must belong to its letter"
            elif category[0] == "L":
                why = "letters of this script are not accepted in usernames"
            else:
                why = "letters, digits and . _ @ + - only"
            raise UsernameError(
                f"{name!r} is not a valid username: {_describe(ch)} is not allowed ({why})"
            )
        scripts.setdefault(script, ch)
    if len(scripts) > 1 and not any(set(scripts) <= group for group in _TOGETHER):
        mixed = ", ".join(f"{s} {_describe(ch)}" for s, ch in scripts.items())
        raise UsernameError(
            f"{name!r} is not a valid username: it mixes letters of several scripts "
            f"({mixed}); a username is written in one script"
        )
    skeleton = username_skeleton(folded)
    if skeleton.isascii():
        lookalikes = ", ".join(_describe(ch) for ch in dict.fromkeys(folded) if not ch.isascii())
        raise UsernameError(
            f"{name!r} is not a valid username: it looks like the name {skeleton!r} "
            f"but is spelt with {lookalikes}; write it in plain Latin letters"
        )
    return folded
