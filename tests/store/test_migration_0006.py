"""Migration 0006 (signer-scoped jti, BTP token pins, idempotency purge index) against the models, and down
and up again with data in the tables it changes."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection

from spsp_pull.domain.clock import ManualClock
from spsp_pull.offline import mint_offline_pointer
from spsp_pull.store.accounts import ensure_admin
from spsp_pull.store.database import Database, alembic_config
from spsp_pull.store.jwt_keys import is_revoked, open_offline_pointer, revoke_jwt
from spsp_pull.store.models import Base

TABLES = {"pointers", "revoked_jwts", "btp_token_pins", "idempotent_requests"}
SECRET = "shared-wallet-secret-of-32-bytes-or-more"
CLAIMS = {
    "amount": 10,
    "assetCode": "USD",
    "assetScale": 2,
    "interval": "P1D",
    "cycles": 3,
    "cap": False,
    "jti": "kept",
}


def _tables_of(diff: Any) -> set[str]:
    items = diff if isinstance(diff, list) else [diff]
    names: set[str] = set()
    for item in items:
        for part in item[1:]:
            table = getattr(part, "table", None)
            if table is not None:
                names.add(str(table.name))
            elif isinstance(part, str):
                names.add(part)
            elif getattr(part, "name", None) is not None:
                names.add(str(part.name))
    return names


async def test_models_and_migrations_agree_on_the_tables_0006_changes(db: Database) -> None:
    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return [d for d in compare_metadata(context, Base.metadata) if _tables_of(d) & TABLES]

    async with db.engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_down_to_0005_and_up_again_keeps_pointers_and_revocations(
    db: Database, clock: ManualClock
) -> None:
    now = clock.now()
    admin = await ensure_admin(db, "test-admin-key", now)
    token = mint_offline_pointer(CLAIMS, algorithm="HS256", secret=SECRET)
    registered = await open_offline_pointer(
        db, token, hs256_secret=SECRET, admin_account_id=admin.id, now=now
    )
    await revoke_jwt(db, admin.id, "lost", now)

    def downgrade(connection: Connection) -> None:
        raw = connection.connection.cursor()
        if connection.dialect.name == "sqlite":
            raw.execute("PRAGMA foreign_keys=OFF")  # as Database.migrate() does for SQLite's table rebuilds
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0005")
        connection.commit()
        if connection.dialect.name == "sqlite":
            raw.execute("PRAGMA foreign_keys=ON")
        raw.close()

    async with db.engine.connect() as connection:
        await connection.run_sync(downgrade)
    await db.migrate()
    # Registered before the signer was recorded (the downgrade dropped it): still this token's pointer.
    again = await open_offline_pointer(db, token, hs256_secret=SECRET, admin_account_id=admin.id, now=now)
    assert again.id == registered.id
    assert await is_revoked(db, admin.id, "lost")
