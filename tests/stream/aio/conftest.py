"""Fixtures for the asyncio transports: a started BtpServer and clients that are closed afterwards."""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from harness.js_stack import JsRuntime, in_ci, select_runtime, stack_problem
from stream.aio.btp_client import BtpClient
from stream.aio.btp_server import BtpServer
from tests.stream.aio.helpers import ASSET, SERVER_ADDRESS

ClientFactory = Callable[..., Awaitable[BtpClient]]


@pytest.fixture
async def server() -> AsyncIterator[BtpServer]:
    async with BtpServer(SERVER_ADDRESS, ASSET) as started:
        yield started


@pytest.fixture
async def clients() -> AsyncIterator[ClientFactory]:
    """`await clients(url, **options)`: a connected BtpClient, closed at the end of the test."""
    made: list[BtpClient] = []

    async def make(url: str, **options: Any) -> BtpClient:
        client = BtpClient(url, **options)
        made.append(client)
        await client.connect()
        return client

    yield make
    for client in made:
        await client.close()


@pytest.fixture(scope="session")
def js_stack() -> JsRuntime:
    """The Node that runs the JS programs; skips (fails in CI) when the interop stack is not installed."""
    problem = stack_problem()
    if problem is not None:
        if in_ci():
            pytest.fail(f"{problem} (CI=true: the interop stack must be installed)")
        pytest.skip(problem)
    return select_runtime()
