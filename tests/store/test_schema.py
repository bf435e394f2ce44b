"""The migrations build exactly the schema the models describe, every table of it."""

from __future__ import annotations

from spsp_pull.store.database import Database
from tests.store.schema import schema_differences


async def test_models_and_migrations_agree_on_every_table(db: Database) -> None:
    assert await schema_differences(db) == []
