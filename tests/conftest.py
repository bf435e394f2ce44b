"""Fixtures shared by the whole suite: a real database (SQLite file and PostgreSQL) and a movable clock."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from spsp_pull.domain.clock import ManualClock
from spsp_pull.store.database import Database, sqlite_url
from spsp_pull.store.sqlite_connections import SqliteDriver

POSTGRES_URL = os.environ.get("SPSP_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
BACKENDS = [b for b in os.environ.get("SPSP_TEST_BACKENDS", "sqlite,postgres").split(",") if b]
# A SQLite file on each SQLite driver (SPSP_SQLITE_DRIVER): "sqlite" is the inline default.
SQLITE_BACKENDS: dict[str, SqliteDriver] = {"sqlite": "inline", "aiosqlite": "aiosqlite"}
# The store's reservation tests run on the aiosqlite driver too, wherever SQLite is tested.
BACKENDS_AND_AIOSQLITE = [
    *BACKENDS,
    *(["aiosqlite"] if "sqlite" in BACKENDS and "aiosqlite" not in BACKENDS else []),
]


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _postgres_schema() -> str:
    schema = "t_" + secrets.token_hex(6)
    conn = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()
    return schema


async def _drop_schema(schema: str) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


class DatabaseFactory:
    """Makes migrated databases of one backend; cleans them up at the end of the test."""

    def __init__(self, backend: str, directory: Path) -> None:
        self.backend = backend
        self.sqlite_driver: SqliteDriver = SQLITE_BACKENDS.get(backend, "inline")
        self._directory = directory
        self._made: list[tuple[Database, str | None]] = []

    async def url_and_schema(self) -> tuple[str, str | None]:
        if self.backend in SQLITE_BACKENDS:
            return sqlite_url(self._directory / f"db-{len(self._made)}-{secrets.token_hex(3)}.sqlite3"), None
        return POSTGRES_URL, await _postgres_schema()

    async def make(self) -> Database:
        url, schema = await self.url_and_schema()
        db = Database(url, schema=schema, sqlite_driver=self.sqlite_driver)
        await db.migrate()
        self._made.append((db, schema))
        return db

    async def close(self) -> None:
        for db, schema in self._made:
            await db.close()
            if schema is not None:
                await _drop_schema(schema)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def db_factory(backend: str, tmp_path: Path) -> AsyncIterator[DatabaseFactory]:
    factory = DatabaseFactory(backend, tmp_path)
    try:
        yield factory
    finally:
        await factory.close()


@pytest.fixture
async def db(db_factory: DatabaseFactory) -> Database:
    return await db_factory.make()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2024, 1, 31, 12, 0, tzinfo=UTC))
