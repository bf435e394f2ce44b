"""Migration 0005 (per-account webhook secrets, per-payout notification secrets, outbox owners) against the
models, and from 0004 with data: every account gets its own random secret, queued messages their account,
and the shared secret and bearer token leave the server settings."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text

from spsp_pull.domain.clock import ManualClock
from spsp_pull.store import pointers
from spsp_pull.store.accounts import create_account, ensure_admin, webhook_secret
from spsp_pull.store.database import Database, alembic_config
from spsp_pull.store.models import Base
from tests.store.pointer_factory import terms
from tests.store.test_migration_0006 import _tables_of

TABLES = {"accounts", "payouts", "webhook_outbox"}


async def test_models_and_migrations_agree_on_the_tables_0005_changes(db: Database) -> None:
    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return [d for d in compare_metadata(context, Base.metadata) if _tables_of(d) & TABLES]

    async with db.engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_from_0004_every_account_gets_its_own_secret_and_queued_messages_their_account(
    db: Database, clock: ManualClock
) -> None:
    now = clock.now()
    admin = await ensure_admin(db, "test-admin-key", now)
    shop = (await create_account(db, "shop", now)).account
    pointer = await pointers.create_pointer(
        db, pointers.NewPointer(account_id=shop.id, terms=terms(now), webhook="https://shop.example/h"), now
    )

    def down_and_fill(connection: Connection) -> None:
        raw = connection.connection.cursor()
        if connection.dialect.name == "sqlite":
            raw.execute("PRAGMA foreign_keys=OFF")  # as Database.migrate() does for SQLite's table rebuilds
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0004")
        connection.execute(
            text(
                "INSERT INTO webhook_outbox (pointer_id, url, event, body, state, attempts, next_attempt_at,"
                " created_at) VALUES (:pointer, 'https://shop.example/h', 'pull.completed', '{}', 'pending',"
                " 0, :now, :now)"
            ),
            {"pointer": pointer.id, "now": now},
        )
        connection.execute(
            text(
                "INSERT INTO server_settings (name, value) VALUES ('webhook_signing_secret', 'shared'),"
                " ('webhook_bearer_token', 'bearer'), ('kept_setting', 'kept')"
            )
        )
        connection.commit()
        if connection.dialect.name == "sqlite":
            raw.execute("PRAGMA foreign_keys=ON")
        raw.close()

    async with db.engine.connect() as connection:
        await connection.run_sync(down_and_fill)
    await db.migrate()

    secrets = {(await webhook_secret(db, account.id, now)).secret for account in (admin, shop)}
    assert len(secrets) == 2 and all(len(secret) >= 43 for secret in secrets)
    async with db.engine.connect() as connection:
        owners = (await connection.execute(text("SELECT account_id FROM webhook_outbox"))).scalars().all()
        settings = (await connection.execute(text("SELECT name FROM server_settings"))).scalars().all()
    assert owners == [shop.id]
    assert "kept_setting" in settings
    assert not {"webhook_signing_secret", "webhook_bearer_token"} & set(settings)
