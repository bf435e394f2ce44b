"""An API served on a real loopback socket over a real database, with a movable clock."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from spsp_pull.api.context import ApiContext
from spsp_pull.domain.clock import ManualClock
from spsp_pull.store.database import Database
from tests.api.serving import ADMIN_KEY, api_accounts, fast_path_server

SPSP_ACCEPT = {"Accept": "application/spsp4+json, application/spsp+json"}
AGREEMENT = {
    "amount": "1000",
    "assetCode": "USD",
    "assetScale": 2,
    "interval": "P1M",
    "cycles": 12,
    "cap": False,
}


@dataclass
class Api:
    client: TestClient[Any, Any]
    context: ApiContext
    clock: ManualClock
    admin_key: str
    wallet_key: str
    other_key: str

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.wallet_key}"}

    async def create(self, key: str | None = None, **fields: object) -> dict[str, Any]:
        response = await self.client.post("/", json={**AGREEMENT, **fields}, headers=self.auth(key))
        assert response.status == 201, await response.text()
        body: dict[str, Any] = await response.json()
        return body

    async def query(self, token: str) -> ClientResponse:
        return await self.client.get(f"/{token}", headers=SPSP_ACCEPT)

    async def pointer_count(self, key: str | None = None) -> int:
        response = await self.client.get("/pointers?limit=200", headers=self.auth(key))
        assert response.status == 200
        return len((await response.json())["items"])


@pytest.fixture
async def api(db: Database, clock: ManualClock, aiohttp_client: AiohttpClient) -> Api:
    accounts = await api_accounts(db, clock)
    client: TestClient[Any, Any] = await aiohttp_client(fast_path_server(accounts.context))
    return Api(client, accounts.context, clock, ADMIN_KEY, accounts.wallet_key, accounts.other_key)
