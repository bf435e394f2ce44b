"""The harness against the JS stack alone: JS pullers, the JS pull servers and the connector."""

from __future__ import annotations

import os

import pytest

from harness.js_stack import (
    NODE16,
    JsConnector,
    JsDirectBtpServer,
    JsPullServer,
    JsRuntime,
    PullMode,
    free_port,
    run_js_pullers,
)

pytestmark = pytest.mark.interop

MODES: list[PullMode] = ["direct", "spsp"]


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("mode", MODES)
async def test_js_puller_pulls_from_js_pull_server(
    js_connector: JsConnector, js_pull_server: JsPullServer, mode: PullMode
) -> None:
    [result] = await run_js_pullers(
        js_pull_server.pointer_url(1000), js_connector.port, 1000, mode, timeout=30
    )

    assert result.ok, result.error
    assert result.received == 1000
    assert result.error is None
    assert result.prepares_received >= 1


@pytest.mark.parametrize("mode", MODES)
async def test_pull_larger_than_connector_max_packet_amount_arrives_in_full(
    js_runtime: JsRuntime, mode: PullMode
) -> None:
    async with (
        JsConnector(max_packet_amount=1000, runtime=js_runtime) as connector,
        JsPullServer(connector, runtime=js_runtime) as server,
    ):
        [result] = await run_js_pullers(server.pointer_url(5000), connector.port, 5000, mode, timeout=30)

    assert result.ok, result.error
    assert result.received == 5000
    assert result.prepares_received >= 5


async def test_concurrent_pulls_each_get_their_amount(
    js_connector: JsConnector, js_pull_server: JsPullServer
) -> None:
    results = await run_js_pullers(
        js_pull_server.pointer_url(2000), js_connector.port, 2000, "direct", concurrency=4, timeout=30
    )

    assert [r.received for r in results] == [2000] * 4
    assert all(r.ok for r in results)
    assert len({r.user for r in results}) == 4


async def test_failed_pull_is_reported_not_raised(
    js_connector: JsConnector, js_pull_server: JsPullServer
) -> None:
    unknown_pointer = js_pull_server.pointer_url(1000).replace("/pull/", "/nothing/")

    [result] = await run_js_pullers(unknown_pointer, js_connector.port, 1000, "direct", timeout=10)

    assert not result.ok
    assert result.received == 0
    assert result.error is not None
    assert "404" in result.error


async def test_pull_without_btp_server_fails_cleanly(js_runtime: JsRuntime) -> None:
    [result] = await run_js_pullers(
        "http://127.0.0.1:9/pull/1", free_port(), 1, "spsp", timeout=1, runtime=js_runtime
    )

    assert not result.ok
    assert result.error


@pytest.mark.parametrize("mode", MODES)
async def test_js_puller_pulls_from_direct_btp_server(js_runtime: JsRuntime, mode: PullMode) -> None:
    async with JsDirectBtpServer(max_packet_amount=1000, runtime=js_runtime) as server:
        [result] = await run_js_pullers(server.pointer_url(3000), server.btp_port, 3000, mode, timeout=30)

    assert result.ok, result.error
    assert result.received == 3000
    assert result.prepares_received >= 3


@pytest.mark.parametrize("name", ["node16", "system"])
async def test_pulls_work_on_both_runtimes(js_runtime: JsRuntime, name: str) -> None:
    node = str(NODE16) if name == "node16" else "node"
    if name == "node16" and not NODE16.is_file():
        pytest.skip("Node 16 package not installed")
    runtime = JsRuntime("node16" if name == "node16" else "system", node)
    async with JsConnector(runtime=runtime) as connector, JsPullServer(connector, runtime=runtime) as server:
        results = [
            await run_js_pullers(
                server.pointer_url(1000), connector.port, 1000, mode, timeout=30, runtime=runtime
            )
            for mode in MODES
        ]

    assert [r.received for [r] in results] == [1000, 1000]


async def test_servers_are_stopped_and_reaped(js_runtime: JsRuntime) -> None:
    async with (
        JsConnector(runtime=js_runtime) as connector,
        JsPullServer(connector, runtime=js_runtime) as server,
    ):
        pids = [connector.pid, server.pid]

    assert all(pid is not None and _process_gone(pid) for pid in pids)
