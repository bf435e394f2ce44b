"""SPSP_DATABASE_POOL_SIZE: how many PostgreSQL connections a server process keeps (and may add as many again
under load), in the ORM's pool and in the driver pool of a pull's writes alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from spsp_pull.api.context import StaticIlpEndpoint
from spsp_pull.config import from_environment
from spsp_pull.config_error import ConfigError
from spsp_pull.server import running
from tests.ilp.hostile.databases import process_database


def test_the_pool_size_is_a_bounded_count() -> None:
    assert from_environment({}).database_pool_size == 10
    assert from_environment({"SPSP_DATABASE_POOL_SIZE": "40"}).database_pool_size == 40
    for bad in ("0", "501", "ten", "-1"):
        with pytest.raises(ConfigError, match="SPSP_DATABASE_POOL_SIZE"):
            from_environment({"SPSP_DATABASE_POOL_SIZE": bad})


@pytest.mark.postgres
async def test_a_server_keeps_the_connections_it_is_configured_for(tmp_path: Path) -> None:
    async with process_database("postgres", tmp_path) as url:
        env = {"SPSP_DATABASE_URL": url, "SPSP_DATA_DIR": str(tmp_path), "SPSP_PORT": "0"}
        config = from_environment({**env, "SPSP_BTP_PORT": "off", "SPSP_DATABASE_POOL_SIZE": "3"})
        async with running(config, ilp=StaticIlpEndpoint("private.t"), announce=lambda _line: None) as server:
            pool = server.db.engine.pool
            assert (pool.size(), getattr(pool, "_max_overflow", None)) == (3, 3)  # type: ignore[attr-defined]
            async with server.db.raw_write():
                pass
            assert server.db._pg_pool is not None
            assert (await server.db._pg_pool.get()).get_max_size() == 3
