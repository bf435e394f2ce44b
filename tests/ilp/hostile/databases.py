"""A database a server process or a CLI subprocess can be pointed at by URL alone.

Processes get no schema option, so on PostgreSQL each one gets a database of its own (dropped afterwards);
on SQLite, the file in the server's data directory."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from spsp_pull.store.database import Database, sqlite_url
from tests.conftest import POSTGRES_URL


def _admin_dsn() -> str:
    return POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://", 1)


@asynccontextmanager
async def process_database(backend: str, data_dir: Path) -> AsyncIterator[str]:
    """The database URL for `backend`, migrated and empty; `""` on SQLite means "the data directory's"."""
    if backend == "sqlite":
        data_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (a test's own directory)
        db = Database(sqlite_url(data_dir / "spsp-pull.sqlite3"))
        await db.migrate()
        await db.close()
        yield ""
        return
    name = "h_" + secrets.token_hex(6)
    admin = await asyncpg.connect(_admin_dsn())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    try:
        db = Database(url)
        await db.migrate()
        await db.close()
        yield url
    finally:
        admin = await asyncpg.connect(_admin_dsn())
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def url_of(backend: str, data_dir: Path, url: str) -> str:
    """The URL to open `process_database`'s database from the test itself."""
    return sqlite_url(data_dir / "spsp-pull.sqlite3") if backend == "sqlite" else url
