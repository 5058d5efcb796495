"""First start of a service: what an administrator needs to sign in for the first time."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from pbx_connector.domain.targets import ADMIN_USERNAME
from pbx_connector.store import records as record_store

if TYPE_CHECKING:
    from pbx_connector.service.app import App

#: Characters of a first password: letters and digits without look-alikes (0/O, 1/l/I),
#: so that it can be read off a terminal and typed.
_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_LENGTH = 20


class SetupService:
    def __init__(self, app: App) -> None:
        self.app = app

    def first_admin_password(self) -> str | None:
        """A new password for the built-in admin when it has none yet (a fresh store),
        to be shown once; None when the admin has a password (or does not sign in with
        a local one). Only its hash is stored."""
        plain = "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))
        with self.app.transaction() as conn:
            return plain if record_store.set_first_admin_password(conn, plain) else None

    def admin_needs_password(self) -> bool:
        """Whether the built-in admin signs in with a local password and has none."""
        admin = self.app.records.get("users", ADMIN_USERNAME)
        return admin.auth == "internal" and not admin.password_set
