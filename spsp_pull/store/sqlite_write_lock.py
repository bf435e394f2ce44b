"""SQLite has one writer at a time: the write transactions of one process queue on an `asyncio.Lock` rather
than in SQLite's busy handler (which sleeps in steps of up to 100 ms while the lock is taken)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any


class SqliteWriteLock:
    """Held for the whole of a write transaction. As SQLite's own busy timeout did, it gives up with
    "database is locked" after `wait`, and at once for a write transaction opened inside another one of the
    same task (which would wait for itself)."""

    def __init__(self, wait: timedelta) -> None:
        self._lock = asyncio.Lock()
        self._wait = wait
        self._holder: asyncio.Task[Any] | None = None

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        task = asyncio.current_task()
        if task is not None and self._holder is task:
            raise sqlite3.OperationalError("database is locked (a write transaction inside another one)")
        try:
            async with asyncio.timeout(self._wait.total_seconds()):
                await self._lock.acquire()
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked") from None
        self._holder = task
        try:
            yield
        finally:
            self._holder = None
            self._lock.release()
