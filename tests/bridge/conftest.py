from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from spsp_pull.bridge.service import Bridge
from spsp_pull.domain.clock import ManualClock
from spsp_pull.store.database import Database
from tests.bridge import factories, harness
from tests.bridge.api_harness import PayoutApi, serve
from tests.bridge.fakes.fake_bitcoind import FakeBitcoind
from tests.bridge.fakes.fake_lnd import FakeLnd


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def bitcoind() -> AsyncIterator[FakeBitcoind]:
    node = FakeBitcoind()
    await node.start()
    yield node
    await node.stop()


@pytest.fixture
async def lnd() -> AsyncIterator[FakeLnd]:
    node = FakeLnd(clock=lambda: int(factories.NOW.timestamp()))
    await node.start()
    yield node
    await node.stop()


@pytest.fixture
def bridge_clock() -> ManualClock:
    """The bridge's clock, at the time the factories sign invoices for (the fake LND follows it)."""
    return ManualClock(factories.NOW)


@pytest.fixture
async def ln_node(bridge_clock: ManualClock) -> AsyncIterator[FakeLnd]:
    node = FakeLnd(clock=lambda: int(bridge_clock.now().timestamp()))
    await node.start()
    yield node
    await node.stop()


@pytest.fixture
async def bridge(
    db: Database, bridge_clock: ManualClock, bitcoind: FakeBitcoind, ln_node: FakeLnd
) -> AsyncIterator[Bridge]:
    """The payout bridge over the funded fake bitcoind and fake LND (a module may define its own)."""
    bitcoind.fund(50_000_000, count=2)
    async with harness.running(harness.settings(bitcoind, ln_node), db, bridge_clock) as running:
        yield running


@pytest.fixture
async def api(db: Database, bridge_clock: ManualClock, bridge: Bridge) -> AsyncIterator[PayoutApi]:
    async with serve(db, bridge_clock, bridge) as served:
        yield served
