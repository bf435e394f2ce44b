"""The inline SQLite driver: a sqlite3 connection with the interface SQLAlchemy's aiosqlite adapter uses,
whose statements run in the event loop's thread (`SPSP_SQLITE_DRIVER=inline`, the default).

It leans on private internals of that adapter (tests/test_dependency_internals.py names them);
`SPSP_SQLITE_DRIVER=aiosqlite` runs without it."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

LOCK_WAIT = timedelta(seconds=30)
"""How long a writer waits for SQLite's write lock before "database is locked" (the busy timeout)."""


class InlineSqlite:
    """A SQLite connection with aiosqlite's interface (as SQLAlchemy's aiosqlite dialect uses it) whose
    statements run at once in the calling thread — the event loop's.

    aiosqlite runs each call in a worker thread and hands the result back through the event loop: a dozen
    thread handoffs per transaction, each of which waits for the GIL while the loop is busy (STREAM packets),
    so a 1 ms transaction took 10-20 ms under load. SQLite statements on a local file take microseconds; the
    one thing that may take long, waiting for another process's write lock, is done here with `asyncio.sleep`
    between attempts (busy_timeout is 0), so the loop never blocks on it. Within this process, writers queue
    on a `SqliteWriteLock` and never meet the busy state at all.
    """

    _RETRY_DELAYS = tuple(timedelta(milliseconds=ms) for ms in (1, 2, 5, 10, 20))

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection
        self._connection: sqlite3.Connection | None = connection
        self._tx = self  # SQLAlchemy sets isolation_level through aiosqlite's queue: `put_nowait` below

    @classmethod
    async def connect(cls, path: str) -> InlineSqlite:
        """A connection of the engine (SQLAlchemy's `async_creator`)."""
        return cls(sqlite3.connect(path, timeout=0, check_same_thread=False, isolation_level=None))

    @classmethod
    def raw_writer(cls, path: str) -> InlineSqlite:
        """The connection of `Database.raw_write()`: configured here, as the engine's are by its hooks."""
        writer = sqlite3.connect(path, timeout=0, check_same_thread=False, isolation_level=None)
        for pragma in ("synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=0"):
            writer.execute(f"PRAGMA {pragma}")
        return cls(writer)

    @asynccontextmanager
    async def immediate(self) -> AsyncIterator[sqlite3.Connection]:
        """A write transaction on the sqlite3 connection itself (BEGIN IMMEDIATE, waiting for another
        process's lock as `run` does) that commits on success and rolls back at once on any exception."""
        await self.run(self._conn.execute, "BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.rollback()
            raise
        await self.commit()

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:
            future.set_exception(exc)

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> _InlineCursorContext:
        return _InlineCursorContext(self)

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        """`function(*args)`; while another process holds the lock, retried after short sleeps."""
        waited = timedelta(0)
        attempt = 0
        while True:
            try:
                return function(*args)
            except sqlite3.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                if not busy or waited >= LOCK_WAIT:
                    raise
                delay = self._RETRY_DELAYS[min(attempt, len(self._RETRY_DELAYS) - 1)]
                await asyncio.sleep(delay.total_seconds())
                waited += delay
                attempt += 1

    async def commit(self) -> None:
        await self.run(self._conn.commit)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)


class _InlineCursorContext:
    """What `connection.cursor()` returns in aiosqlite: entered (awaited) to get the cursor."""

    def __init__(self, connection: InlineSqlite) -> None:
        self._connection = connection

    async def __aenter__(self) -> _InlineCursor:
        return _InlineCursor(self._connection)

    async def __aexit__(self, *_: object) -> None:
        return None


class _InlineCursor:
    def __init__(self, connection: InlineSqlite) -> None:
        self._connection = connection
        self._cursor = connection._conn.cursor()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> _InlineCursor:
        await self._connection.run(self._cursor.execute, sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Any) -> _InlineCursor:
        await self._connection.run(self._cursor.executemany, sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()
