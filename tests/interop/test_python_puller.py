"""Our Python puller against the JavaScript pull server (ilp-protocol-stream 2.7.1), through a connector."""

from __future__ import annotations

import pytest

from harness.js_stack import JsConnector, JsPullServer, JsRuntime
from spsp_pull.payee import pull

pytestmark = pytest.mark.interop


async def test_python_puller_pulls_from_the_js_pull_server(
    js_connector: JsConnector, js_pull_server: JsPullServer
) -> None:
    outcome = await pull(js_pull_server.pointer_url(3000), 3000, btp_url=js_connector.btp_url("pypayee1"))
    assert outcome.complete, outcome
    assert outcome.amount == 3000


async def test_python_puller_through_small_packets(js_runtime: JsRuntime) -> None:
    connector = JsConnector(max_packet_amount=1000, disable_rate_limit=True, runtime=js_runtime)
    async with connector, JsPullServer(connector, runtime=js_runtime) as server:
        outcome = await pull(server.pointer_url(25_000), 25_000, btp_url=connector.btp_url("pypayee2"))
    assert outcome.complete, outcome
    assert outcome.amount == 25_000
