"""Migrations on start: the schema brought to alembic's newest revision (spsp_pull/store/migrations)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK_ID = 0x5_9_5_0  # PostgreSQL advisory lock held while migrating


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


async def upgrade_schema(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision; safe when several instances start at once (PostgreSQL: they
    take turns under an advisory lock)."""
    sqlite = engine.dialect.name == "sqlite"
    async with engine.connect() as conn:
        if not sqlite:
            await conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        else:
            await conn.run_sync(_sqlite_foreign_keys, False)
        try:
            await conn.run_sync(_upgrade)
            await conn.commit()
        finally:
            if not sqlite:
                await conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _MIGRATION_LOCK_ID})
                await conn.commit()
            else:
                await conn.run_sync(_sqlite_foreign_keys, True)


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _sqlite_foreign_keys(connection: Connection, on: bool) -> None:
    """Foreign keys off while migrating: SQLite changes a table's constraints by rebuilding it (copy, drop,
    rename), and dropping the old table would otherwise delete or refuse the rows that refer to it. Turned
    back on, they are checked once over the whole database."""
    cursor = connection.connection.cursor()  # the driver's connection: outside any transaction
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
        if on:
            cursor.execute("PRAGMA foreign_key_check")
            if (violation := cursor.fetchone()) is not None:
                raise RuntimeError(f"a migration left a row without its parent: {violation}")
    finally:
        cursor.close()
