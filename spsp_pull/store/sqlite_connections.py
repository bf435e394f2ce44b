"""How the SQLite connections of a `Database` are made and configured: the engine's (on the inline driver or
on aiosqlite, `SPSP_SQLITE_DRIVER`) and the inline reader of the hot lookups."""

from __future__ import annotations

import sqlite3
from functools import partial
from typing import Any, Final, Literal

from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import AsyncEngine

from spsp_pull.store.inline_sqlite import LOCK_WAIT, InlineSqlite

SqliteDriver = Literal["inline", "aiosqlite"]
SQLITE_DRIVERS: Final[tuple[SqliteDriver, ...]] = ("inline", "aiosqlite")
"""`inline`: statements run in the event loop's thread (`InlineSqlite`); `aiosqlite`: in aiosqlite's worker
thread, through SQLAlchemy's aiosqlite adapter as it is (nothing of its internals relied on)."""

_READER_BUSY_MS = 5000


def inline_path(database: str | None, driver: SqliteDriver) -> str | None:
    """The file the inline driver serves for a SQLite URL's `database`, or None: the aiosqlite driver, or an
    in-memory database (`:memory:`, empty, or a `file:` URI), which lives in its one engine connection."""
    if driver != "inline" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


def engine_options(inline_file: str | None) -> dict[str, Any]:
    """`create_async_engine` arguments for SQLite: on the inline driver for `inline_file` (see `inline_path`),
    else on aiosqlite."""
    if inline_file is not None:
        return {"async_creator": partial(InlineSqlite.connect, inline_file)}
    return {"connect_args": {"timeout": LOCK_WAIT.total_seconds()}}


def configure_sqlite(engine: AsyncEngine, *, inline: bool) -> None:
    """WAL, foreign keys and the busy timeout on each new connection; transactions begun by SQLAlchemy, with
    `BEGIN IMMEDIATE` for a connection whose execution options say `sqlite_begin="IMMEDIATE"`."""
    sync_engine = engine.sync_engine
    # The inline driver waits for another process's lock asynchronously (its own retries), never in
    # SQLite's busy handler, which would block the event loop.
    busy_timeout_ms = 0 if inline else int(LOCK_WAIT.total_seconds() * 1000)

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see the "begin" hook below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return
        conn.exec_driver_sql(f"BEGIN {options.get('sqlite_begin', '')}".strip())


def open_reader(path: str) -> sqlite3.Connection:
    """A read-only connection of its own for the inline lookups: in WAL mode a reader never waits for a
    writer."""
    reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    reader.execute(f"PRAGMA busy_timeout={_READER_BUSY_MS}")
    reader.execute("PRAGMA query_only=ON")
    return reader
