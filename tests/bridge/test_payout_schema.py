"""Migration 0003 can be undone and redone (tests/store/test_schema.py checks that the tables it creates are
the ones the models describe)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Connection, inspect

from spsp_pull.store.database import Database
from spsp_pull.store.migrate import alembic_config

PAYOUT_TABLES = {"payouts", "payout_batches", "payout_events", "lnurl_withdrawals"}


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
