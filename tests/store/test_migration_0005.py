"""Migration 0005 (per-account webhook secrets, per-payout notification secrets, outbox owners) from 0004 with
data: every account gets its own random secret, queued messages their account, and the shared secret and
bearer token leave the server settings (tests/store/test_schema.py compares its tables with the models)."""

from __future__ import annotations

from sqlalchemy import Connection, text

from spsp_pull.domain.clock import ManualClock
from spsp_pull.store import pointers
from spsp_pull.store.accounts import create_account, ensure_admin, webhook_secret
from spsp_pull.store.database import Database
from tests.store.pointer_factory import terms
from tests.store.schema import downgrade


async def test_from_0004_every_account_gets_its_own_secret_and_queued_messages_their_account(
    db: Database, clock: ManualClock
) -> None:
    now = clock.now()
    admin = await ensure_admin(db, "test-admin-key", now)
    shop = (await create_account(db, "shop", now)).account
    pointer = await pointers.create_pointer(
        db, pointers.NewPointer(account_id=shop.id, terms=terms(now), webhook="https://shop.example/h"), now
    )

    def fill(connection: Connection) -> None:
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

    await downgrade(db, "0004", fill)
    await db.migrate()

    secrets = {(await webhook_secret(db, account.id, now)).secret for account in (admin, shop)}
    assert len(secrets) == 2 and all(len(secret) >= 43 for secret in secrets)
    async with db.engine.connect() as connection:
        owners = (await connection.execute(text("SELECT account_id FROM webhook_outbox"))).scalars().all()
        settings = (await connection.execute(text("SELECT name FROM server_settings"))).scalars().all()
    assert owners == [shop.id]
    assert "kept_setting" in settings
    assert not {"webhook_signing_secret", "webhook_bearer_token"} & set(settings)
