"""Contracts of uploaded files: what is kept of the file a profile reads (`upload=yes`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from pbx_connector.models.base import Model


class UploadInfo(Model):
    """The file last uploaded to a profile, as every face shows it."""

    profile: str
    #: The file's name as it was uploaded (without any directory).
    name: str
    size: int = Field(description="bytes")
    sha256: str = Field(description="SHA-256 checksum of the file, hex")
    uploaded_at: datetime
    #: How the profile reads it: `csv` or `xlsx` (set from the name's extension).
    format: str
    #: What the upload changed besides the file: on a profile's first upload, default
    #: variables that name columns the file lacks are emptied, and each is named here.
    notes: list[str] = Field(default_factory=list)
