"""What the collector remembers per pointer: the cycle it last worked on, what that cycle is owed and what
arrived, and — while a pull is under way — the intent written before it started.

The protocol: before a pull, `save` a record with its `intent` (the pointer's used-in-cycle and total as the
SPSP answer showed them); after it, `save` the record with what arrived and no intent. A record still holding
an intent at the next run means the run stopped in between: the server's ledger (the pointer's balance now,
against the intent's) tells what that pull took (`plan.resolve`).

`SqlState` keeps the records in a table of its own (`spsp_collect_state`) in SQLite (the default: a file) or
PostgreSQL, and commits concurrent saves together: `save` returns once its record is committed, and every
save waiting meanwhile goes into the next transaction, so many pulls at once cost few commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, create_engine, event, select
from sqlalchemy.engine import URL, make_url

from spsp_pull.store.types import Amount, UTCDateTime

LOAD_BATCH = 1000
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Intent:
    """Written before a pull: the pointer's `used` in the cycle and its `total` pulled, as last seen."""

    used_before: int
    total_before: int
    at: datetime


@dataclass(frozen=True, slots=True)
class CycleRecord:
    """`cycle` is the cycle last worked on, `target` what it is owed, `pulled` what arrived for it;
    `paid_cycle` is the last cycle anything arrived for (0: none yet)."""

    pointer: str
    cycle: int
    target: int
    pulled: int
    paid_cycle: int
    updated_at: datetime
    intent: Intent | None = None


class StateStore(Protocol):
    async def load(self, pointers: Collection[str]) -> dict[str, CycleRecord]:
        """The records of these pointers (those that have one)."""
        ...

    async def save(self, record: CycleRecord) -> None:
        """Returns once the record is durable."""
        ...


metadata = MetaData()
collect_state = Table(
    "spsp_collect_state",
    metadata,
    Column("pointer", String(2048), primary_key=True),
    Column("cycle", Integer, nullable=False),
    Column("target", Amount, nullable=False),
    Column("pulled", Amount, nullable=False),
    Column("paid_cycle", Integer, nullable=False),
    Column("intent_used", Amount, nullable=True),
    Column("intent_total", Amount, nullable=True),
    Column("intent_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)


def _row(record: CycleRecord) -> dict[str, Any]:
    intent = record.intent
    return {
        "pointer": record.pointer,
        "cycle": record.cycle,
        "target": record.target,
        "pulled": record.pulled,
        "paid_cycle": record.paid_cycle,
        "intent_used": intent.used_before if intent else None,
        "intent_total": intent.total_before if intent else None,
        "intent_at": intent.at if intent else None,
        "updated_at": record.updated_at,
    }


def _record(row: Any) -> CycleRecord:
    intent = None
    if row.intent_at is not None:
        intent = Intent(row.intent_used, row.intent_total, row.intent_at)
    return CycleRecord(row.pointer, row.cycle, row.target, row.pulled, row.paid_cycle, row.updated_at, intent)


class SqlState:
    """Records in `spsp_collect_state` of an SQLAlchemy database. PostgreSQL (postgresql+asyncpg) is used
    through its async driver; SQLite through the plain driver in a worker thread, one hop per batch (a
    commit through aiosqlite is many hops, each a wait for the thread on a busy machine)."""

    def __init__(self, run: Runner, dialect: str) -> None:
        self._run = run
        self._waiting: dict[str, tuple[CycleRecord, list[asyncio.Future[None]]]] = {}
        self._flusher: asyncio.Task[None] | None = None
        from sqlalchemy.dialects import postgresql, sqlite

        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(collect_state)
        updated = {c.name: statement.excluded[c.name] for c in collect_state.columns if c.name != "pointer"}
        self._upsert = statement.on_conflict_do_update(index_elements=["pointer"], set_=updated)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, url: str) -> AsyncIterator[SqlState]:
        """The store at `url` (sqlite:///… with any driver, or postgresql+asyncpg://…), its table created if
        need be; closed after."""
        parsed = make_url(url)
        async with _runner(parsed) as run:
            await run(lambda connection: metadata.create_all(connection))
            store = cls(run, parsed.get_backend_name())
            try:
                yield store
            finally:
                await store.drain()

    async def load(self, pointers: Collection[str]) -> dict[str, CycleRecord]:
        wanted = list(pointers)

        def read(connection: Connection) -> dict[str, CycleRecord]:
            records: dict[str, CycleRecord] = {}
            for start in range(0, len(wanted), LOAD_BATCH):
                batch = wanted[start : start + LOAD_BATCH]
                rows = connection.execute(select(collect_state).where(collect_state.c.pointer.in_(batch)))
                records.update((row.pointer, _record(row)) for row in rows)
            return records

        return await self._run(read)

    async def save(self, record: CycleRecord) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        _, futures = self._waiting.get(record.pointer, (record, []))
        self._waiting[record.pointer] = (record, [*futures, done])  # a later save of a pointer supersedes
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        await asyncio.shield(done)

    def _write(self, rows: list[dict[str, Any]], connection: Connection) -> None:
        connection.execute(self._upsert, rows)

    async def drain(self) -> None:
        """Wait for the saves under way."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, {}
            rows = [_row(record) for record, _ in batch.values()]
            try:
                await self._run(functools.partial(self._write, rows))
            except Exception as exc:
                for _, futures in batch.values():
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
                continue
            for _, futures in batch.values():
                for future in futures:
                    if not future.done():
                        future.set_result(None)


class Runner(Protocol):
    """Runs `work` with a connection, in one transaction."""

    async def __call__(self, work: Callable[[Connection], _T]) -> _T: ...


@contextlib.asynccontextmanager
async def _runner(url: URL) -> AsyncIterator[Runner]:
    """Runs a function of a connection in one transaction: in a thread (SQLite), or on the async driver."""
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url.set(drivername="sqlite+pysqlite"))
        event.listen(engine, "connect", _sqlite_pragmas)

        def in_transaction(work: Callable[[Connection], _T]) -> _T:
            with engine.begin() as connection:
                return work(connection)

        async def in_thread(work: Callable[[Connection], _T]) -> _T:
            return await asyncio.to_thread(in_transaction, work)

        try:
            yield in_thread
        finally:
            engine.dispose()
        return
    from sqlalchemy.ext.asyncio import create_async_engine

    async_engine = create_async_engine(url)

    async def on_driver(work: Callable[[Connection], _T]) -> _T:
        async with async_engine.begin() as connection:
            return await connection.run_sync(work)

    try:
        yield on_driver
    finally:
        await async_engine.dispose()


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
