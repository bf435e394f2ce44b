"""The payout flow end to end: `spsp-pull serve` started as the README says, against the fake Bitcoin Core and
LND (real HTTP on 127.0.0.1), driven over HTTP as a payee would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from harness.server_process import ServerProcess
from spsp_pull.bridge.network import Network
from tests.bridge import factories
from tests.bridge.fakes.fake_bitcoind import FakeBitcoind
from tests.bridge.fakes.fake_lnd import FakeLnd

ADMIN = "payout-admin"


@pytest.fixture
async def live_lnd() -> AsyncIterator[FakeLnd]:
    node = FakeLnd(clock=lambda: int(time.time()))
    await node.start()
    yield node
    await node.stop()


async def call(session: aiohttp.ClientSession, method: str, url: str, body: object = None) -> Any:
    async with session.request(
        method, url, json=body, headers={"Authorization": f"Bearer {ADMIN}"}
    ) as response:
        payload = await response.json(content_type=None)
        assert response.status < 300, payload
        return payload


async def test_onchain_and_lightning_payouts_from_a_running_server(
    tmp_path: Path, bitcoind: FakeBitcoind, live_lnd: FakeLnd
) -> None:
    bitcoind.fund(10_000_000)
    env = {
        "SPSP_AUTH_TOKEN": ADMIN,
        "SPSP_BITCOIND_URL": bitcoind.url(),
        "SPSP_LND_URL": live_lnd.base_url,
        "SPSP_LND_MACAROON": live_lnd.state.macaroon_hex,
        "SPSP_RATES": '{"BTC/USD": "50000"}',
        "SPSP_BRIDGE_BATCH_INTERVAL": "1",
    }
    async with ServerProcess(tmp_path, env=env) as server, aiohttp.ClientSession() as session:
        pointer = await call(
            session,
            "POST",
            f"{server.url}/",
            {
                "amount": "10000",
                "assetCode": "USD",
                "assetScale": 2,
                "interval": "P1M",
                "cycles": 12,
                "cap": False,
            },
        )
        token = pointer["token"]
        address = factories.address(Network.REGTEST, "p2wpkh", "end-to-end")
        onchain = await call(
            session,
            "POST",
            f"{server.url}/{token}/payouts",
            {"destination": address, "priceAmount": "2000", "autoApprove": True},
        )
        assert onchain["status"] == "QUEUED"
        preimage = factories.preimage("end-to-end")
        live_lnd.expect(preimage)  # the payee's node knows the preimage: the payment can succeed
        invoice = factories.invoice(
            Network.REGTEST, timestamp=int(time.time()), amount_msat=50_000_000, payment_preimage=preimage
        )
        lightning = await call(
            session, "POST", f"{server.url}/{token}/payouts", {"destination": invoice, "autoApprove": True}
        )
        for _ in range(100):
            states = {
                (await call(session, "GET", f"{server.url}/{token}/payouts/{p['payoutId']}"))["status"]
                for p in (onchain, lightning)
            }
            if states == {"SENT"}:
                break
            await asyncio.sleep(0.1)
        assert states == {"SENT"}
        shown = await call(session, "GET", f"{server.url}/{token}/payouts/{lightning['payoutId']}")
        assert shown["proof"]["preimage"] == preimage.hex()
        assert len(bitcoind.state.mempool) == 1
        limits = await call(session, "GET", f"{server.url}/{token}/payout-limits?currency=BTC")
        balance = (await call(session, "GET", f"{server.url}/{token}"))["pull"]["balance"]
        assert int(balance["total"]) == 2000 + int(lightning["priceAmount"])
        assert limits["currency"] == "BTC" and Decimal(limits["used"]) > 0
