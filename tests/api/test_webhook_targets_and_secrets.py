"""Over HTTP: webhooks to internal addresses are refused when a pointer is made or changed (online or
offline); each account reads and rotates its own webhook signing secret (API and CLI)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from spsp_pull.cli import main as cli_main
from spsp_pull.domain.clock import isoformat_z
from spsp_pull.offline import mint_offline_pointer
from spsp_pull.store.accounts import ROTATION_OVERLAP
from tests.api.conftest import AGREEMENT, SPSP_ACCEPT, Api

OFFLINE_SECRET = "offline-secret-shared-with-the-wallet"  # the fixture's SPSP_JWT_SECRET
INTERNAL = [
    "http://127.1:6000/accounts",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://0.0.0.0:6000/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::]/",
    "http://localhost:6000/",
    "http://admin.localhost/",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/",
]


@pytest.mark.parametrize("url", INTERNAL)
async def test_internal_webhooks_are_refused_on_create_and_update(api: Api, url: str) -> None:
    response = await api.client.post("/", json={**AGREEMENT, "webhook": url}, headers=api.auth())
    problem = await response.json()
    assert (response.status, problem["code"], problem["field"]) == (422, "webhook-target-refused", "webhook")
    assert await api.pointer_count() == 0
    token = (await api.create(webhook="https://shop.example/hook"))["token"]
    response = await api.client.patch(f"/pointers/{token}", json={"webhook": url}, headers=api.auth())
    assert response.status == 422 and (await response.json())["code"] == "webhook-target-refused"
    shown = await api.client.get(f"/pointers/{token}", headers=api.auth())
    assert (await shown.json())["webhook"] == "https://shop.example/hook"


async def test_an_offline_pointer_with_an_internal_webhook_is_refused(api: Api) -> None:
    token = mint_offline_pointer(
        {**AGREEMENT, "webhook": "http://[::ffff:127.0.0.1]:6000/"}, algorithm="HS256", secret=OFFLINE_SECRET
    )
    response = await api.client.get(f"/{token}", headers=SPSP_ACCEPT)
    problem = await response.json(content_type=None)
    assert response.status == 401 and problem["code"] == "jwt-claims-invalid"
    assert "webhook-target-refused" in problem["detail"]
    public = mint_offline_pointer(
        {**AGREEMENT, "webhook": "https://shop.example/hook"}, algorithm="HS256", secret=OFFLINE_SECRET
    )
    assert (await api.client.get(f"/{public}", headers=SPSP_ACCEPT)).status == 200


async def test_each_account_reads_and_rotates_its_own_secret(api: Api) -> None:
    async def secret(path: str, key: str) -> dict[str, object]:
        response = await api.client.get(path, headers=api.auth(key))
        assert response.status == 200, await response.text()
        body: dict[str, object] = await response.json()
        return body

    wallet = await secret("/me/webhook-secret", api.wallet_key)
    other = await secret("/me/webhook-secret", api.other_key)
    assert wallet["webhookSecret"] != other["webhookSecret"] and wallet["previousSecretValidUntil"] is None
    assert await secret("/accounts/wallet/webhook-secret", api.admin_key) == wallet

    response = await api.client.post("/me/webhook-secret/rotate", headers=api.auth(api.wallet_key))
    rotated = await response.json()
    assert response.status == 200 and rotated["webhookSecret"] != wallet["webhookSecret"]
    overlap_end = api.clock.now() + ROTATION_OVERLAP
    assert rotated["previousSecretValidUntil"] == isoformat_z(overlap_end)
    assert await secret("/me/webhook-secret", api.wallet_key) == rotated
    assert await secret("/me/webhook-secret", api.other_key) == other  # another account's is untouched

    response = await api.client.post("/accounts/other/webhook-secret/rotate", headers=api.auth(api.admin_key))
    assert response.status == 200
    assert (await secret("/me/webhook-secret", api.other_key))["webhookSecret"] != other["webhookSecret"]

    api.clock.advance(ROTATION_OVERLAP + timedelta(seconds=1))
    assert (await secret("/me/webhook-secret", api.wallet_key))["previousSecretValidUntil"] is None


async def test_only_the_admin_reads_or_rotates_another_accounts_secret(api: Api) -> None:
    for method, path in (
        ("GET", "/accounts/other/webhook-secret"),
        ("POST", "/accounts/other/webhook-secret/rotate"),
    ):
        response = await api.client.request(method, path, headers=api.auth(api.wallet_key))
        assert response.status == 403, await response.text()
    response = await api.client.get("/me/webhook-secret")
    assert response.status == 401


async def test_a_rotation_replayed_with_its_idempotency_key_rotates_once(api: Api) -> None:
    headers = {**api.auth(), "Idempotency-Key": "rotate-1"}
    first = await (await api.client.post("/me/webhook-secret/rotate", headers=headers)).json()
    again = await (await api.client.post("/me/webhook-secret/rotate", headers=headers)).json()
    assert first == again
    current = await (await api.client.get("/me/webhook-secret", headers=api.auth())).json()
    assert current["webhookSecret"] == first["webhookSecret"]


async def test_the_cli_shows_and_rotates_the_secret(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    server = ["--server", str(api.client.make_url("/")), "--api-key", api.wallet_key]

    async def cli(*args: str) -> dict[str, object]:
        assert await asyncio.to_thread(cli_main, ["webhook-secret", *args, *server]) == 0
        shown: dict[str, object] = json.loads(capsys.readouterr().out)
        return shown

    before = await cli()
    rotated = await cli("--rotate")
    assert rotated["webhookSecret"] != before["webhookSecret"] and rotated["previousSecretValidUntil"]
    assert await cli() == rotated
    admin = ["--server", str(api.client.make_url("/")), "--api-key", api.admin_key]
    assert await asyncio.to_thread(cli_main, ["webhook-secret", "--account", "wallet", *admin]) == 0
    assert json.loads(capsys.readouterr().out) == rotated
