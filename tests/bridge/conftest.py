from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from spsp_pull.domain.clock import ManualClock
from tests.bridge import factories
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
