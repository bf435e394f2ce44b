"""In uplink mode the server answers /healthz 200 only once the connector has accepted it (IL-DCP done)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from harness.server_process import free_port
from spsp_pull.config import Config
from spsp_pull.server import start_server
from stream.aio.btp_server import BtpServer


async def test_healthz_waits_for_the_connector(tmp_path: Path) -> None:
    btp_port = free_port()
    config = Config(
        port=0,
        data_dir=tmp_path,
        auth_token="k",
        ilp_uplink=f"btp+ws://pullsrv:secret@127.0.0.1:{btp_port}",
    )
    server = await start_server(config, announce=lambda _: None)
    connector = BtpServer("test.connector", ("USD", 2), port=btp_port)
    try:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{server.port}/healthz"
            async with session.get(url) as response:
                assert response.status == 503
            async with session.get(f"http://127.0.0.1:{server.port}/.well-known/pay") as response:
                assert response.status == 503  # no address yet: no SPSP answers
            await connector.start()
            for _ in range(100):
                async with session.get(url) as response:
                    if response.status == 200:
                        body = await response.json()
                        break
                await asyncio.sleep(0.1)
            assert body["ilpAddress"] == "test.connector.pullsrv"
            async with session.get(
                f"http://127.0.0.1:{server.port}/.well-known/pay",
                headers={"Accept": "application/spsp4+json"},
            ) as response:
                assert (await response.json(content_type=None))["destination_account"].startswith(
                    "test.connector.pullsrv.push~"
                )
    finally:
        await server.stop()
        await connector.stop()


async def test_embedded_endpoint_takes_another_port_when_the_default_is_taken(tmp_path: Path) -> None:
    blocker = BtpServer("test.blocker", ("XRP", 9), port=0)
    await blocker.start()
    try:
        from spsp_pull.ilp.node import EmbeddedNode
        from spsp_pull.rates import Asset

        node = EmbeddedNode(
            "private.x", Asset("XRP", 9), host="127.0.0.1", port=blocker.port, fallback_to_free_port=True
        )
        await node.start()
        assert node.btp_port != blocker.port and node.ready
        await node.stop()
        strict = EmbeddedNode(
            "private.x", Asset("XRP", 9), host="127.0.0.1", port=blocker.port, fallback_to_free_port=False
        )
        try:
            await strict.start()
            raise AssertionError("a configured port that is taken must fail")
        except OSError:
            pass
    finally:
        await blocker.stop()
