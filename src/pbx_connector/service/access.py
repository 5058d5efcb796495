"""Who may read what. Changing anything needs the admin role, in every face. Most reads
are open to viewers too, but not these: the directory settings (which server, which
service account) and the API tokens of every user. The API and the pages both ask here,
so that a viewer sees the same in both."""

from __future__ import annotations

from pbx_connector.errors import PermissionDenied

#: What only an administrator may read, and how a refusal names it.
ADMIN_ONLY_READS: dict[str, str] = {
    "auth_settings": "the directory settings",
    "tokens": "the API tokens",
}


def may_read(can_write: bool, what: str) -> bool:
    """Whether someone with (`can_write`) or without the admin role may read `what`."""
    return can_write or what not in ADMIN_ONLY_READS


def require_read(can_write: bool, what: str) -> None:
    if not may_read(can_write, what):
        raise PermissionDenied(f"reading {ADMIN_ONLY_READS[what]} needs the admin role")
