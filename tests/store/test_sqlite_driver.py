"""SPSP_SQLITE_DRIVER: a SQLite file on the inline driver (statements in the event loop's thread, the default)
or on SQLAlchemy's aiosqlite adapter as it is; and a pull's writes (`raw_write`) on every SQLite database,
in memory too. The store's reservation tests run on both drivers (test_reservations.py,
test_reservation_outcomes.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosqlite
import pytest

from spsp_pull.api.context import StaticIlpEndpoint
from spsp_pull.config import from_environment
from spsp_pull.config_error import ConfigError
from spsp_pull.domain.states import ReservationKind
from spsp_pull.server import running
from spsp_pull.store import pointers, reservations, sender_lease
from spsp_pull.store.audit import audit_ledger
from spsp_pull.store.database import Database, sqlite_url
from spsp_pull.store.inline_sqlite import InlineSqlite
from spsp_pull.store.raw_write import ConnectionRawWrite, SqliteRawWrite
from spsp_pull.store.sqlite_connections import SqliteDriver
from tests.store.pointer_factory import make_pointer

NOW = datetime(2024, 3, 1, tzinfo=UTC)
LEASE = timedelta(seconds=60)


def test_the_driver_is_inline_unless_aiosqlite_is_asked_for() -> None:
    assert from_environment({}).sqlite_driver == "inline"
    assert from_environment({"SPSP_SQLITE_DRIVER": "inline"}).sqlite_driver == "inline"
    assert from_environment({"SPSP_SQLITE_DRIVER": " aiosqlite "}).sqlite_driver == "aiosqlite"
    for bad in ("sqlite3", "Inline", "pysqlite"):
        message = f"SPSP_SQLITE_DRIVER must be one of: inline, aiosqlite, not '{bad}'"
        with pytest.raises(ConfigError, match=re.escape(message)):
            from_environment({"SPSP_SQLITE_DRIVER": bad})


async def driver_connection(db: Database) -> object:
    async with db.engine.connect() as conn:
        return (await conn.get_raw_connection()).driver_connection


@pytest.mark.parametrize(
    ("driver", "connection", "raw_write"),
    [("inline", InlineSqlite, SqliteRawWrite), ("aiosqlite", aiosqlite.Connection, ConnectionRawWrite)],
)
async def test_each_driver_reaches_the_file_as_it_says(
    tmp_path: Path, driver: SqliteDriver, connection: type, raw_write: type
) -> None:
    db = Database(sqlite_url(tmp_path / "db.sqlite3"), sqlite_driver=driver)
    try:
        await db.migrate()
        assert isinstance(await driver_connection(db), connection)
        async with db.raw_write() as tx:
            assert isinstance(tx, raw_write)
    finally:
        await db.close()


async def test_a_server_configured_for_aiosqlite_runs_on_it(tmp_path: Path) -> None:
    env = {"SPSP_DATA_DIR": str(tmp_path), "SPSP_PORT": "0", "SPSP_BTP_PORT": "off"}
    config = from_environment({**env, "SPSP_SQLITE_DRIVER": "aiosqlite"})
    async with running(config, ilp=StaticIlpEndpoint("private.t"), announce=lambda _line: None) as server:
        assert isinstance(await driver_connection(server.db), aiosqlite.Connection)


async def test_a_pull_writes_to_an_in_memory_database_as_to_a_file() -> None:
    """In memory the database lives in the engine's one connection: a pull's writes run on it, in a
    `write()` transaction, as they do on aiosqlite."""
    db = Database("sqlite+aiosqlite:///:memory:")
    try:
        await db.migrate()
        record = await make_pointer(db, NOW, amount=1000)
        ttl = timedelta(seconds=10)
        _, grant = await reservations.settle_and_reserve(
            db, [], record.id, 600, kind=ReservationKind.STREAM, now=NOW, lease=LEASE, sender=("puller", ttl)
        )
        assert grant is not None and grant.amount == 600
        assert not await sender_lease.acquire(db, record.id, "another", now=NOW, ttl=ttl)
        settled, again = await reservations.settle_and_reserve(
            db,
            [(grant.reservation_id, 450)],
            record.id,
            5000,
            kind=ReservationKind.STREAM,
            now=NOW,
            lease=LEASE,
        )
        assert [(s.sent, s.returned) for s in settled] == [(450, 150)]
        assert again is not None and again.amount == 550
        await reservations.settle_all(
            db, [(again.reservation_id, 50)], now=NOW, release_sender=(record.id, "puller")
        )
        assert await sender_lease.acquire(db, record.id, "another", now=NOW, ttl=ttl)
        after = await pointers.find_by_id(db, record.id)
        assert after is not None and after.usage.pulled_total == 500 and after.reserved_total == 0
        assert (await audit_ledger(db, now=NOW)).mismatches == ()
    finally:
        await db.close()
