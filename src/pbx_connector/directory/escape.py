"""Escaping user-supplied text for LDAP, so that it can never change a DN or widen a filter.

* `escape_dn_value` escapes one attribute value for a DN (RFC 4514, section 2.4): the
  characters `" + , ; < > \\ =` anywhere, a leading space or `#`, a trailing space, and
  control characters (NUL included) as `\\xx` hex pairs.
  `=` is not required by the RFC but escaping it is allowed and makes a value that someone
  splits naively on `=` harmless too.
* `escape_filter_value` escapes one assertion value for a search filter (RFC 4515, section
  3): `*`, `(`, `)`, `\\` and NUL become `\\2a`, `\\28`, `\\29`, `\\5c` and `\\00`.

Other characters, non-ASCII letters included, stay as they are: python-ldap sends the text
as UTF-8, which both RFCs allow.
"""

from __future__ import annotations

_DN_SPECIAL = frozenset('"+,;<>\\=')
_FILTER_SPECIAL = {"*": "\\2a", "(": "\\28", ")": "\\29", "\\": "\\5c", "\x00": "\\00"}


def escape_dn_value(value: str) -> str:
    out: list[str] = []
    last = len(value) - 1
    for i, ch in enumerate(value):
        if ch < " " or ch == "\x7f":
            # Control characters are legal but parsers trim or choke on some (newline);
            # the hex form is unambiguous.
            out.append(f"\\{ord(ch):02x}")
        elif ch in _DN_SPECIAL or (i == 0 and ch in " #") or (i == last and ch == " "):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def escape_filter_value(value: str) -> str:
    return "".join(_FILTER_SPECIAL.get(ch, ch) for ch in value)
