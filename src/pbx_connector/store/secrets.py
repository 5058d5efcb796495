"""The instance key: encrypts stored source secrets and keys the records' content hashes.

It lives outside the database (a file in the data directory, or the environment), so that
a copy of the database alone reveals no source password.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from pbx_connector.errors import ConfigError

ENV_KEY = "PBX_CONNECTOR_SECRET_KEY"
KEY_FILE = "secret.key"


def _key_path() -> Path:
    from pbx_connector.store.db import data_dir  # the data dir is made on first use

    return data_dir() / KEY_FILE


@lru_cache(maxsize=4)
def _load_key(env_value: str | None, path: Path) -> bytes:
    if env_value:
        key = env_value.encode()
    elif path.exists():
        key = path.read_bytes().strip()
    else:
        key = Fernet.generate_key()
        # Created with owner-only permissions before anything is written to it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key + b"\n")
    try:
        Fernet(key)
    except ValueError:
        raise ConfigError(
            f"the instance key ({ENV_KEY} or {path}) is not a valid Fernet key"
        ) from None
    return key


def instance_key() -> bytes:
    return _load_key(os.environ.get(ENV_KEY), _key_path())


def encrypt_json(values: dict[str, str]) -> str | None:
    if not values:
        return None
    return Fernet(instance_key()).encrypt(json.dumps(values).encode()).decode()


def decrypt_json(token: str | None) -> dict[str, str]:
    if not token:
        return {}
    try:
        data = Fernet(instance_key()).decrypt(token.encode())
    except InvalidToken:
        raise ConfigError(
            "stored secrets cannot be decrypted with this instance key; set them again"
        ) from None
    result: dict[str, str] = json.loads(data)
    return result


def hash_key() -> bytes:
    """A key for content hashes, derived so that it differs from the encryption key."""
    raw = base64.urlsafe_b64decode(instance_key())
    return hashlib.blake2b(raw, digest_size=32, person=b"pbxc-hash").digest()
