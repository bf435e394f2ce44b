"""The asyncio BTP transports against the JS stack: moneyd's connector and plain ilp-plugin-btp clients."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from harness.js_stack import (
    JsConnector,
    JsProcessError,
    JsRuntime,
    NodeProcess,
    btp_url,
    token_for,
    unique_name,
)
from stream import ildcp
from stream.aio.accounts import account_name
from stream.aio.btp_client import BtpClient
from stream.aio.btp_server import BtpServer
from tests.stream.aio.helpers import ASSET, SERVER_ADDRESS, Recorder, round_trips

pytestmark = pytest.mark.interop

PEER_READY_TIMEOUT = 20.0
LOCAL = f"{SERVER_ADDRESS}.local.receiver"


@asynccontextmanager
async def echo_peer(
    runtime: JsRuntime, url: str, *, send_to: str = "", count: int = 0, in_flight: int = 1
) -> AsyncIterator[dict[str, dict[str, Any]]]:
    """Runs js/echo-peer.js until the block ends; yields its reports by event ("ildcp", "sent")."""
    env = {"BTP_URL": url, "SEND_TO": send_to, "SEND_COUNT": str(count), "SEND_CONCURRENCY": str(in_flight)}
    process = NodeProcess("echo-peer.js", runtime.command("echo-peer.js"), env)
    await process.launch()
    try:
        await process.wait_ready(PEER_READY_TIMEOUT)
        reports = [json.loads(line) for line in process.stdout_lines if line.startswith("{")]
        yield {report["event"]: report for report in reports}
    finally:
        await process.stop()


def assert_all_fulfilled(sent: dict[str, Any], count: int) -> None:
    assert (sent["count"], sent["fulfilled"], sent["wrong"], sent["rejects"]) == (count, count, 0, {})


async def test_client_on_the_js_connector_exchanges_prepares_with_a_js_plugin(js_stack: JsRuntime) -> None:
    py_user, js_user = unique_name("py"), unique_name("js")
    async with (
        JsConnector(disable_rate_limit=True, runtime=js_stack) as connector,
        BtpClient(connector.btp_url(py_user)) as client,
    ):
        info = await client.ildcp()
        assert info == ildcp.IldcpResponse(
            connector.account_address(py_user), asset_scale=9, asset_code="XRP"
        )
        handler = Recorder()
        client.set_handler(handler)

        async with echo_peer(
            js_stack,
            connector.btp_url(js_user),
            send_to=f"{info.client_address}.conn1",
            count=1000,
            in_flight=50,
        ) as reports:
            assert reports["ildcp"]["address"] == connector.account_address(js_user)
            assert_all_fulfilled(reports["sent"], 1000)
            assert {p.destination for p in handler.seen} == {f"{info.client_address}.conn1"}

            js_address = connector.account_address(js_user)
            for in_flight in (1, 50):
                await round_trips(client.send, js_address, 1000, in_flight)


async def test_js_plugin_client_on_the_python_server(js_stack: JsRuntime) -> None:
    js_user = unique_name("js")
    async with BtpServer(SERVER_ADDRESS, ASSET) as server:
        handler = Recorder()
        server.set_handler(handler)

        async with echo_peer(
            js_stack, btp_url(server.port, js_user), send_to=LOCAL, count=1000, in_flight=50
        ) as reports:
            assert reports["ildcp"] == {
                "event": "ildcp",
                "address": f"{SERVER_ADDRESS}.{js_user}",
                "assetCode": "XRP",
                "assetScale": 9,
            }
            assert_all_fulfilled(reports["sent"], 1000)
            assert len(handler.seen) == 1000

            for in_flight in (1, 50):
                await round_trips(server.send, f"{SERVER_ADDRESS}.{js_user}", 1000, in_flight)


async def test_js_plugin_accounts_on_the_python_server(js_stack: JsRuntime) -> None:
    token = token_for("anonymous")
    async with BtpServer(SERVER_ADDRESS, ASSET) as server:
        async with echo_peer(js_stack, f"btp+ws://:{token}@127.0.0.1:{server.port}") as reports:
            assert reports["ildcp"]["address"] == f"{SERVER_ADDRESS}.{account_name('', token)}"

        async with echo_peer(js_stack, btp_url(server.port, "pinned", "first-token")):
            pass
        with pytest.raises(JsProcessError, match="connection aborted"):
            async with echo_peer(js_stack, btp_url(server.port, "pinned", "other-token")):
                pass
