"""The store's schema: bring it up to date, check it, repair it. These work on a URL, not
an `App`, because opening an `App` already upgrades the schema."""

from __future__ import annotations

from pydantic import Field

from pbx_connector.models.base import Model
from pbx_connector.store import db as store_db


class SchemaReport(Model):
    url: str
    revision: str
    #: Whether `upgrade` migrated the schema to a newer revision.
    upgraded: bool = False
    #: What is (or, after `upgrade`, was) missing of the schema.
    problems: list[str] = Field(default_factory=list)


def upgrade(url: str | None) -> SchemaReport:
    """Migrate to the newest revision and repair what is missing (indexes, tables)."""
    engine = store_db.make_engine(store_db.resolve_url(url))
    try:
        changed = store_db.upgrade(engine)
        repaired = store_db.repair_schema(engine)
        return SchemaReport(
            url=store_db.display_url(str(engine.url)),
            revision=store_db.head_revision(),
            upgraded=changed,
            problems=repaired,
        )
    finally:
        engine.dispose()


def check(url: str | None) -> SchemaReport:
    """What the store lacks of the schema of this version (empty `problems`: intact)."""
    engine = store_db.make_engine(store_db.resolve_url(url))
    try:
        store_db.upgrade(engine)
        return SchemaReport(
            url=store_db.display_url(str(engine.url)),
            revision=store_db.head_revision(),
            problems=store_db.check_schema(engine),
        )
    finally:
        engine.dispose()
