"""The HTTP API with the payout routes, served on 127.0.0.1 over a real database and a running bridge."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient

from spsp_pull.api.context import ApiContext
from spsp_pull.bridge.service import Bridge
from spsp_pull.domain.clock import ManualClock
from spsp_pull.store.database import Database
from tests.api.serving import served_api

AGREEMENT = {
    "amount": "100000",
    "assetCode": "USD",
    "assetScale": 2,
    "interval": "P1M",
    "cycles": 12,
    "cap": False,
}


@dataclass
class PayoutApi:
    client: TestClient[Any, Any]
    context: ApiContext
    clock: ManualClock
    wallet_key: str
    other_key: str

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.wallet_key}"}

    async def pointer(self, **fields: object) -> str:
        response = await self.client.post("/", json={**AGREEMENT, **fields}, headers=self.auth())
        assert response.status == 201, await response.text()
        token: str = (await response.json())["token"]
        return token

    async def post(self, path: str, body: object = None, *, key: str | None = None, **headers: str) -> Any:
        response = await self.client.post(path, json=body, headers={**self.auth(key), **headers})
        return response.status, await response.json()

    async def get(self, path: str, *, key: str | None = None) -> Any:
        response = await self.client.get(path, headers=self.auth(key))
        return response.status, await response.json()


@asynccontextmanager
async def serve(db: Database, clock: ManualClock, bridge: Bridge | None) -> AsyncIterator[PayoutApi]:
    async with served_api(db, clock, bridge) as served:
        yield PayoutApi(served.client, served.context, clock, served.wallet_key, served.other_key)
