"""The API on a real loopback socket over a real database, with an admin and two wallet accounts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from spsp_pull.api.app import build_app
from spsp_pull.api.auth import Authenticator
from spsp_pull.api.context import CONTEXT, ApiContext, StaticIlpEndpoint
from spsp_pull.api.query_fast_path import QueryFastPathSite, http_runner_options
from spsp_pull.bridge.service import Bridge
from spsp_pull.config import Config
from spsp_pull.domain.clock import ManualClock
from spsp_pull.ilp.receiver_address import ReceiverAddresses
from spsp_pull.store.accounts import create_account, ensure_admin
from spsp_pull.store.database import Database

ADMIN_KEY = "test-admin-key"


class FastPathTestServer(TestServer):
    """`TestServer`, listening through the query fast path as the real server does."""

    async def start_server(self, loop: object = None, **kwargs: Any) -> None:
        if self.runner:
            return
        options = http_runner_options(self.app[CONTEXT])
        runner = await self._make_runner(handler_cancellation=True, **options, **kwargs)
        assert isinstance(runner, web.AppRunner)
        await runner.setup()
        self.runner = runner
        await QueryFastPathSite(runner, self.host, 0).start()
        self.port = runner.addresses[0][1]
        self.scheme = "http"
        self._root = URL(f"http://{self.host}:{self.port}")


@dataclass
class Served:
    client: TestClient[Any, Any]
    context: ApiContext
    wallet_key: str
    other_key: str


@dataclass
class Accounts:
    context: ApiContext
    wallet_key: str
    other_key: str


def fast_path_server(context: ApiContext) -> FastPathTestServer:
    """The API's app on 127.0.0.1, for pytest-aiohttp's `aiohttp_client` (which takes a server as it is;
    `aiohttp_server` would make a plain TestServer, without the query fast path)."""
    return FastPathTestServer(build_app(context), host="127.0.0.1")


async def api_accounts(db: Database, clock: ManualClock, bridge: Bridge | None = None) -> Accounts:
    """The admin, a wallet and another account, and the API's context over them."""
    now = clock.now()
    admin = await ensure_admin(db, ADMIN_KEY, now)
    wallet = await create_account(db, "wallet", now)
    other = await create_account(db, "other", now)
    context = ApiContext(
        config=Config(host="pull.example", jwt_secret="offline-secret-shared-with-the-wallet"),
        db=db,
        clock=clock,
        addresses=ReceiverAddresses(b"s" * 32),
        ilp=StaticIlpEndpoint("private.spsppull"),
        auth=Authenticator(db),
        admin_account_id=admin.id,
        bridge=bridge,
    )
    return Accounts(context, wallet.key, other.key)


@asynccontextmanager
async def served_api(db: Database, clock: ManualClock, bridge: Bridge | None = None) -> AsyncIterator[Served]:
    """The API served for as long as the `async with`: for harnesses that tie it to another lifetime (the
    payout bridge's) or start it within a test, where a fixture's teardown order does not fit."""
    accounts = await api_accounts(db, clock, bridge)
    client = TestClient(fast_path_server(accounts.context))
    await client.start_server()
    try:
        yield Served(client, accounts.context, accounts.wallet_key, accounts.other_key)
    finally:
        await client.close()
