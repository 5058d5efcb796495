"""The REST API (`/api/v1`): a thin face over the application core."""

from __future__ import annotations

from pbx_connector.api.app import create_api

__all__ = ["create_api"]
