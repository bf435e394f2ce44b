"""Pausing and resuming over HTTP: PATCH /pointers/<token> {"paused": true|false, "resumesAt"?}."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from spsp_pull.api.openapi import openapi_document
from spsp_pull.domain.clock import isoformat_z
from spsp_pull.domain.states import ReservationKind
from spsp_pull.offline import mint_offline_pointer
from spsp_pull.store import pointers, reservations
from tests.api.conftest import AGREEMENT, Api
from tests.api.test_offline_pointers import SECRET as OFFLINE_SECRET


async def patch(api: Api, token: str, body: dict[str, object], key: str | None = None) -> tuple[int, Any]:
    response = await api.client.patch(f"/pointers/{token}", json=body, headers=api.auth(key))
    return response.status, await response.json(content_type=None)


async def test_pause_shows_in_the_views_and_resume_brings_the_allowance_back(api: Api) -> None:
    created = await api.create(cap=True)
    token = created["token"]
    record = await pointers.find_by_token(api.context.db, token)
    assert record is not None
    grant = await reservations.reserve(
        api.context.db,
        record.id,
        300,
        kind=ReservationKind.STREAM,
        now=api.clock.now(),
        lease=timedelta(minutes=1),
    )
    assert grant is not None
    await reservations.settle(api.context.db, grant.reservation_id, 300, now=api.clock.now())
    paused_at = api.clock.now()

    status, body = await patch(api, token, {"paused": True})
    assert status == 200, body
    assert (body["state"], body["balanceAvailable"], body["balanceTotal"]) == ("paused", "0", "300")
    assert (body["pausedSince"], body["resumesAt"]) == (isoformat_z(paused_at), None)
    spsp = await (await api.query(token)).json(content_type=None)
    assert spsp["pull"]["state"] == "paused" and spsp["pull"]["balance"]["available"] == "0"
    assert spsp["pull"]["resumesAt"] is None

    api.clock.advance(timedelta(days=1))
    status, body = await patch(api, token, {"paused": False})
    assert status == 200, body
    assert (body["state"], body["balanceAvailable"]) == ("active", "700")
    assert (body["pausedSince"], body["resumesAt"]) == (None, None)
    assert "resumesAt" not in (await (await api.query(token)).json(content_type=None))["pull"]

    shown = await (await api.client.get(f"/pointers/{token}", headers=api.auth())).json()
    assert [(v["version"], v["reason"]) for v in shown["versions"]] == [
        (1, "created"),
        (2, "paused"),
        (3, "resumed"),
    ]
    assert shown["versions"][1]["pausedSince"] == isoformat_z(paused_at)
    assert shown["versions"][1]["pausedUntil"] is None
    assert shown["versions"][2]["pausedUntil"] == isoformat_z(api.clock.now())


async def test_a_pause_until_a_time_ends_by_itself(api: Api) -> None:
    token = (await api.create())["token"]
    until = api.clock.now() + timedelta(days=3)
    status, body = await patch(api, token, {"paused": True, "resumesAt": isoformat_z(until)})
    assert status == 200, body
    assert (body["state"], body["resumesAt"]) == ("paused", isoformat_z(until))
    spsp = await (await api.query(token)).json(content_type=None)
    assert spsp["pull"]["resumesAt"] == isoformat_z(until)
    api.clock.advance(timedelta(days=3))
    shown = await (await api.client.get(f"/pointers/{token}", headers=api.auth())).json()
    assert (shown["state"], shown["resumesAt"], shown["balanceAvailable"]) == ("active", None, "1000")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"paused": "yes"}, 422, "invalid-paused"),
        ({"paused": None}, 422, "invalid-paused"),
        ({"resumesAt": "2030-01-01T00:00:00Z"}, 422, "resumes-at-without-pause"),
        ({"paused": False, "resumesAt": "2030-01-01T00:00:00Z"}, 422, "resumes-at-without-pause"),
        ({"paused": True, "resumesAt": "2020-01-01T00:00:00Z"}, 422, "resumes-at-in-past"),
        ({"paused": True, "resumesAt": "tomorrow"}, 422, "invalid-timestamp"),
        ({"paused": False}, 409, "not-paused"),
    ],
)
async def test_bad_pause_input_is_a_problem_and_changes_nothing(
    api: Api, body: dict[str, object], status: int, code: str
) -> None:
    token = (await api.create())["token"]
    answer, problem = await patch(api, token, body)
    assert (answer, problem["code"]) == (status, code), problem
    shown = await (await api.client.get(f"/pointers/{token}", headers=api.auth())).json()
    assert (shown["state"], shown["version"]) == ("active", 1)


async def test_only_the_owner_pauses_and_a_cancelled_pointer_stays_cancelled(api: Api) -> None:
    token = (await api.create())["token"]
    status, problem = await patch(api, token, {"paused": True}, key=api.other_key)
    assert (status, problem["code"]) == (404, "pointer-not-found")
    await api.client.delete(f"/pointers/{token}", headers=api.auth())
    status, problem = await patch(api, token, {"paused": True})
    assert (status, problem["code"]) == (409, "pointer-cancelled")


async def test_an_offline_pointer_is_paused_by_its_account(api: Api) -> None:
    """Its terms are signed by the wallet, but the pause is the payer's account's, kept by the server."""
    jwt = mint_offline_pointer({**AGREEMENT, "jti": "paused"}, algorithm="HS256", secret=OFFLINE_SECRET)
    assert (await api.query(jwt)).status == 200
    listed = (await (await api.client.get("/pointers", headers=api.auth(api.admin_key))).json())["items"]
    status, body = await patch(api, listed[0]["token"], {"paused": True}, key=api.admin_key)
    assert status == 200, body
    assert (body["origin"], body["state"]) == ("jwt", "paused")
    spsp = await (await api.query(jwt)).json(content_type=None)
    assert (spsp["pull"]["state"], spsp["pull"]["balance"]["available"]) == ("paused", "0")


async def test_the_views_of_a_paused_pointer_are_what_the_openapi_document_says(api: Api) -> None:
    schemas = openapi_document()["components"]["schemas"]
    token = (await api.create())["token"]
    _, body = await patch(api, token, {"paused": True})
    assert set(body) == set(schemas["Pointer"]["properties"])
    assert body["state"] in schemas["Pointer"]["properties"]["state"]["enum"]
    pull = (await (await api.query(token)).json(content_type=None))["pull"]
    assert set(pull) == set(schemas["SpspResponse"]["properties"]["pull"]["properties"])
