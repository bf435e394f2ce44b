"""Changing a pointer's webhook, description and metadata over HTTP: no new version, balances kept."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import ClientResponse

from spsp_pull.cli import main as cli_main
from spsp_pull.domain.states import ReservationKind
from spsp_pull.store import pointers, reservations
from tests.api.conftest import Api

OLD_HOOK = "https://old.example/hook"
NEW_HOOK = "https://new.example/hook"


async def patch(api: Api, token: str, body: object, **headers: str) -> ClientResponse:
    return await api.client.patch(f"/pointers/{token}", json=body, headers={**api.auth(), **headers})


async def detail(api: Api, token: str) -> dict[str, Any]:
    response = await api.client.get(f"/pointers/{token}", headers=api.auth())
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def pulled(api: Api, token: str, amount: int) -> None:
    record = await pointers.find_by_token(api.context.db, token)
    assert record is not None
    now = api.clock.now()
    grant = await reservations.reserve(
        api.context.db, record.id, amount, kind=ReservationKind.STREAM, now=now, lease=timedelta(seconds=30)
    )
    assert grant is not None
    await reservations.settle(api.context.db, grant.reservation_id, amount, now=now)


BALANCES = ("balanceTotal", "balanceInterval", "balanceAvailable", "balanceReserved", "cycleCurrent")


async def test_changing_only_the_webhook_makes_no_new_version(api: Api) -> None:
    token = (await api.create(webhook=OLD_HOOK, description="rent", metadata={"order": 7}))["token"]
    await pulled(api, token, 400)
    before = await detail(api, token)
    response = await patch(api, token, {"webhook": NEW_HOOK})
    assert response.status == 200, await response.text()
    changed = await response.json()
    after = await detail(api, token)
    for view in (changed, after):
        assert (view["webhook"], view["description"], view["metadata"]) == (NEW_HOOK, "rent", {"order": 7})
        assert view["version"] == 1
        assert [view[name] for name in BALANCES] == [before[name] for name in BALANCES]
    assert after["versions"] == before["versions"] and after["pulls"] == before["pulls"]
    query = await (await api.query(token)).json(content_type=None)
    assert query["pull"]["balance"] == {"total": "400", "interval": "400", "available": "600"}


async def test_null_removes_webhook_description_and_metadata(api: Api) -> None:
    token = (await api.create(webhook=OLD_HOOK, description="rent", metadata={"order": 7}))["token"]
    response = await patch(api, token, {"webhook": None})
    assert (await response.json())["webhook"] is None
    view = await detail(api, token)
    assert (view["webhook"], view["description"], view["metadata"]) == (None, "rent", {"order": 7})
    response = await patch(api, token, {"description": None, "metadata": None})
    assert response.status == 200
    view = await detail(api, token)
    assert (view["webhook"], view["description"], view["metadata"]) == (None, None, None)
    assert len(view["versions"]) == 1


async def test_terms_and_details_change_together(api: Api) -> None:
    token = (await api.create(webhook=OLD_HOOK))["token"]
    response = await patch(api, token, {"cycles": 24, "description": "rent, extended", "webhook": NEW_HOOK})
    assert response.status == 200, await response.text()
    view = await detail(api, token)
    assert (view["cycles"], view["version"], view["description"]) == (24, 2, "rent, extended")
    assert view["webhook"] == NEW_HOOK
    assert [v["reason"] for v in view["versions"]] == ["created", "updated"]


async def test_the_compat_update_route_takes_the_same_fields(api: Api) -> None:
    token = (await api.create())["token"]
    response = await api.client.post(
        f"/update/{token}", json={"webhook": NEW_HOOK, "metadata": {"a": [1, 2]}}, headers=api.auth()
    )
    assert response.status == 200, await response.text()
    view = await detail(api, token)
    assert (view["webhook"], view["metadata"], view["version"]) == (NEW_HOOK, {"a": [1, 2]}, 1)


BAD_DETAILS: list[tuple[str, dict[str, Any], str]] = [
    ("webhook ftp", {"webhook": "ftp://x.example/"}, "invalid-webhook"),
    ("webhook no host", {"webhook": "https:///hook"}, "invalid-webhook"),
    ("webhook unclosed ipv6", {"webhook": "http://[::1/hook"}, "invalid-webhook"),
    ("webhook number", {"webhook": 42}, "invalid-webhook"),
    ("webhook too long", {"webhook": "https://x.example/" + "a" * 2000}, "invalid-webhook"),
    ("webhook with a term", {"cycles": 24, "webhook": "mailto:a@b.example"}, "invalid-webhook"),
    ("description too long", {"description": "d" * 1001}, "invalid-description"),
    ("description number", {"description": 5}, "invalid-description"),
    ("metadata too big", {"metadata": {"blob": "x" * 8200}}, "invalid-metadata"),
    ("metadata a list", {"metadata": [1, 2]}, "invalid-metadata"),
    ("metadata a string", {"metadata": "{}"}, "invalid-metadata"),
    ("unknown field beside", {"webhook": NEW_HOOK, "hook": NEW_HOOK}, "unknown-field"),
    ("asset beside", {"description": "x", "assetCode": "EUR"}, "asset-immutable"),
]


@pytest.mark.parametrize(("body", "code"), [c[1:] for c in BAD_DETAILS], ids=[c[0] for c in BAD_DETAILS])
async def test_bad_details_are_refused_and_change_nothing(api: Api, body: dict[str, Any], code: str) -> None:
    token = (await api.create(webhook=OLD_HOOK, description="rent", metadata={"order": 7}))["token"]
    before = await detail(api, token)
    for response in (
        await patch(api, token, body),
        await api.client.post(f"/update/{token}", json=body, headers=api.auth()),
    ):
        assert response.status == 422, await response.text()
        assert (await response.json())["code"] == code
    assert await detail(api, token) == before


async def test_metadata_up_to_the_limit_is_kept(api: Api) -> None:
    token = (await api.create())["token"]
    metadata = {"blob": "x" * (8192 - len('{"blob": ""}'))}
    response = await patch(api, token, {"metadata": metadata})
    assert response.status == 200, await response.text()
    assert (await detail(api, token))["metadata"] == metadata


async def test_another_account_cannot_change_the_details(api: Api) -> None:
    token = (await api.create(webhook=OLD_HOOK))["token"]
    before = await detail(api, token)
    for body in ({"webhook": NEW_HOOK}, {"description": "mine"}, {"metadata": None}):
        for method, path in (("PATCH", f"/pointers/{token}"), ("POST", f"/update/{token}")):
            response = await api.client.request(method, path, json=body, headers=api.auth(api.other_key))
            assert response.status == 404, (method, body)
            assert (await response.json())["code"] == "pointer-not-found"
    assert await detail(api, token) == before


async def test_a_cancelled_pointers_details_cannot_change(api: Api) -> None:
    token = (await api.create(webhook=OLD_HOOK))["token"]
    await api.client.delete(f"/pointers/{token}", headers=api.auth())
    response = await patch(api, token, {"webhook": NEW_HOOK})
    assert response.status == 409 and (await response.json())["code"] == "pointer-cancelled"
    assert (await detail(api, token))["webhook"] == OLD_HOOK


async def test_idempotent_patch_of_details_replays(api: Api) -> None:
    token = (await api.create(webhook=OLD_HOOK))["token"]
    first = await patch(api, token, {"webhook": NEW_HOOK, "cycles": 24}, **{"Idempotency-Key": "move-1"})
    assert first.status == 200
    second = await patch(api, token, {"webhook": NEW_HOOK, "cycles": 24}, **{"Idempotency-Key": "move-1"})
    assert second.status == 200 and second.headers["Idempotent-Replayed"] == "true"
    assert await first.json() == await second.json()
    conflict = await patch(api, token, {"webhook": OLD_HOOK}, **{"Idempotency-Key": "move-1"})
    assert conflict.status == 409 and (await conflict.json())["code"] == "idempotency-key-reused"
    view = await detail(api, token)
    assert (view["webhook"], view["version"]) == (NEW_HOOK, 2)


async def test_an_empty_update_is_still_refused(api: Api) -> None:
    token = (await api.create())["token"]
    response = await patch(api, token, {})
    assert response.status == 422
    problem = await response.json()
    assert problem["code"] == "no-changes" and "webhook" in problem["detail"]


async def test_the_cli_changes_and_removes_details(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    token = (await api.create(webhook=OLD_HOOK, description="rent"))["token"]
    server = ["--server", str(api.client.make_url("/")), "--api-key", api.wallet_key]

    async def cli(*args: str) -> int:
        return await asyncio.to_thread(cli_main, ["update", token, *args, *server])

    assert await cli("--webhook", NEW_HOOK, "--metadata", '{"order": 7}', "--description", "flat") == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["webhook"], shown["description"], shown["metadata"]) == (NEW_HOOK, "flat", {"order": 7})
    assert await cli("--no-webhook", "--metadata", "null") == 0
    view = await detail(api, token)
    assert (view["webhook"], view["description"], view["metadata"], view["version"]) == (
        None,
        "flat",
        None,
        1,
    )
    assert await cli("--metadata", "[1]") == 4  # ExitStatus.USAGE
    assert "--metadata must be a JSON object" in capsys.readouterr().err
    assert await cli() == 4
    assert "--no-webhook" in capsys.readouterr().err
