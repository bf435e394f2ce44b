"""Every kind of bad input gets a specific error and changes nothing (DESIGN section 10)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import AGREEMENT, Api

U64_MAX = 2**64 - 1


def without(field: str) -> dict[str, Any]:
    return {k: v for k, v in AGREEMENT.items() if k != field}


CREATE_CASES: list[tuple[str, dict[str, Any], int, str]] = [
    ("amount zero", {**AGREEMENT, "amount": 0}, 422, "amount-out-of-range"),
    ("amount zero string", {**AGREEMENT, "amount": "0"}, 422, "amount-out-of-range"),
    ("amount negative", {**AGREEMENT, "amount": -5}, 422, "amount-out-of-range"),
    ("amount negative string", {**AGREEMENT, "amount": "-5"}, 422, "amount-out-of-range"),
    ("amount above u64", {**AGREEMENT, "amount": str(U64_MAX + 1)}, 422, "amount-out-of-range"),
    ("amount above u64 number", {**AGREEMENT, "amount": U64_MAX + 1}, 422, "amount-out-of-range"),
    ("amount fractional", {**AGREEMENT, "amount": 1.5}, 422, "invalid-amount"),
    ("amount fractional string", {**AGREEMENT, "amount": "1.5"}, 422, "invalid-amount"),
    ("amount abc", {**AGREEMENT, "amount": "abc"}, 422, "invalid-amount"),
    ("amount bool", {**AGREEMENT, "amount": True}, 422, "invalid-amount"),
    ("amount exponent", {**AGREEMENT, "amount": "1e3"}, 422, "invalid-amount"),
    ("interval P0D", {**AGREEMENT, "interval": "P0D"}, 422, "invalid-interval"),
    ("interval PT-1S", {**AGREEMENT, "interval": "PT-1S"}, 422, "invalid-interval"),
    ("interval garbage", {**AGREEMENT, "interval": "monthly"}, 422, "invalid-interval"),
    ("interval number", {**AGREEMENT, "interval": 30}, 422, "invalid-interval"),
    ("cycles zero", {**AGREEMENT, "cycles": 0}, 422, "invalid-cycles"),
    ("cycles negative", {**AGREEMENT, "cycles": -1}, 422, "invalid-cycles"),
    ("cycles text", {**AGREEMENT, "cycles": "many"}, 422, "invalid-cycles"),
    ("scale 256", {**AGREEMENT, "assetScale": 256}, 422, "invalid-asset-scale"),
    ("scale negative", {**AGREEMENT, "assetScale": -1}, 422, "invalid-asset-scale"),
    ("asset code empty", {**AGREEMENT, "assetCode": ""}, 422, "invalid-asset-code"),
    ("asset code long", {**AGREEMENT, "assetCode": "ABCDEFGHIJKLM"}, 422, "invalid-asset-code"),
    ("cap not bool", {**AGREEMENT, "cap": "yes"}, 422, "invalid-cap"),
    (
        "start after expiry",
        {**AGREEMENT, "start": "2025-01-01T00:00:00Z", "expiry": "2024-12-01T00:00:00Z"},
        422,
        "start-after-expiry",
    ),
    ("start not a time", {**AGREEMENT, "start": "tomorrow"}, 422, "invalid-timestamp"),
    ("missing amount", without("amount"), 422, "missing-field"),
    ("missing interval", without("interval"), 422, "missing-field"),
    ("missing cycles", without("cycles"), 422, "missing-field"),
    ("missing asset code", without("assetCode"), 422, "missing-field"),
    ("unknown field", {**AGREEMENT, "amout": "5"}, 422, "unknown-field"),
    ("webhook not a url", {**AGREEMENT, "webhook": "ftp://x"}, 422, "invalid-webhook"),
]


@pytest.mark.parametrize(
    ("body", "status", "code"), [c[1:] for c in CREATE_CASES], ids=[c[0] for c in CREATE_CASES]
)
async def test_bad_create_bodies(api: Api, body: dict[str, Any], status: int, code: str) -> None:
    response = await api.client.post("/", json=body, headers=api.auth())
    assert response.status == status, await response.text()
    assert response.headers["Content-Type"].startswith("application/problem+json")
    problem = await response.json(content_type=None)
    assert problem["code"] == code
    assert problem["status"] == status and problem["detail"]
    assert await api.pointer_count() == 0


RAW_CASES: list[tuple[str, bytes, str, int, str]] = [
    ("not json", b"amount=1000", "application/json", 400, "malformed-json"),
    ("json array", b"[1, 2]", "application/json", 400, "json-object-required"),
    ("empty body", b"", "application/json", 400, "body-required"),
    ("oversized", b'{"amount": "' + b"1" * 70_000 + b'"}', "application/json", 413, "body-too-large"),
    ("form encoded", b"a=b", "application/x-www-form-urlencoded", 415, "unsupported-media-type"),
    ("bad utf-8", b'{"amount": "\xff"}', "application/json", 400, "malformed-json"),
]


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "code"), [c[1:] for c in RAW_CASES], ids=[c[0] for c in RAW_CASES]
)
async def test_bad_raw_bodies(api: Api, raw: bytes, content_type: str, status: int, code: str) -> None:
    response = await api.client.post("/", data=raw, headers={**api.auth(), "Content-Type": content_type})
    assert response.status == status, await response.text()
    assert (await response.json(content_type=None))["code"] == code
    assert await api.pointer_count() == 0


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}],
    ids=["missing", "wrong", "not bearer", "empty"],
)
async def test_wrong_or_missing_key(api: Api, headers: dict[str, str]) -> None:
    for method, path in (
        ("POST", "/"),
        ("GET", "/pointers"),
        ("PATCH", "/pointers/x"),
        ("DELETE", "/pointers/x"),
    ):
        response = await api.client.request(method, path, json=AGREEMENT, headers=headers)
        assert response.status == 401, (method, path)
        assert (await response.json())["code"] == "unauthorized"
    assert await api.pointer_count() == 0


UPDATE_CASES: list[tuple[str, dict[str, Any], int, str]] = [
    ("asset change", {"assetCode": "EUR"}, 422, "asset-immutable"),
    ("scale change", {"assetScale": 3}, 422, "asset-immutable"),
    ("no changes", {}, 422, "no-changes"),
    ("unknown field", {"cylces": 3}, 422, "unknown-field"),
    ("cycles zero", {"cycles": 0}, 422, "invalid-cycles"),
    ("amount zero", {"amount": "0"}, 422, "amount-out-of-range"),
    ("bad interval", {"interval": "P0D"}, 422, "invalid-interval"),
    ("expiry before start", {"expiry": "2000-01-01T00:00:00Z"}, 422, "start-after-expiry"),
]


@pytest.mark.parametrize(
    ("body", "status", "code"), [c[1:] for c in UPDATE_CASES], ids=[c[0] for c in UPDATE_CASES]
)
async def test_bad_updates_change_nothing(api: Api, body: dict[str, Any], status: int, code: str) -> None:
    token = (await api.create())["token"]
    response = await api.client.patch(f"/pointers/{token}", json=body, headers=api.auth())
    assert response.status == status, await response.text()
    assert (await response.json())["code"] == code
    detail = await (await api.client.get(f"/pointers/{token}", headers=api.auth())).json()
    assert detail["version"] == 1 and len(detail["versions"]) == 1 and detail["assetCode"] == "USD"


async def test_unknown_routes_and_methods_are_problems(api: Api) -> None:
    response = await api.client.get("/pointers/a/b")
    assert response.status == 404 and (await response.json(content_type=None))["code"] == "not-found"
    response = await api.client.put("/pointers/abc", headers=api.auth())
    assert response.status == 405 and (await response.json(content_type=None))["code"] == "method-not-allowed"


async def test_bad_pagination(api: Api) -> None:
    for query in ("limit=0", "limit=201", "limit=x", "cursor=abc"):
        response = await api.client.get(f"/pointers?{query}", headers=api.auth())
        assert response.status == 400, query
