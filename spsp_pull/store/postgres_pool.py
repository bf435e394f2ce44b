"""The asyncpg pool beside SQLAlchemy's: the hot lookups and a pull's raw writes go to asyncpg directly."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sqlalchemy.engine import make_url


class PostgresPool:
    """The asyncpg pool of one `Database`, made on first use (once, however many ask for it at once)."""

    def __init__(self, url: str, schema: str | None, size: int) -> None:
        self._url = url
        self._schema = schema
        self._size = size
        self._pool: Any = None
        self._ready: asyncio.Future[Any] | None = None

    async def get(self) -> Any:
        if self._pool is not None:
            return self._pool
        if self._ready is None:
            self._ready = asyncio.get_running_loop().create_future()
            try:
                self._pool = await asyncpg_pool(self._url, self._schema, self._size)
            except BaseException as exc:
                self._ready.set_exception(exc)
                self._ready = None
                raise
            self._ready.set_result(self._pool)
            return self._pool
        return await asyncio.shield(self._ready)

    def connections_in_use(self) -> int:
        pool = self._pool
        return 0 if pool is None else int(pool.get_size() - pool.get_idle_size())

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


async def asyncpg_pool(url: str, schema: str | None, size: int) -> Any:
    """An asyncpg pool for the lookups: JSON decoded as SQLAlchemy's asyncpg dialect does, the schema on the
    search path, and no reset on release (a lookup leaves no session state behind)."""
    import asyncpg  # the postgres extra

    parsed = make_url(url)
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)

    async def init(conn: Any) -> None:
        await conn.set_type_codec("json", encoder=str, decoder=json.loads, schema="pg_catalog")
        await conn.set_type_codec("jsonb", encoder=str, decoder=json.loads, schema="pg_catalog")

    async def no_reset(_conn: Any) -> None:
        return None

    settings = {"search_path": schema} if schema is not None else None
    return await asyncpg.create_pool(
        dsn, min_size=1, max_size=size, init=init, reset=no_reset, server_settings=settings
    )
