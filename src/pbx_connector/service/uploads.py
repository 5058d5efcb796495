"""Uploaded files: the file a profile reads when its `upload` setting is `yes`.

An upload is kept in the data directory (see `sources.upload`), checked by reading its
header with the profile's settings, and only then made the profile's file: its `path`
names it, `upload` becomes `yes`, and `format` follows the file name's extension (`.xlsx`
is read as xlsx, `.csv` and `.txt` as CSV; another extension keeps the format). Its
original name, size, SHA-256 checksum and upload time are kept as the profile's source
state `upload`. A file that cannot be read, is too large or is empty changes nothing."""

from __future__ import annotations

import copy
import os
import unicodedata
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any, Final

from pbx_connector import profiles as rules
from pbx_connector.errors import ConflictError, PbxConnectorError, UsageError
from pbx_connector.models.uploads import UploadInfo
from pbx_connector.sources.registry import open_source
from pbx_connector.sources.upload import keep_upload, remove_other_uploads, safe_suffix
from pbx_connector.store.profiles import Profile, get_profile, save_profile
from pbx_connector.store.source_state import get_state, set_state
from pbx_connector.sync.runner import check_profile, compile_mapper

if TYPE_CHECKING:
    from pbx_connector.service.app import App

#: The largest file an upload may be, in bytes.
MAX_UPLOAD_BYTES: Final = 64 * 1024 * 1024
#: The name of the source state that describes a profile's uploaded file.
STATE: Final = "upload"
#: How a file is read, by its name's extension.
FORMAT_OF: Final = {".xlsx": "xlsx", ".xlsm": "xlsx", ".csv": "csv", ".txt": "csv"}
_ATTEMPTS: Final = 3


def clean_filename(filename: str) -> str:
    """The name to keep and show: without any directory, printable, at most 255
    characters; `upload` when nothing is left."""
    base = os.path.basename((filename or "").replace("\\", "/")).strip()
    base = "".join(c for c in base if unicodedata.category(c)[0] != "C")
    return base[:255] or "upload"


def _same(a: Profile, b: Profile) -> bool:
    return (a.id, a.settings, a.variables, a.prefilter, a.updated_at) == (
        b.id,
        b.settings,
        b.variables,
        b.prefilter,
        b.updated_at,
    )


class UploadsService:
    """Upload the file a profile reads, and say what was uploaded."""

    def __init__(self, app: App) -> None:
        self.app = app

    def upload(self, profile_name: str, stream: IO[bytes], filename: str) -> UploadInfo:
        """Keep `stream` (at most `MAX_UPLOAD_BYTES`) as the file of the profile, which
        from now on reads it (`upload=yes`). Raises UsageError (field `file`) when the
        file is empty, too large, or cannot be read with the profile's settings."""
        name = clean_filename(filename)
        profile = self._load(profile_name)
        if profile.source != "csv":
            raise UsageError(
                f"the profile {profile.name!r} reads a directory ({profile.source}), not a "
                "file: there is nothing to upload to it",
                field="file",
            )
        assert profile.id is not None
        kept = keep_upload(profile.id, stream, name, MAX_UPLOAD_BYTES)
        changes = {"upload": "yes", "path": str(kept.path)}
        # From now on the profile reads this file, not a URL or a share it read before.
        if profile.settings.get("url", "").strip():
            changes["url"] = ""
        if profile.settings.get("use_share", "no") == "yes":
            changes["use_share"] = "no"
        if fmt := FORMAT_OF.get(safe_suffix(name)):
            changes["format"] = fmt
        now = datetime.now(UTC)
        state: dict[str, Any] = {
            "name": name,
            "size": kept.size,
            "sha256": kept.sha256,
            "uploaded_at": now.isoformat(),
        }
        first = self._state(profile) is None
        notes: list[str] = []
        try:
            for _ in range(_ATTEMPTS):
                changed = copy.deepcopy(profile)
                rules.apply_settings(changed, changes)
                if first:
                    # As when a profile is made with its file: default variables that
                    # name columns the file lacks are emptied (the notes say which).
                    notes = rules.fit_variables_to_source(changed)
                _check_fits(changed, str(kept.path), name)
                with self.app.transaction() as conn:
                    stored = get_profile(conn, profile_name)
                    if _same(stored, profile) and first == (
                        get_state(conn, profile.id, STATE) is None
                    ):
                        save_profile(conn, changed)
                        set_state(conn, profile.id, STATE, state)
                        break
                profile = self._load(profile_name)
                if profile.id != changed.id:
                    raise ConflictError(f"the profile {profile_name!r} was replaced meanwhile")
            else:
                raise ConflictError(
                    f"the profile {profile_name!r} kept changing while the file was "
                    "uploaded; try again"
                )
        except BaseException:
            if profile.settings.get("path") != str(kept.path):
                kept.path.unlink(missing_ok=True)
            raise
        remove_other_uploads(changed.id or 0, kept.path)
        return UploadInfo(
            profile=profile.name,
            name=name,
            size=kept.size,
            sha256=kept.sha256,
            uploaded_at=now,
            format=changed.settings.get("format", "csv") or "csv",
            notes=notes,
        )

    def info(self, profile_name: str) -> UploadInfo | None:
        """What was last uploaded to the profile; None when nothing was."""
        with self.app.reading() as conn:
            profile = get_profile(conn, profile_name)
            assert profile.id is not None
            state = get_state(conn, profile.id, STATE)
        if not state:
            return None
        return UploadInfo(
            profile=profile.name,
            name=str(state.get("name", "")),
            size=int(state.get("size", 0)),
            sha256=str(state.get("sha256", "")),
            uploaded_at=datetime.fromisoformat(str(state.get("uploaded_at"))),
            format=profile.settings.get("format", "csv") or "csv",
        )

    def _state(self, profile: Profile) -> dict[str, Any] | None:
        assert profile.id is not None
        with self.app.reading() as conn:
            return get_state(conn, profile.id, STATE)

    def _load(self, name: str) -> Profile:
        with self.app.reading() as conn:
            return get_profile(conn, name)


def _check_fits(profile: Profile, path: str, name: str) -> None:
    """The file's header must read with the profile's settings (format, sheet, encoding…)
    and have the columns its variables and key use: what a run checks before its first
    row."""
    try:
        source = open_source(profile.source, profile.settings, profile.secrets, owner=profile.id)
        source.fields()
    except PbxConnectorError as exc:
        message = exc.message.replace(path, repr(name))
        raise UsageError(
            f"the file cannot be read with the profile's settings: {message}", field="file"
        ) from None
    try:
        check_profile(profile, compile_mapper(profile), source)
    except PbxConnectorError as exc:
        message = exc.message.replace(path, repr(name))
        raise UsageError(
            f"the file does not fit the profile's variables: {message}", field="file"
        ) from None
