"""Idempotency-Key claims and stored responses expire, on a SQLite file and on PostgreSQL, by the injected
clock: a crashed request's claim lapses, an old response is forgotten and purged in bounded batches."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import event, select

from spsp_pull.domain.clock import ManualClock
from spsp_pull.store import idempotency, models
from spsp_pull.store.database import Database
from spsp_pull.store.idempotency import IN_PROGRESS, Expiry, StoredResponse

EXPIRY = Expiry(claim_ttl=timedelta(seconds=60), retention=timedelta(hours=24))


async def stored_keys(db: Database) -> set[str]:
    async with db.read() as session:
        return set((await session.scalars(select(models.IdempotentRequest.key))).all())


async def test_a_crashed_requests_claim_lapses_after_the_claim_ttl(db: Database, clock: ManualClock) -> None:
    crashed_at = clock.now()
    assert await idempotency.claim(db, 1, "k", "body-1", crashed_at, EXPIRY) is None
    clock.advance(timedelta(seconds=59))
    held = await idempotency.claim(db, 1, "k", "body-1", clock.now(), EXPIRY)
    assert held == StoredResponse("body-1", IN_PROGRESS, "", "")
    clock.advance(timedelta(seconds=1))
    retried_at = clock.now()
    assert await idempotency.claim(db, 1, "k", "body-1", retried_at, EXPIRY) is None
    assert await idempotency.complete(db, 1, "k", retried_at, 201, '{"ok":1}', "application/json")
    replay = await idempotency.claim(db, 1, "k", "body-1", clock.now(), EXPIRY)
    assert replay == StoredResponse("body-1", 201, '{"ok":1}', "application/json")


async def test_a_request_that_outlived_its_claim_cannot_touch_its_successors(
    db: Database, clock: ManualClock
) -> None:
    slow_at = clock.now()
    assert await idempotency.claim(db, 1, "k", "body", slow_at, EXPIRY) is None
    clock.advance(timedelta(seconds=61))
    successor_at = clock.now()
    assert await idempotency.claim(db, 1, "k", "body", successor_at, EXPIRY) is None
    assert not await idempotency.complete(db, 1, "k", slow_at, 500, "late", "text/plain")
    await idempotency.abandon(db, 1, "k", slow_at)
    held = await idempotency.claim(db, 1, "k", "body", clock.now(), EXPIRY)
    assert held == StoredResponse("body", IN_PROGRESS, "", "")
    assert await idempotency.complete(db, 1, "k", successor_at, 201, "mine", "text/plain")


async def test_a_response_replays_for_the_retention_then_the_key_is_free(
    db: Database, clock: ManualClock
) -> None:
    first_at = clock.now()
    assert await idempotency.claim(db, 1, "k", "old-body", first_at, EXPIRY) is None
    assert await idempotency.complete(db, 1, "k", first_at, 201, "first", "text/plain")
    clock.advance(timedelta(hours=24) - timedelta(microseconds=1))
    replay = await idempotency.claim(db, 1, "k", "new-body", clock.now(), EXPIRY)
    assert replay == StoredResponse("old-body", 201, "first", "text/plain")
    clock.advance(timedelta(microseconds=1))
    assert await idempotency.claim(db, 1, "k", "new-body", clock.now(), EXPIRY) is None


async def test_concurrent_retries_of_a_lapsed_claim_take_it_once(db: Database, clock: ManualClock) -> None:
    assert await idempotency.claim(db, 1, "k", "body", clock.now(), EXPIRY) is None
    clock.advance(timedelta(minutes=5))
    outcomes = await asyncio.gather(
        *(idempotency.claim(db, 1, "k", "body", clock.now(), EXPIRY) for _ in range(8))
    )
    assert outcomes.count(None) == 1
    assert all(outcome == StoredResponse("body", IN_PROGRESS, "", "") for outcome in outcomes if outcome)


async def test_purge_deletes_only_what_is_older_than_the_retention_in_bounded_batches(
    db: Database, clock: ManualClock
) -> None:
    start = clock.now()
    for number in range(5):
        assert await idempotency.claim(db, 1, f"old-{number}", "b", start, EXPIRY) is None
    await idempotency.complete(db, 1, "old-0", start, 201, "x", "text/plain")
    clock.advance(timedelta(hours=1))
    assert await idempotency.claim(db, 1, "recent", "b", clock.now(), EXPIRY) is None
    clock.advance(timedelta(hours=23))  # old-*: exactly 24 h; recent: 23 h
    statements: list[str] = []

    def count_deletes(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count_deletes)
    try:
        assert await idempotency.purge(db, clock.now(), EXPIRY, batch=2) == 5
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count_deletes)
    assert len(statements) == 3  # 2 + 2 + 1 rows
    assert await stored_keys(db) == {"recent"}
