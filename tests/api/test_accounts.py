"""Accounts and keys: the bootstrap admin creates wallets, each with its own key."""

from __future__ import annotations

from tests.api.conftest import Api


async def test_admin_creates_an_account_whose_key_works(api: Api) -> None:
    response = await api.client.post("/accounts", json={"name": "shop"}, headers=api.auth(api.admin_key))
    assert response.status == 201
    created = await response.json()
    assert created["name"] == "shop" and created["apiKey"].startswith("sk_")
    me = await (await api.client.get("/me", headers=api.auth(created["apiKey"]))).json()
    assert me["name"] == "shop" and me["admin"] is False
    await api.create(created["apiKey"])
    assert await api.pointer_count(created["apiKey"]) == 1
    names = [
        a["name"]
        for a in (await (await api.client.get("/accounts", headers=api.auth(api.admin_key))).json())["items"]
    ]
    assert names == ["admin", "wallet", "other", "shop"]


async def test_duplicate_account_name_conflicts(api: Api) -> None:
    response = await api.client.post("/accounts", json={"name": "wallet"}, headers=api.auth(api.admin_key))
    assert response.status == 409 and (await response.json())["code"] == "account-exists"


async def test_only_the_admin_manages_accounts(api: Api) -> None:
    response = await api.client.post("/accounts", json={"name": "x"}, headers=api.auth())
    assert response.status == 403 and (await response.json())["code"] == "forbidden"
    response = await api.client.get("/accounts", headers=api.auth())
    assert response.status == 403


async def test_new_key_for_an_account(api: Api) -> None:
    response = await api.client.post("/accounts/wallet/keys", headers=api.auth(api.admin_key))
    assert response.status == 201
    key = (await response.json())["apiKey"]
    assert key != api.wallet_key
    await api.create()
    assert await api.pointer_count(key) == 1
    missing = await api.client.post("/accounts/nobody/keys", headers=api.auth(api.admin_key))
    assert missing.status == 404
