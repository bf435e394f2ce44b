"""Starting the bridge: the network comes from the backends, which must agree; a backend that is down
at start makes the payout API answer 503 until the reconciler reaches it."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from spsp_pull.bridge.amounts import Sats
from spsp_pull.bridge.network import Network
from spsp_pull.bridge.service import NetworkMismatch, start_bridge
from spsp_pull.domain.clock import ManualClock
from spsp_pull.store.database import Database
from tests.bridge import factories, harness
from tests.bridge.api_harness import serve
from tests.bridge.fakes.fake_bitcoind import FakeBitcoind
from tests.bridge.fakes.fake_lnd import FakeLnd

ADDRESS = factories.address(Network.REGTEST, "p2wpkh", "lifecycle")


async def test_the_network_is_learnt_and_both_backends_must_agree(
    db: Database, bridge_clock: ManualClock, bitcoind: FakeBitcoind
) -> None:
    async with harness.running(harness.settings(bitcoind), db, bridge_clock) as bridge:
        assert bridge.ready and bridge.network is Network.REGTEST
    testnet = FakeLnd(currency="tb")
    await testnet.start()
    try:
        with pytest.raises(NetworkMismatch):
            await start_bridge(harness.settings(bitcoind, testnet), db, bridge_clock)
    finally:
        await testnet.stop()


async def test_a_backend_down_at_start(
    db: Database, bridge_clock: ManualClock, bitcoind: FakeBitcoind
) -> None:
    await bitcoind.stop()
    async with (
        harness.running(harness.settings(bitcoind), db, bridge_clock) as bridge,
        serve(db, bridge_clock, bridge) as api,
    ):
        assert not bridge.ready
        token = await api.pointer()
        status, body = await api.post(
            f"/pointers/{token}/payouts", {"destination": ADDRESS, "priceAmount": "100"}
        )
        assert status == 503 and body["code"] == "payouts-unavailable"
        await bitcoind.start()
        await bridge.reconcile()
        assert bridge.ready
        status, body = await api.post(
            f"/pointers/{token}/payouts", {"destination": ADDRESS, "priceAmount": "100"}
        )
        assert status == 201, body


async def test_a_unified_uri_goes_to_the_rail_the_server_has(
    db: Database, bridge_clock: ManualClock, bitcoind: FakeBitcoind
) -> None:
    invoice = factories.invoice(
        Network.REGTEST, timestamp=int(factories.NOW.timestamp()), amount_msat=100_000_000
    )
    uri = f"bitcoin:{ADDRESS}?amount=0.001&lightning={invoice}"
    pointer = await harness.pointer(db, bridge_clock.now())
    async with harness.running(harness.settings(bitcoind), db, bridge_clock) as bridge:
        offer = await harness.offer(bridge, pointer, uri)
        assert (
            offer.rail == "onchain" and offer.address == ADDRESS and offer.transfer_msat == Sats(100_000).msat
        )


async def test_background_workers_batch_expire_and_stop(
    db: Database, bridge_clock: ManualClock, bitcoind: FakeBitcoind
) -> None:
    bitcoind.fund(10_000_000)
    config = replace(
        harness.settings(bitcoind),
        background=True,
        batch_interval=timedelta(milliseconds=50),
        expiry_interval=timedelta(milliseconds=50),
    )
    pointer = await harness.pointer(db, bridge_clock.now())
    bridge = await start_bridge(config, db, bridge_clock)
    try:
        queued = await harness.offer(bridge, pointer, ADDRESS, amount=Sats(50_000), auto_approve=True)
        stale = await harness.offer(bridge, pointer, ADDRESS, amount=Sats(60_000))
        bridge_clock.advance(config.offer_ttl)
        for _ in range(100):
            states = {(await harness.payout(db, p)).status for p in (queued, stale)}
            if states == {"SENT", "EXPIRED"}:
                break
            await asyncio.sleep(0.05)
        assert states == {"SENT", "EXPIRED"}
    finally:
        await bridge.stop()
    assert len(bitcoind.state.mempool) == 1
    await harness.assert_reservations_closed(db)
