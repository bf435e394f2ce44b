"""The database of a process: its engine (SQLite, the embedded default, or PostgreSQL), transactions, the
hot single-row lookups and a pull's driver-level writes, and migrations on start."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar, overload

from sqlalchemy import Table, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from spsp_pull.metrics import Metrics
from spsp_pull.store.inline_sqlite import LOCK_WAIT, InlineSqlite
from spsp_pull.store.lookups import Lookups
from spsp_pull.store.migrate import upgrade_schema
from spsp_pull.store.postgres_pool import PostgresPool
from spsp_pull.store.raw_write import ConnectionRawWrite, PostgresRawWrite, RawWrite, SqliteRawWrite
from spsp_pull.store.row_shape import RowReader, mapping_reader
from spsp_pull.store.sqlite_connections import (
    SqliteDriver,
    configure_sqlite,
    engine_options,
    inline_path,
    open_reader,
)
from spsp_pull.store.sqlite_write_lock import SqliteWriteLock

_AFTER_COMMIT = "after_commit"  # session.info key
_T = TypeVar("_T")


class Database:
    """One engine per process. `read()` and `write()` open a transaction; `write()` takes SQLite's write lock
    up front (BEGIN IMMEDIATE), so a read-then-write never fails half way with "database is locked".

    `sqlite_driver` (`SPSP_SQLITE_DRIVER`) chooses how a SQLite file is reached: `inline` runs its statements
    in the event loop's thread, `aiosqlite` in aiosqlite's worker thread (see sqlite_connections.py)."""

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        pool_size: int = 10,
        schema: str | None = None,
        sqlite_driver: SqliteDriver = "inline",
    ) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        # The SQLite file whose statements run inline (in the event loop's thread), if any.
        self._inline_path = inline_path(parsed.database, sqlite_driver) if self.is_sqlite else None
        if self.is_sqlite:
            kwargs |= engine_options(self._inline_path)
        else:
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
            kwargs["pool_pre_ping"] = True
            if schema is not None:
                kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._lookups = Lookups(self.engine.dialect)
        self._sqlite_reader: sqlite3.Connection | None = None
        self._sqlite_raw: InlineSqlite | None = None
        asyncpg = self.dialect == "postgresql" and self.engine.dialect.driver == "asyncpg"
        self._pg_pool = PostgresPool(url, schema, pool_size) if asyncpg else None
        self._sqlite_write_lock = SqliteWriteLock(LOCK_WAIT) if self.is_sqlite else None
        if self.is_sqlite:
            configure_sqlite(self.engine, inline=self._inline_path is not None)
        self.metrics = Metrics()  # what the server counts: the one registry every part that has `db` reaches
        self.metrics.watch_pool("sqlalchemy", self._engine_connections_in_use)
        self.metrics.watch_pool("asyncpg", self._asyncpg_connections_in_use)

    def _engine_connections_in_use(self) -> int:
        checked_out = getattr(self.engine.pool, "checkedout", None)
        return int(checked_out()) if checked_out is not None else 0

    def _asyncpg_connections_in_use(self) -> int:
        return 0 if self._pg_pool is None else self._pg_pool.connections_in_use()

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction that commits on success. Rows read with `lock()` stay locked until it ends."""
        async with self._one_writer(), self._sessions() as session, session.begin():
            if self.is_sqlite:
                await session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
            yield session
        _run_after_commit(session)

    def _one_writer(self) -> AbstractAsyncContextManager[None]:
        return nullcontext() if self._sqlite_write_lock is None else self._sqlite_write_lock.held()

    @overload
    async def select_one(self, table: Table, column: str, value: object) -> dict[str, Any] | None: ...

    @overload
    async def select_one(
        self, table: Table, column: str, value: object, reader: RowReader[_T]
    ) -> _T | None: ...

    async def select_one(
        self, table: Table, column: str, value: object, reader: RowReader[Any] = mapping_reader
    ) -> Any:
        """The row of `table` whose `column` (a unique one) equals `value`, with the column types applied as
        SQLAlchemy applies them, outside any transaction: by column name, or as `reader` makes it.

        The hot read path (SPSP queries, STREAM connections): no ORM and no pooled-connection ping or reset.
        SQLite reads on the inline driver run inline on a connection of their own (in WAL mode a reader never
        waits for a writer); PostgreSQL reads go straight to asyncpg."""
        if self._inline_path is not None:
            lookup = self._lookups.raw(table, column)
            raw = self._reader(self._inline_path).execute(lookup.sql, (value,)).fetchone()
        elif self._pg_pool is not None:
            pool = await self._pg_pool.get()
            lookup = await self._lookups.prepared(pool, table, column)
            raw = await pool.fetchrow(lookup.sql, value)
        else:
            lookup = self._lookups.converted(table, column)
            async with self.engine.connect() as conn:
                raw = (await conn.execute(select(table).where(table.c[column] == value))).first()
        return None if raw is None else lookup.reader(reader)(raw)

    @asynccontextmanager
    async def raw_write(self) -> AsyncIterator[RawWrite]:
        """A write transaction whose statements go straight to the driver, without the ORM: the pull's
        reservations (a few statements each, many per second). It commits on success, like `write()`, and
        queues on the same lock on SQLite (BEGIN IMMEDIATE, on the inline driver on a connection of its own).

        Where no driver-level writer serves the database (SQLite on aiosqlite or in memory, PostgreSQL on
        another driver than asyncpg) the same statements run as `text()` in a `write()` transaction."""
        if self._inline_path is not None:
            async with self._one_writer(), self._raw_writer(self._inline_path).immediate() as conn:
                yield SqliteRawWrite(self._lookups, conn)
        elif self._pg_pool is not None:
            pool = await self._pg_pool.get()
            async with pool.acquire() as conn, conn.transaction():
                yield PostgresRawWrite(self._lookups, pool, conn)
        else:
            async with self.write() as session:
                yield ConnectionRawWrite(self._lookups, await session.connection())

    def _raw_writer(self, path: str) -> InlineSqlite:
        if self._sqlite_raw is None:
            self._sqlite_raw = InlineSqlite.raw_writer(path)
        return self._sqlite_raw

    def _reader(self, path: str) -> sqlite3.Connection:
        if self._sqlite_reader is None:
            self._sqlite_reader = open_reader(path)
        return self._sqlite_reader

    async def migrate(self) -> None:
        """Bring the schema to the newest revision; safe when several instances start at once."""
        await upgrade_schema(self.engine)

    async def close(self) -> None:
        if self._sqlite_reader is not None:
            self._sqlite_reader.close()
            self._sqlite_reader = None
        if self._sqlite_raw is not None:
            self._sqlite_raw.stop()
            self._sqlite_raw = None
        if self._pg_pool is not None:
            await self._pg_pool.close()
        await self.engine.dispose()


def after_commit(session: AsyncSession, action: Callable[[], None]) -> None:
    """Run `action` once the `Database.write()` transaction of `session` has committed (never if it rolls
    back): for counting what a transaction did."""
    session.info.setdefault(_AFTER_COMMIT, []).append(action)


def _run_after_commit(session: AsyncSession) -> None:
    for action in session.info.pop(_AFTER_COMMIT, ()):
        action()


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"
