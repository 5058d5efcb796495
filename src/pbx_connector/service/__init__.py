"""The application core: every use case of the product, for the CLI, the API and the web
pages alike. A face builds one `App` from an engine, calls one of its functions, and
presents the typed result; it holds no business rule and never talks to the store."""

from __future__ import annotations

from pbx_connector.service.app import DB_ENV, App, database_error

__all__ = ["DB_ENV", "App", "database_error"]
