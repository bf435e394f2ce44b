"""Migration 0009: the database refuses a webhook message state or a payout batch state outside its enum
(CHECK constraints), the models write and read the enum's members, and the migration steps down to 0008 and
up again with rows in the tables it changes (tests/store/test_schema.py compares the constraints with the
models)."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from spsp_pull.domain.clock import ManualClock
from spsp_pull.domain.states import PayoutBatchState, WebhookMessageState
from spsp_pull.store import models, payouts
from spsp_pull.store.database import Database
from tests.store.schema import downgrade


async def state_rows(db: Database, now: datetime) -> tuple[int, int]:
    """A delivered webhook message and a signed batch, written through the store: their ids."""
    async with db.write() as session:
        message = models.WebhookMessage(
            url="http://127.0.0.1:9/hook",
            event="pointer.created",
            body="{}",
            state=WebhookMessageState.DELIVERED,
            attempts=1,
            next_attempt_at=now,
            created_at=now,
        )
        session.add(message)
        batch = payouts.insert_batch(session, now=now, claimed_until=now)
        await session.flush()
        payouts.batch_signed(batch, txid="00" * 32, tx_hex="00", fee_sat=1, inputs=[], now=now)
        return message.id, batch.id


async def set_state(db: Database, table: str, value: str) -> None:
    async with db.write() as session:
        await session.execute(text(f"UPDATE {table} SET state = :value"), {"value": value})


@pytest.mark.parametrize("table", ["webhook_outbox", "payout_batches"])
async def test_the_database_refuses_a_state_outside_the_enum(
    db: Database, clock: ManualClock, table: str
) -> None:
    await state_rows(db, clock.now())
    with pytest.raises(IntegrityError):
        await set_state(db, table, "lost")


async def test_rows_read_back_as_enum_members(db: Database, clock: ManualClock) -> None:
    message_id, batch_id = await state_rows(db, clock.now())
    async with db.read() as session:
        message = await session.get(models.WebhookMessage, message_id)
        batch = await session.get(models.PayoutBatch, batch_id)
        assert message is not None and batch is not None
        assert message.state is WebhookMessageState.DELIVERED
        assert batch.state is PayoutBatchState.SIGNED
        signed = select(models.PayoutBatch.id).where(models.PayoutBatch.state == PayoutBatchState.SIGNED)
        assert (await session.scalars(signed)).all() == [batch_id]


async def test_down_to_0008_and_up_again_keeps_the_rows_and_the_checks(
    db: Database, clock: ManualClock
) -> None:
    message_id, batch_id = await state_rows(db, clock.now())
    await downgrade(db, "0008")
    await set_state(db, "payout_batches", "broadcast")  # any text goes at 0008; this one is valid
    await db.migrate()
    async with db.read() as session:
        message = await session.get(models.WebhookMessage, message_id)
        batch = await session.get(models.PayoutBatch, batch_id)
        assert message is not None and batch is not None
        assert (message.state, batch.state) == (WebhookMessageState.DELIVERED, PayoutBatchState.BROADCAST)
    for table in ("webhook_outbox", "payout_batches"):
        with pytest.raises(IntegrityError):
            await set_state(db, table, "lost")
