"""API keys: listed without their secrets, revoked by the admin or by the account itself, refused at once
everywhere after revocation; the configured admin key is not revocable through the API."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import ClientResponse
from pytest_aiohttp import AiohttpClient

from spsp_pull import cli
from spsp_pull.api.app import build_app
from spsp_pull.api.auth import Authenticator
from spsp_pull.store.accounts import AdminKeyRevoked, ensure_admin
from tests.api.conftest import Api


async def problem(response: ClientResponse, status: int, code: str) -> None:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    assert (await response.json())["code"] == code


async def issue(api: Api, account: str, label: str | None = None) -> tuple[int, str]:
    body = None if label is None else {"label": label}
    response = await api.client.post(f"/accounts/{account}/keys", json=body, headers=api.auth(api.admin_key))
    assert response.status == 201, await response.text()
    issued = await response.json()
    return issued["apiKeyId"], issued["apiKey"]


async def keys(api: Api, key: str, path: str = "/me/keys") -> list[dict[str, Any]]:
    response = await api.client.get(path, headers=api.auth(key))
    assert response.status == 200, await response.text()
    items: list[dict[str, Any]] = (await response.json())["items"]
    return items


async def test_keys_are_listed_without_their_secrets(api: Api) -> None:
    first_id, first = await issue(api, "wallet", "laptop")
    second_id, second = await issue(api, "wallet")
    listing = await api.client.get("/accounts/wallet/keys", headers=api.auth(api.admin_key))
    text = await listing.text()
    for secret in (api.wallet_key, first, second):
        assert secret not in text
    items = (await listing.json())["items"]
    assert [k["id"] for k in items][1:] == [first_id, second_id]
    assert [k["label"] for k in items] == [None, "laptop", None]
    assert set(items[1]) == {"id", "prefix", "label", "bootstrap", "createdAt", "revokedAt"}
    assert items[1]["prefix"] == first[:8] and items[1]["createdAt"] == "2024-01-31T12:00:00.000Z"
    assert all(k["revokedAt"] is None and k["bootstrap"] is False for k in items)
    assert await keys(api, second) == items


async def test_a_revoked_key_is_refused_at_once_on_every_route_and_server(
    api: Api, aiohttp_client: AiohttpClient
) -> None:
    revoked_id, revoked = await issue(api, "wallet")
    _, kept = await issue(api, "wallet")
    second_server = await aiohttp_client(build_app(replace(api.context, auth=Authenticator(api.context.db))))
    for client in (api.client, second_server):
        assert (await client.get("/me", headers=api.auth(revoked))).status == 200

    api.clock.advance(timedelta(minutes=1))
    response = await api.client.delete(f"/me/keys/{revoked_id}", headers=api.auth(kept))
    assert response.status == 200
    assert (await response.json())["revokedAt"] == "2024-01-31T12:01:00.000Z"

    unknown = await api.client.get("/me", headers=api.auth("sk_unknown"))
    await problem(unknown, 401, "unauthorized")
    for client in (api.client, second_server):
        await problem(await client.get("/me", headers=api.auth(revoked)), 401, "unauthorized")
        await problem(await client.get("/me/keys", headers=api.auth(revoked)), 401, "unauthorized")
        created = await client.post("/", json={"amount": "1"}, headers=api.auth(revoked))
        await problem(created, 401, "unauthorized")
    await api.create(kept)
    assert await api.pointer_count(kept) == 1


async def test_revoking_twice_answers_the_same(api: Api) -> None:
    key_id, _ = await issue(api, "wallet")
    first = await api.client.delete(f"/me/keys/{key_id}", headers=api.auth())
    api.clock.advance(timedelta(hours=1))
    again = await api.client.delete(f"/me/keys/{key_id}", headers=api.auth())
    assert first.status == again.status == 200
    assert await again.json() == await first.json()


async def test_a_key_may_revoke_itself(api: Api) -> None:
    key_id, key = await issue(api, "wallet")
    assert (await api.client.delete(f"/me/keys/{key_id}", headers=api.auth(key))).status == 200
    await problem(await api.client.get("/me", headers=api.auth(key)), 401, "unauthorized")
    [revoked] = [k for k in await keys(api, api.wallet_key) if k["id"] == key_id]
    assert revoked["revokedAt"] == "2024-01-31T12:00:00.000Z"


async def test_an_account_cannot_see_or_revoke_another_accounts_keys(api: Api) -> None:
    wallet_key_id, wallet_key = await issue(api, "wallet")
    assert wallet_key_id not in [k["id"] for k in await keys(api, api.other_key)]
    await problem(
        await api.client.delete(f"/me/keys/{wallet_key_id}", headers=api.auth(api.other_key)),
        404,
        "key-not-found",
    )
    for method, path in (
        ("GET", "/accounts/wallet/keys"),
        ("DELETE", f"/accounts/wallet/keys/{wallet_key_id}"),
    ):
        response = await api.client.request(method, path, headers=api.auth(api.other_key))
        await problem(response, 403, "forbidden")
    assert (await api.client.get("/me", headers=api.auth(wallet_key))).status == 200


async def test_the_admin_revokes_an_accounts_key(api: Api) -> None:
    key_id, key = await issue(api, "wallet")
    admin = api.auth(api.admin_key)
    await problem(
        await api.client.delete(f"/accounts/other/keys/{key_id}", headers=admin), 404, "key-not-found"
    )
    response = await api.client.delete(f"/accounts/wallet/keys/{key_id}", headers=admin)
    assert response.status == 200 and (await response.json())["id"] == key_id
    await problem(await api.client.get("/me", headers=api.auth(key)), 401, "unauthorized")
    assert (await api.client.get("/me", headers=api.auth())).status == 200


@pytest.mark.parametrize("key_id", ["999999", "abc", "-1", "99999999999", "1.0"])
async def test_unknown_key_ids_are_not_found(api: Api, key_id: str) -> None:
    for path, key in (
        (f"/me/keys/{key_id}", api.wallet_key),
        (f"/accounts/wallet/keys/{key_id}", api.admin_key),
    ):
        await problem(await api.client.delete(path, headers=api.auth(key)), 404, "key-not-found")


async def test_unknown_accounts_are_not_found(api: Api) -> None:
    admin = api.auth(api.admin_key)
    await problem(await api.client.get("/accounts/nobody/keys", headers=admin), 404, "account-not-found")
    await problem(await api.client.delete("/accounts/nobody/keys/1", headers=admin), 404, "account-not-found")


async def test_the_configured_admin_key_cannot_be_revoked_through_the_api(api: Api) -> None:
    extra_id, extra = await issue(api, "admin")
    [configured] = [k for k in await keys(api, api.admin_key) if k["bootstrap"]]
    for path in (f"/me/keys/{configured['id']}", f"/accounts/admin/keys/{configured['id']}"):
        response = await api.client.delete(path, headers=api.auth(extra))
        await problem(response, 409, "bootstrap-key")
    assert (await api.client.delete(f"/me/keys/{extra_id}", headers=api.auth(api.admin_key))).status == 200
    assert (await api.client.get("/accounts", headers=api.auth(api.admin_key))).status == 200


async def test_a_reconfigured_admin_key_leaves_the_old_one_revocable(api: Api) -> None:
    db, now = api.context.db, api.clock.now()
    await ensure_admin(db, "new-admin-key", now)
    listed = {k["bootstrap"]: k["id"] for k in await keys(api, "new-admin-key")}
    response = await api.client.delete(f"/me/keys/{listed[False]}", headers=api.auth("new-admin-key"))
    assert response.status == 200
    await problem(await api.client.get("/me", headers=api.auth(api.admin_key)), 401, "unauthorized")
    with pytest.raises(AdminKeyRevoked):
        await ensure_admin(db, api.admin_key, now)


@pytest.mark.parametrize("label", ["", 5, "x" * 101])
async def test_a_label_has_1_to_100_characters(api: Api, label: object) -> None:
    response = await api.client.post(
        "/accounts/wallet/keys", json={"label": label}, headers=api.auth(api.admin_key)
    )
    await problem(response, 422, "invalid-label")


async def test_cli_lists_issues_and_revokes_keys(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    async def run(*argv: str) -> Any:
        server = ["--server", str(api.client.make_url("")), "--api-key", api.admin_key]
        status = await asyncio.to_thread(cli.main, ["accounts", *argv, *server])
        assert status == 0, capsys.readouterr().err
        return json.loads(capsys.readouterr().out)

    issued = await run("new-key", "wallet", "--label", "ci")
    listed = await run("keys", "wallet")
    assert [k["label"] for k in listed["items"]] == [None, "ci"]
    revoked = await run("revoke-key", "wallet", str(issued["apiKeyId"]))
    assert revoked["id"] == issued["apiKeyId"] and revoked["revokedAt"]
    await problem(await api.client.get("/me", headers=api.auth(issued["apiKey"])), 401, "unauthorized")
