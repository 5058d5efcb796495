"""Plans and run reports in words: the same sentences in the CLI, the API and the UI
(ldap2pg's "Would …" for whatever was not written). They take the JSON form of a
report (`RunReport.as_json()`). Also where a caller-name lookup found its name."""

from __future__ import annotations

from typing import Any

from pbx_connector.domain.targets import TARGETS
from pbx_connector.models.lookup import LookupResult

_VERBS = {
    "create": ("Would create", "Created"),
    "update": ("Would update", "Updated"),
    "delete": ("Would delete", "Deleted"),
}


def _value(v: Any) -> str:
    if isinstance(v, list):
        return ", ".join(str(x) for x in v)
    return repr(v) if isinstance(v, str) else str(v)


def describe_change(change: dict[str, Any], target: str, dry_run: bool) -> list[str]:
    """One headline per change, plus one line per changed field for updates."""
    label = TARGETS[target].label
    if change.get("ref"):
        where = f" ({change['ref']})"
    else:
        where = f" (line {change['line']})" if change.get("line") else ""
    verb = _VERBS[change["action"]][0 if dry_run else 1]
    lines = [f"{verb} {label} {change['record']!r}{where}"]
    for d in change.get("diff", []):
        lines.append(f"    {d['field']}: {_value(d['before'])} → {_value(d['after'])}")
    return lines


def describe_error(error: dict[str, Any]) -> str:
    parts = []
    if error.get("ref"):
        parts.append(str(error["ref"]))
    elif error.get("line") is not None:
        parts.append(f"line {error['line']}")
    if error.get("field"):
        parts.append(f"field {error['field']!r}")
    where = ", ".join(parts)
    kind = "conflict" if error.get("kind") == "conflict" else "error"
    return f"{kind}: {where}: {error['message']}" if where else f"{kind}: {error['message']}"


def summary(report: dict[str, Any]) -> str:
    """The counts in words: "would be" for a run that wrote nothing (a dry run, or one
    that was aborted, failed or interrupted)."""
    if report.get("status") == "skipped":
        return "nothing read or written: a run of the profile was still going"
    c = report["counts"]
    verb = "" if report.get("applied", not report["dry_run"]) else "would be"
    parts = [
        f"{c['created']} {verb} created".replace("  ", " "),
        f"{c['updated']} {verb} updated".replace("  ", " "),
        f"{c['deleted']} {verb} deleted".replace("  ", " "),
        f"{c['unchanged']} unchanged",
        f"{c['invalid']} invalid",
        f"{c['conflicts']} conflicts",
    ]
    if c.get("skipped"):
        parts.append(f"{c['skipped']} skipped by the pre-filter")
    return ", ".join(parts)


_LOOKUP_SOURCES = {
    "private": "the private phonebook of {owner}",
    "phonebook": "the global phonebook",
    "users": "users",
    "speeddials": "speed dials",
}


def lookup_source(found: LookupResult) -> str:
    """Where a lookup found its name: `the private phonebook of alice`, `users`, …"""
    return _LOOKUP_SOURCES[found.source].format(owner=found.owner)


def lookup_match(found: LookupResult) -> str:
    """Which record and number matched, and how: `phonebook 17, phone +49 991 12345 =
    +4999112345 (matched +4999112345 by the whole number)`."""
    number = found.number
    if found.e164 and found.e164 != found.number:
        number += f" = {found.e164}"
    how = "its last digits" if found.match == "suffix" else "the whole number"
    return f"{found.target} {found.id}, {found.field} {number} (matched {found.asked} by {how})"
