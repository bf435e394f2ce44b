"""The database schema in tests: what the models and the migrations disagree on, and stepping the migrations
down (with data put in at the older revision) before `Database.migrate()` brings them up again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import CheckConstraint, Connection, inspect

from spsp_pull.store.database import Database
from spsp_pull.store.migrate import alembic_config
from spsp_pull.store.models import Base


async def schema_differences(db: Database) -> list[Any]:
    """Every difference (tables, columns, types, indexes, constraints) between the models and the migrated
    database; CHECK constraints (which Alembic does not compare) by name."""

    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata)) + check_differences(connection)

    async with db.engine.connect() as connection:
        return await connection.run_sync(compare)


def check_differences(connection: Connection) -> list[Any]:
    """("check", table, name, where) for each named CHECK constraint only the models or only the database
    has."""
    inspector = inspect(connection)
    found = []
    for table in Base.metadata.sorted_tables:
        modelled = {str(c.name) for c in table.constraints if isinstance(c, CheckConstraint)}
        migrated = {str(c["name"]) for c in inspector.get_check_constraints(table.name)}
        found += [("check", table.name, name, "models only") for name in sorted(modelled - migrated)]
        found += [("check", table.name, name, "database only") for name in sorted(migrated - modelled)]
    return found


async def downgrade(db: Database, revision: str, fill: Callable[[Connection], None] | None = None) -> None:
    """Migrate `db` down to `revision`, then let `fill` write rows as that revision's schema has them."""

    def down(connection: Connection) -> None:
        raw = connection.connection.cursor()
        if connection.dialect.name == "sqlite":
            raw.execute("PRAGMA foreign_keys=OFF")  # as Database.migrate() does for SQLite's table rebuilds
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
        if fill is not None:
            fill(connection)
        connection.commit()
        if connection.dialect.name == "sqlite":
            raw.execute("PRAGMA foreign_keys=ON")
        raw.close()

    async with db.engine.connect() as connection:
        await connection.run_sync(down)
