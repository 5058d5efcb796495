"""(being written)"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pbx_connector.service.app import App


class CatalogService:
    def __init__(self, app: App) -> None:
        self.app = app
