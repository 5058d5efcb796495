"""Location `upload` of a file source: a file uploaded to the instance (see
`sources.location`), and how such files are kept.

An uploaded file is kept in the data directory, in an owner-only directory per profile
(`<data>/uploads/<profile id>/`), under a name made of its SHA-256 checksum. A new upload
is written to a temporary file in that directory, synced to disk and renamed to its
final name: a run reading the previous file meanwhile reads it to the end, and a crash
leaves either the old file or the new one, never half of one. The profile's `path`
setting then names the new file (see `service.uploads`), and the older files of the
profile are removed.

With `upload=yes` a profile reads the file its `path` names, and only if that is a file
kept in the profile's own directory: a profile made before anything was uploaded to it,
or imported (from another instance, or from this one: its `path` then names another
profile's file), says so, instead of reading some other file."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from pbx_connector.errors import ConfigError, TooLargeError, UsageError
from pbx_connector.sources.location import LocalFile, Location, LocationKind

#: The directory of the data directory that holds uploaded files.
UPLOADS_DIR: Final = "uploads"
_CHUNK: Final = 1024 * 1024
_TEMP_PREFIX: Final = ".upload-"
_SUFFIX: Final = re.compile(r"\.[A-Za-z0-9]{1,8}")


def _chosen(settings: Mapping[str, str]) -> bool:
    return settings.get("upload", "no") == "yes"


def _check(settings: Mapping[str, str]) -> None:
    """Nothing to check when set: a profile is made before its file is uploaded."""


def uploads_root() -> Path:
    from pbx_connector.store.db import private_dir

    return private_dir(UPLOADS_DIR)


def profile_dir(profile_id: int) -> Path:
    """The owner-only directory of a profile's uploaded files, made when missing."""
    path = uploads_root() / str(int(profile_id))
    if not path.is_dir():
        path.mkdir(mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _kept_file(settings: Mapping[str, str], owner: int | None) -> Path | None:
    """The uploaded file the settings name, when they name one kept in the upload
    directory of the profile `owner` (None: of no profile, so none)."""
    text = settings.get("path", "").strip()
    if owner is None or not text:
        return None
    path = Path(text)
    try:
        inside = path.resolve().parent == (uploads_root() / str(int(owner))).resolve()
    except OSError:
        return None
    return path if inside and path.name and not path.name.startswith(".") else None


def _build(
    settings: Mapping[str, str], _secrets: Mapping[str, str], owner: int | None = None
) -> Location:
    path = _kept_file(settings, owner)
    if path is None or not path.is_file():
        raise ConfigError(
            "no file has been uploaded to this profile yet (upload one, or set upload=no "
            "and a path)",
            field="upload",
        )
    return LocalFile(path)


UPLOAD = LocationKind("upload", _chosen, _check, _build)


# --- keeping an uploaded file ---------------------------------------------------------------


@dataclass(frozen=True)
class KeptUpload:
    """A file written to a profile's upload directory (not yet the profile's file)."""

    path: Path
    size: int
    sha256: str


def safe_suffix(filename: str) -> str:
    """The file name's extension when it is a plain one (`.xlsx`), lower case; else none."""
    suffix = os.path.splitext(os.path.basename(filename.replace("\\", "/")))[1]
    return suffix.lower() if _SUFFIX.fullmatch(suffix) else ""


def keep_upload(profile_id: int, stream: IO[bytes], filename: str, limit: int) -> KeptUpload:
    """Write `stream` to the profile's upload directory: to a temporary file first,
    synced, then renamed to `<checksum><suffix>`. More than `limit` bytes raise
    UsageError and keep nothing."""
    directory = profile_dir(profile_id)
    fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=directory)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise TooLargeError(
                        f"the file is larger than {limit // (1024 * 1024)} MiB, the most an "
                        "upload may be",
                        field="file",
                    )
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size == 0:
            raise UsageError("the file is empty", field="file")
        checksum = digest.hexdigest()
        final = directory / f"{checksum}{safe_suffix(filename)}"
        os.replace(temp, final)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    _sync_dir(directory)
    return KeptUpload(final, size, checksum)


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_other_uploads(profile_id: int, keep: Path | None) -> None:
    """Remove a profile's uploaded files but `keep` (and temporary files of uploads
    that a crash interrupted)."""
    directory = uploads_root() / str(int(profile_id))
    if not directory.is_dir():
        return
    stale = time.time() - 3600
    for path in directory.iterdir():
        if keep is not None and path.name == keep.name:
            continue
        try:
            # A temporary file may be another upload being written right now.
            if path.name.startswith(_TEMP_PREFIX) and path.stat().st_mtime > stale:
                continue
            path.unlink()
        except FileNotFoundError:
            pass
