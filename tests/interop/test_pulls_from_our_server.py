"""Unmodified JavaScript pullers (ilp-protocol-stream 2.7.1 and ilp-protocol-spsp 3.0.0 `SPSP.pull`) pull
from our server, straight over its embedded BTP endpoint and through a real connector."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from harness.js_stack import JsConnector, JsRuntime, run_js_pullers
from harness.server_process import ServerProcess, create_pointer

pytestmark = pytest.mark.interop
ADMIN = "interop-admin"
MODES = ["direct", "spsp"]


async def create(server: ServerProcess, **fields: Any) -> str:
    return await create_pointer(server, ADMIN, **fields)


async def balance(server: ServerProcess, token: str) -> dict[str, str]:
    async with aiohttp.ClientSession() as session, session.get(f"{server.url}/{token}") as response:
        pull: dict[str, Any] = (await response.json(content_type=None))["pull"]
        return dict(pull["balance"])


async def settled_balance(server: ServerProcess, token: str) -> dict[str, str]:
    """The balance once the pull's reservations are settled (the server settles as the connection closes,
    which may be a moment after the puller reports)."""
    for _ in range(50):
        current = await balance(server, token)
        if current["total"] == current["interval"] or current["interval"] == "0":
            return current
        await asyncio.sleep(0.1)
    return current


@pytest.fixture
async def embedded(tmp_path: Path, js_runtime: JsRuntime) -> AsyncIterator[ServerProcess]:
    async with ServerProcess(tmp_path, env={"SPSP_AUTH_TOKEN": ADMIN}, embedded_btp=True) as server:
        yield server


@pytest.mark.parametrize("mode", MODES)
async def test_pull_over_the_embedded_endpoint(embedded: ServerProcess, mode: str) -> None:
    token = await create(embedded)
    assert embedded.btp_port is not None
    [result] = await run_js_pullers(f"{embedded.url}/{token}", embedded.btp_port, 3000, mode=mode)  # type: ignore[arg-type]
    assert result.ok, result.error
    assert result.received == 3000
    assert await settled_balance(embedded, token) == {
        "total": "3000",
        "interval": "3000",
        "available": "2000",
    }


@pytest.mark.parametrize("mode", MODES)
async def test_asking_for_more_than_available_gets_the_rest_promptly(
    embedded: ServerProcess, mode: str
) -> None:
    token = await create(embedded, amount="2500")
    assert embedded.btp_port is not None
    [result] = await run_js_pullers(f"{embedded.url}/{token}", embedded.btp_port, 4000, mode=mode, timeout=30)  # type: ignore[arg-type]
    assert not result.ok
    assert result.received == 2500
    assert result.ms < 5000, f"a partial pull must end promptly, took {result.ms:.0f} ms"
    assert (await balance(embedded, token))["available"] == "0"


@pytest.mark.parametrize("mode", MODES)
async def test_after_the_last_cycle_nothing_arrives(embedded: ServerProcess, mode: str) -> None:
    token = await create(embedded, amount="1000", cap=True, start="2020-01-01T00:00:00Z")
    assert embedded.btp_port is not None
    [result] = await run_js_pullers(f"{embedded.url}/{token}", embedded.btp_port, 1000, mode=mode, timeout=30)  # type: ignore[arg-type]
    assert result.received == 0 and not result.ok
    assert result.ms < 5000


@pytest.fixture
async def connector_1000(js_runtime: JsRuntime) -> AsyncIterator[JsConnector]:
    """A connector whose packets carry at most 1000 units (F08 above), rate limit off."""
    async with JsConnector(max_packet_amount=1000, disable_rate_limit=True, runtime=js_runtime) as connector:
        yield connector


async def uplinked(tmp_path: Path, connector: JsConnector, name: str, **env: str) -> ServerProcess:
    server = ServerProcess(
        tmp_path / name,
        env={"SPSP_AUTH_TOKEN": ADMIN, "SPSP_ILP_UPLINK": connector.btp_url(name), **env},
    )
    await server.start()
    return server


@pytest.mark.parametrize("mode", MODES)
async def test_pull_through_a_connector_in_many_packets(
    tmp_path: Path, connector_1000: JsConnector, mode: str
) -> None:
    server = await uplinked(tmp_path, connector_1000, "pullsrv")
    try:
        token = await create(server, amount="50000")
        [result] = await run_js_pullers(f"{server.url}/{token}", connector_1000.port, 25_500, mode=mode)  # type: ignore[arg-type]
        assert result.ok, result.error
        assert result.received == 25_500
        assert result.prepares_received >= 26  # at most 1000 per packet
        assert await settled_balance(server, token) == {
            "total": "25500",
            "interval": "25500",
            "available": "24500",
        }
    finally:
        await server.stop()


async def test_twenty_concurrent_pullers_get_exactly_the_allowance(
    tmp_path: Path, connector_1000: JsConnector
) -> None:
    server = await uplinked(tmp_path, connector_1000, "pullsrv")
    try:
        token = await create(server, amount="15000")
        results = await run_js_pullers(
            f"{server.url}/{token}", connector_1000.port, 1000, mode="direct", concurrency=20, timeout=60
        )
        assert sum(r.received for r in results) == 15_000
        assert sum(r.ok for r in results) == 15
        final = await settled_balance(server, token)
        assert final == {"total": "15000", "interval": "15000", "available": "0"}
        await server.assert_audit_clean()
    finally:
        await server.stop()


@pytest.fixture
async def postgres_database() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for server processes to share."""
    import secrets

    import asyncpg

    from tests.conftest import POSTGRES_URL

    name = "interop_" + secrets.token_hex(4)
    admin_dsn = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(admin_dsn)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        conn = await asyncpg.connect(admin_dsn)
        await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await conn.close()


async def test_two_server_processes_on_one_postgres_never_overdraw(
    tmp_path: Path, connector_1000: JsConnector, postgres_database: str
) -> None:
    env = {"SPSP_DATABASE_URL": postgres_database}
    first = await uplinked(tmp_path, connector_1000, "pullsrv1", **env)
    second = await uplinked(tmp_path, connector_1000, "pullsrv2", **env)
    try:
        token = await create(first, amount="12000")
        batches = await asyncio.gather(
            *(
                run_js_pullers(f"{s.url}/{token}", connector_1000.port, 1000, concurrency=10, user_prefix=p)
                for s, p in ((first, "a"), (second, "b"))
            )
        )
        received = [r.received for batch in batches for r in batch]
        assert sum(received) == 12_000
        assert all(sum(r.received for r in batch) > 0 for batch in batches), "both servers must have served"
        assert await settled_balance(second, token) == {
            "total": "12000",
            "interval": "12000",
            "available": "0",
        }
        await second.assert_audit_clean()
    finally:
        await asyncio.gather(first.stop(), second.stop())


async def test_server_killed_mid_pull_never_lets_out_more_than_it_debited(
    tmp_path: Path, connector_1000: JsConnector
) -> None:
    env = {"SPSP_RESERVATION_LEASE": "5"}
    server = await uplinked(tmp_path, connector_1000, "pullsrv", **env)
    allowance = 3_000_000  # more than the pull: what the crash leaves must still be pullable afterwards
    token = await create(server, amount=str(allowance))
    puller = asyncio.create_task(
        run_js_pullers(f"{server.url}/{token}", connector_1000.port, 1_000_000, timeout=20)
    )
    for _ in range(200):  # until the pull is well under way
        await asyncio.sleep(0.05)
        if int((await balance(server, token))["total"]) >= 100_000:
            break
    await server.stop(signal.SIGKILL)
    [result] = await puller
    assert 0 < result.received < 1_000_000
    # moneyd's ilp-plugin-mini-accounts 3.6.0 sometimes crashes ("Error: not opened" from ws) when a BTP
    # client is SIGKILLed with packets in flight, about 1 run in 6: a bug of the JS peer. What is checked here
    # is our ledger against what the puller received, so a crashed connector is started again for the rest.
    await connector_1000.restart_if_exited()
    restarted = await uplinked(tmp_path, connector_1000, "pullsrv", **env)
    try:
        for _ in range(100):  # the dead process's reservations are recovered once their lease runs out
            after = await balance(restarted, token)
            if after["total"] == after["interval"]:
                break
            await asyncio.sleep(0.2)
        debited = int(after["total"])
        print(f"killed mid-pull: payee received {result.received}, ledger debited {debited}")
        assert debited >= result.received, "the payee received more than the ledger debited"
        assert int(after["available"]) == allowance - debited
        [again] = await run_js_pullers(f"{restarted.url}/{token}", connector_1000.port, 1000)
        assert again.ok and again.received == 1000
        await restarted.assert_audit_clean()
    finally:
        await restarted.stop()
