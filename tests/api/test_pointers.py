"""Creating, querying, updating and cancelling pointers over HTTP."""

from __future__ import annotations

import base64
from datetime import timedelta

from spsp_pull.domain.states import ReservationKind
from spsp_pull.store import reservations
from tests.api.conftest import AGREEMENT, Api


async def test_create_then_query_answers_spsp_with_the_pull_object(api: Api) -> None:
    created = await api.create()
    assert created["pointer"] == f"$pull.example/{created['token']}"
    assert created["amount"] == "1000" and created["balanceAvailable"] == "1000"
    response = await api.query(created["token"])
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/spsp4+json"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Allow-Headers"] == "web-monetization-id"
    body = await response.json(content_type=None)
    assert body["destination_account"].startswith("private.spsppull.")
    assert created["token"] not in body["destination_account"]
    assert len(base64.b64decode(body["shared_secret"])) == 32
    assert body["pull"] == {
        "balance": {"total": "0", "interval": "0", "available": "1000"},
        "cycle": 1,
        "state": "active",
        "agreement": {
            "amount": "1000",
            "start": "2024-01-31T12:00:00.000Z",
            "interval": "P1M",
            "cycles": 12,
            "cap": False,
            "asset": {"code": "USD", "scale": 2},
        },
    }


async def test_every_query_gets_its_own_secret(api: Api) -> None:
    token = (await api.create())["token"]
    first = await (await api.query(token)).json(content_type=None)
    second = await (await api.query(token)).json(content_type=None)
    assert first["shared_secret"] != second["shared_secret"]
    assert first["destination_account"] != second["destination_account"]


async def test_unknown_pointer_is_the_exact_spsp_404(api: Api) -> None:
    response = await api.query("no-such-token")
    assert response.status == 404
    assert response.headers["Content-Type"] == "application/spsp4+json"
    assert await response.text() == '{"id": "InvalidPointerError", "message": "Pointer does not exist."}'


async def test_cors_preflight(api: Api) -> None:
    response = await api.client.options("/some-token")
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "web-monetization-id" in response.headers["Access-Control-Allow-Headers"]


async def test_push_endpoint(api: Api) -> None:
    for path in ("/.well-known/pay", "/"):
        response = await api.client.get(path, headers={"Accept": "application/spsp4+json"})
        assert response.status == 200
        body = await response.json(content_type=None)
        assert "pull" not in body and body["destination_account"].startswith("private.spsppull.push~")


async def test_balances_move_with_time_and_pulls(api: Api) -> None:
    created = await api.create(amount=1000, cap=False, cycles=3)
    record_id = await _record_id(api, created["token"])
    now = api.clock.now()
    grant = await reservations.reserve(
        api.context.db, record_id, 400, kind=ReservationKind.STREAM, now=now, lease=timedelta(seconds=30)
    )
    assert grant is not None
    await reservations.settle(api.context.db, grant.reservation_id, 400, now=now)
    api.clock.advance(timedelta(days=30))  # 2024-03-01: second cycle (Jan 31 + P1M = Feb 29)
    pull = (await (await api.query(created["token"])).json(content_type=None))["pull"]
    assert pull["cycle"] == 2
    assert pull["balance"] == {"total": "400", "interval": "0", "available": "1600"}
    api.clock.advance(timedelta(days=400))
    pull = (await (await api.query(created["token"])).json(content_type=None))["pull"]
    assert pull["cycle"] == 15 and pull["balance"]["available"] == "2600"


async def test_update_extends_and_versions_are_kept(api: Api) -> None:
    token = (await api.create(cycles=1, cap=True))["token"]
    api.clock.advance(timedelta(days=40))
    pull = (await (await api.query(token)).json(content_type=None))["pull"]
    assert pull["balance"]["available"] == "0"
    response = await api.client.patch(f"/pointers/{token}", json={"cycles": 24}, headers=api.auth())
    assert response.status == 200, await response.text()
    updated = await response.json()
    assert updated["cycles"] == 24 and updated["balanceAvailable"] == "1000" and updated["version"] == 2
    response = await api.client.post(f"/update/{token}", json={"amount": "2500"}, headers=api.auth())
    assert response.status == 200
    assert (await response.json())["balanceAvailable"] == "2500"
    detail = await (await api.client.get(f"/pointers/{token}", headers=api.auth())).json()
    assert [v["version"] for v in detail["versions"]] == [1, 2, 3]
    assert [v["reason"] for v in detail["versions"]] == ["created", "updated", "updated"]


async def test_cancel_keeps_answering_with_zero(api: Api) -> None:
    token = (await api.create())["token"]
    response = await api.client.delete(f"/pointers/{token}", headers=api.auth())
    assert response.status == 200
    assert (await response.json())["state"] == "cancelled"
    query = await api.query(token)
    assert query.status == 200
    assert (await query.json(content_type=None))["pull"]["balance"]["available"] == "0"
    again = await api.client.patch(f"/pointers/{token}", json={"cycles": 30}, headers=api.auth())
    assert again.status == 409 and (await again.json())["code"] == "pointer-cancelled"


async def test_another_accounts_pointer_is_not_found(api: Api) -> None:
    token = (await api.create())["token"]
    for method, path, body in (
        ("GET", f"/pointers/{token}", None),
        ("PATCH", f"/pointers/{token}", {"cycles": 2}),
        ("POST", f"/update/{token}", {"cycles": 2}),
        ("DELETE", f"/pointers/{token}", None),
    ):
        response = await api.client.request(method, path, json=body, headers=api.auth(api.other_key))
        assert response.status == 404, (method, path)
        assert (await response.json())["code"] == "pointer-not-found"
    assert await api.pointer_count(api.other_key) == 0
    detail = await (await api.client.get(f"/pointers/{token}", headers=api.auth())).json()
    assert detail["cycles"] == 12 and detail["state"] == "active"


async def test_listing_is_paginated_and_scoped(api: Api) -> None:
    tokens = [(await api.create())["token"] for _ in range(5)]
    await api.create(api.other_key)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        path = "/pointers?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = await (await api.client.get(path, headers=api.auth())).json()
        seen += [item["token"] for item in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == tokens


async def test_idempotent_create(api: Api) -> None:
    headers = {**api.auth(), "Idempotency-Key": "order-42"}
    first = await api.client.post("/", json=AGREEMENT, headers=headers)
    second = await api.client.post("/", json=AGREEMENT, headers=headers)
    assert first.status == second.status == 201
    assert await first.json() == await second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    conflict = await api.client.post("/", json={**AGREEMENT, "amount": "5"}, headers=headers)
    assert conflict.status == 409 and (await conflict.json())["code"] == "idempotency-key-reused"
    assert await api.pointer_count() == 1


async def _record_id(api: Api, token: str) -> int:
    from spsp_pull.store.pointers import find_by_token

    record = await find_by_token(api.context.db, token)
    assert record is not None
    return record.id
