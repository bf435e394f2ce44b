"""`allowance.low`: queued once per cycle when 80 % of what the cycle makes pullable is used, never while
paused, never without a webhook."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import select

from spsp_pull.domain.agreement import Changes
from spsp_pull.domain.clock import ManualClock
from spsp_pull.domain.states import ReservationKind
from spsp_pull.store import allowance_low, models, outbox, pointers, reservations
from spsp_pull.store.accounts import ensure_admin
from spsp_pull.store.database import Database
from spsp_pull.store.records import PointerRecord
from tests.domain.test_agreement import MONTHLY, make_terms

HOOK = "https://wallet.example/hooks"
LEASE = timedelta(minutes=1)


async def pointer(
    db: Database, now: datetime, *, webhook: str | None = HOOK, **terms: object
) -> PointerRecord:
    admin = await ensure_admin(db, "k", now)
    spec = pointers.NewPointer(
        account_id=admin.id, terms=make_terms(start=now, amount=1000, **terms), webhook=webhook
    )
    return await pointers.create_pointer(db, spec, now)


async def pull(db: Database, record: PointerRecord, amount: int, now: datetime) -> bool:
    grant = await reservations.reserve(
        db, record.id, amount, kind=ReservationKind.STREAM, now=now, lease=LEASE
    )
    assert grant is not None and grant.amount == amount
    await reservations.settle(db, grant.reservation_id, amount, now=now)
    return await allowance_low.warn_if_low(db, record.id, now=now)


async def low_events(db: Database, record: PointerRecord) -> list[dict[str, object]]:
    async with db.read() as session:
        rows = (
            await session.scalars(
                select(models.WebhookMessage)
                .where(
                    models.WebhookMessage.pointer_id == record.id,
                    models.WebhookMessage.event == "allowance.low",
                )
                .order_by(models.WebhookMessage.id)
            )
        ).all()
        return [json.loads(row.body) for row in rows]


async def test_once_per_cycle_at_eighty_percent(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    record = await pointer(db, now, cap=True)
    assert not await pull(db, record, 799, now)
    assert await pull(db, record, 1, now)  # 800 of 1000
    assert not await pull(db, record, 100, now)  # this cycle was warned
    next_cycle = MONTHLY.step(now, 1)
    assert not await pull(db, record, 100, next_cycle)
    assert await pull(db, record, 750, next_cycle + timedelta(days=1))
    [first, second] = await low_events(db, record)
    assert first == {
        "token": record.token,
        "cycle": 1,
        "cycleEnds": "2024-02-29T12:00:00.000Z",
        "used": "800",
        "available": "200",
        "assetCode": "USD",
        "assetScale": 2,
    }
    assert (second["cycle"], second["used"], second["available"]) == (2, "850", "150")
    assert [event for _, event, _ in await outbox.messages_for_pointer(db, record.id)] == [
        "allowance.low"
    ] * 2


async def test_without_cap_the_share_is_of_what_the_cycle_makes_pullable(
    db: Database, clock: ManualClock
) -> None:
    now = clock.now()
    record = await pointer(db, now, cap=False)
    assert not await pull(db, record, 100, now)
    later = MONTHLY.step(now, 1)  # 1900 pullable: 900 carried and 1000 granted
    assert not await pull(db, record, 1519, later)
    assert await pull(db, record, 1, later)  # 1520 of 1900 is 80 %
    [event] = await low_events(db, record)
    assert (event["used"], event["available"]) == ("1520", "380")


async def test_nothing_while_paused_nor_without_a_webhook(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    record = await pointer(db, now, cap=True)
    grant = await reservations.reserve(db, record.id, 900, kind=ReservationKind.STREAM, now=now, lease=LEASE)
    assert grant is not None
    await pointers.revise_pointer(db, record.account_id, record.token, Changes(paused=True), now)
    await reservations.settle(db, grant.reservation_id, 900, now=now)  # a pull under way when paused
    assert not await allowance_low.warn_if_low(db, record.id, now=now)
    resumed = now + timedelta(hours=1)
    await pointers.revise_pointer(db, record.account_id, record.token, Changes(paused=False), resumed)
    assert await allowance_low.warn_if_low(db, record.id, now=resumed)

    silent = await pointer(db, now, webhook=None, cap=True)
    assert not await pull(db, silent, 900, now)
    assert await low_events(db, silent) == []
