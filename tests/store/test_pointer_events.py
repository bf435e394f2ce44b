"""Events about a pointer, queued in the transaction of the change; a pause with an end queues its
pointer.resumed dated and due at that end, and a later change withdraws it (and queues it again while a pause
with an end still holds)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from spsp_pull.domain.agreement import Changes
from spsp_pull.domain.clock import ManualClock, isoformat_z
from spsp_pull.store import models, outbox, pointers
from spsp_pull.store.accounts import ensure_admin
from spsp_pull.store.database import Database
from spsp_pull.store.records import PointerRecord
from tests.domain.test_agreement import make_terms

HOOK = "https://wallet.example/hooks"


def data(record: PointerRecord, at: datetime) -> dict[str, object]:
    return {"token": record.token, "at": isoformat_z(at)}


async def queued(db: Database, record: PointerRecord) -> list[tuple[str, str, datetime]]:
    async with db.read() as session:
        rows = (
            await session.scalars(
                select(models.WebhookMessage)
                .where(models.WebhookMessage.pointer_id == record.id)
                .order_by(models.WebhookMessage.id)
            )
        ).all()
        return [(row.event, row.state, row.next_attempt_at) for row in rows]


async def test_a_pause_with_an_end_announces_the_resume_at_that_end(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    admin = await ensure_admin(db, "k", now)
    spec = pointers.NewPointer(account_id=admin.id, terms=make_terms(start=now), webhook=HOOK)
    record = await pointers.create_pointer(db, spec, now, event_data=data)
    end, later_end = now + timedelta(days=2), now + timedelta(days=5)

    async def change(at: datetime, **changes: object) -> None:
        await pointers.revise_pointer(db, admin.id, record.token, Changes(**changes), at, event_data=data)  # type: ignore[arg-type]

    await change(now, paused=True, resumes_at=end)
    assert await queued(db, record) == [
        ("pointer.created", "pending", now),
        ("pointer.paused", "pending", now),
        ("pointer.resumed", "pending", end),
    ]
    due_now = await outbox.claim_due(db, now=now, claim_for=timedelta(seconds=30), limit=10)
    assert [m.event for m in due_now] == ["pointer.created", "pointer.paused"]
    due_at_end = await outbox.claim_due(db, now=end, claim_for=timedelta(seconds=30), limit=10)
    [resumed] = [m for m in due_at_end if m.event == "pointer.resumed"]
    assert (resumed.event, resumed.created_at) == ("pointer.resumed", end)
    assert resumed.body == f'{{"at":"{isoformat_z(end)}","token":"{record.token}"}}'
    await outbox.release_claims(db, [m.id for m in due_at_end])

    await change(now + timedelta(hours=1), paused=True, resumes_at=later_end)  # the end moved
    await change(now + timedelta(hours=2), amount=500)  # other terms: the end stays
    assert [(e, s, t) for e, s, t in await queued(db, record) if e == "pointer.resumed"] == [
        ("pointer.resumed", "withdrawn", end),
        ("pointer.resumed", "withdrawn", later_end),
        ("pointer.resumed", "pending", later_end),
    ]
    early = now + timedelta(days=1)
    await change(early, paused=False)
    assert (await queued(db, record))[-2:] == [
        ("pointer.resumed", "withdrawn", later_end),
        ("pointer.resumed", "pending", early),
    ]

    await change(early, paused=True, resumes_at=later_end)
    await pointers.cancel_pointer(db, admin.id, record.token, early, event_data=data)
    assert (await queued(db, record))[-2:] == [
        ("pointer.resumed", "withdrawn", later_end),
        ("pointer.cancelled", "pending", early),
    ]


async def test_a_pause_that_ended_stays_announced(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    admin = await ensure_admin(db, "k", now)
    spec = pointers.NewPointer(account_id=admin.id, terms=make_terms(start=now), webhook=HOOK)
    record = await pointers.create_pointer(db, spec, now, event_data=data)
    end = now + timedelta(days=1)
    await pointers.revise_pointer(
        db, admin.id, record.token, Changes(paused=True, resumes_at=end), now, event_data=data
    )
    await pointers.revise_pointer(db, admin.id, record.token, Changes(amount=7), end, event_data=data)
    assert [(e, s) for e, s, _ in await queued(db, record)] == [
        ("pointer.created", "pending"),
        ("pointer.paused", "pending"),
        ("pointer.resumed", "pending"),
        ("pointer.updated", "pending"),
    ]
