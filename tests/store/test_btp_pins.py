"""BTP token pins in the database, on a SQLite file and on PostgreSQL: a digest per account name, bounded,
kept across restarts, and one winner among concurrent first logins."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import select

from spsp_pull.domain.clock import ManualClock
from spsp_pull.store import models
from spsp_pull.store.btp_pins import DatabaseTokenPins
from spsp_pull.store.database import Database
from stream.aio.accounts import PinVerdict, token_digest
from tests.conftest import DatabaseFactory


async def test_the_first_token_is_pinned_as_a_digest(db: Database, clock: ManualClock) -> None:
    pins = DatabaseTokenPins(db, clock, max_accounts=10)
    assert await pins.pin("alice", token_digest("token-a")) is PinVerdict.ACCEPTED
    assert await pins.pin("alice", token_digest("token-a")) is PinVerdict.ACCEPTED
    assert await pins.pin("alice", token_digest("token-b")) is PinVerdict.WRONG_TOKEN
    async with db.read() as session:
        rows = (await session.scalars(select(models.BtpTokenPin))).all()
    assert [(row.account, row.token_digest, row.pinned_at) for row in rows] == [
        ("alice", token_digest("token-a").hex(), clock.now())
    ]


async def test_new_accounts_beyond_the_bound_are_refused(db: Database, clock: ManualClock) -> None:
    pins = DatabaseTokenPins(db, clock, max_accounts=2)
    assert await pins.pin("alice", token_digest("a")) is PinVerdict.ACCEPTED
    assert await pins.pin("bob", token_digest("b")) is PinVerdict.ACCEPTED
    assert await pins.pin("carol", token_digest("c")) is PinVerdict.FULL
    assert await pins.pin("alice", token_digest("a")) is PinVerdict.ACCEPTED
    assert await pins.pin("bob", token_digest("x")) is PinVerdict.WRONG_TOKEN


async def test_pins_outlive_the_process_that_made_them(
    db_factory: DatabaseFactory, clock: ManualClock
) -> None:
    url, schema = await db_factory.url_and_schema()
    first = Database(url, schema=schema)
    await first.migrate()
    await DatabaseTokenPins(first, clock, max_accounts=10).pin("alice", token_digest("token-a"))
    await first.close()
    again = Database(url, schema=schema)
    try:
        pins = DatabaseTokenPins(again, clock, max_accounts=10)
        assert await pins.pin("alice", token_digest("token-b")) is PinVerdict.WRONG_TOKEN
        assert await pins.pin("alice", token_digest("token-a")) is PinVerdict.ACCEPTED
    finally:
        await again.close()


@asynccontextmanager
async def two_instances(db_factory: DatabaseFactory) -> AsyncIterator[tuple[Database, Database]]:
    """Two engines (as two server instances have) on one migrated database."""
    url, schema = await db_factory.url_and_schema()
    first, second = Database(url, schema=schema), Database(url, schema=schema)
    try:
        await first.migrate()
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_of_concurrent_first_logins_with_different_tokens_exactly_one_wins(
    db_factory: DatabaseFactory, clock: ManualClock
) -> None:
    async with two_instances(db_factory) as (first, second):
        stores = [DatabaseTokenPins(first, clock, 100), DatabaseTokenPins(second, clock, 100)]
        tokens = [f"token-{number}" for number in range(16)]
        verdicts = await asyncio.gather(
            *(stores[number % 2].pin("alice", token_digest(token)) for number, token in enumerate(tokens))
        )
        winners = [
            token for token, verdict in zip(tokens, verdicts, strict=True) if verdict is PinVerdict.ACCEPTED
        ]
        assert len(winners) == 1
        assert verdicts.count(PinVerdict.WRONG_TOKEN) == 15
        assert await stores[1].pin("alice", token_digest(winners[0])) is PinVerdict.ACCEPTED


async def test_concurrent_new_accounts_never_pass_the_bound(
    db_factory: DatabaseFactory, clock: ManualClock
) -> None:
    async with two_instances(db_factory) as (first, second):
        stores = [DatabaseTokenPins(first, clock, 3), DatabaseTokenPins(second, clock, 3)]
        verdicts = await asyncio.gather(
            *(stores[number % 2].pin(f"name-{number}", token_digest("t")) for number in range(12))
        )
        assert verdicts.count(PinVerdict.ACCEPTED) == 3
        assert verdicts.count(PinVerdict.FULL) == 9
