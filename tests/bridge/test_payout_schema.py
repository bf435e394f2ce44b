"""Migration 0003 creates exactly the payout tables the models describe, and can be undone."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect

from spsp_pull.store.database import Database, alembic_config
from spsp_pull.store.models import Base

PAYOUT_TABLES = {"payouts", "payout_batches", "payout_events", "lnurl_withdrawals"}


def _table_of(diff: Any) -> str | None:
    item = diff[0] if isinstance(diff, list) else diff
    for part in item[1:]:
        name = getattr(part, "name", None) if not isinstance(part, str) else None
        table = getattr(part, "table", None)
        if table is not None:
            return str(table.name)
        if name in PAYOUT_TABLES:
            return str(name)
        if isinstance(part, str) and part in PAYOUT_TABLES:
            return part
    return None


async def test_models_and_migration_agree(db: Database) -> None:
    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return [d for d in compare_metadata(context, Base.metadata) if _table_of(d) in PAYOUT_TABLES]

    async with db.engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_downgrade_and_upgrade_again(db: Database) -> None:
    def step(connection: Connection, target: str, down: bool) -> set[str]:
        config = alembic_config()
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, target)
        return set(inspect(connection).get_table_names())

    async with db.engine.connect() as connection:
        tables = await connection.run_sync(step, "0002", True)
        assert not tables & PAYOUT_TABLES and "pointers" in tables
        tables = await connection.run_sync(step, "head", False)
        assert tables >= PAYOUT_TABLES
        await connection.commit()
