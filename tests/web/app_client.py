"""The account's pages driven over HTTP as a browser without scripts would: GET a page, read its form's
CSRF field, POST the form (redirects not followed, so each answer can be checked)."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from spsp_pull.api.context import ApiContext
from spsp_pull.domain.clock import ManualClock
from spsp_pull.web.app_session import COOKIE_NAME

AGREEMENT = {
    "amount": "1000",
    "assetCode": "USD",
    "assetScale": 2,
    "interval": "P1M",
    "cycles": 12,
    "cap": False,
}
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_field(page: str) -> str:
    found = _CSRF.search(page)
    assert found is not None, "the page has no form with a CSRF field"
    return html.unescape(found.group(1))


@dataclass
class AppSite:
    client: TestClient[Any, Any]
    context: ApiContext
    clock: ManualClock
    wallet_key: str
    other_key: str

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.wallet_key}"}

    async def create_pointer(self, key: str | None = None, **fields: object) -> str:
        response = await self.client.post("/", json={**AGREEMENT, **fields}, headers=self.auth(key))
        assert response.status == 201, await response.text()
        token: str = (await response.json())["token"]
        return token

    async def pointer(self, token: str, key: str | None = None) -> dict[str, Any]:
        response = await self.client.get(f"/pointers/{token}", headers=self.auth(key))
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body

    async def get(self, path: str) -> ClientResponse:
        return await self.client.get(path, allow_redirects=False)

    async def page(self, path: str) -> str:
        response = await self.get(path)
        assert response.status == 200, (path, response.status)
        return await response.text()

    async def post(
        self, path: str, form: Mapping[str, str], *, csrf_from: str | None = None
    ) -> ClientResponse:
        """POST `form`, with the CSRF field of the page at `csrf_from` added when it is given."""
        data = dict(form)
        if csrf_from is not None:
            data["csrf"] = csrf_field(await self.page(csrf_from))
        return await self.client.post(path, data=data, allow_redirects=False)

    async def sign_in(self, key: str | None = None) -> ClientResponse:
        response = await self.post(
            "/app/sign-in", {"api_key": key or self.wallet_key}, csrf_from="/app/sign-in"
        )
        assert response.status == 303, await response.text()
        return response

    def forget_session(self) -> None:
        self.client.session.cookie_jar.clear(lambda cookie: cookie.key == COOKIE_NAME)
