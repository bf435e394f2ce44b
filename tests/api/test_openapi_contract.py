"""The OpenAPI document and the server agree on required fields and limits.

Requests are derived from the document itself: every required field dropped in turn (refused, naming the
field), every optional one dropped (accepted), and every numeric and length bound met exactly (accepted) and
exceeded by one (refused, naming the field, nothing created). A bound added to the document, or one the
server changes, shows up here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import ClientResponse

from spsp_pull.api.openapi import openapi_document
from spsp_pull.domain.clock import isoformat_z
from tests.api.conftest import Api

SCHEMAS: dict[str, Any] = openapi_document()["components"]["schemas"]
URL_PREFIX = "https://receiver.example/"


def examples(api: Api) -> dict[str, object]:
    """A valid value for every property of AgreementInput (the test fails when the document adds one)."""
    now = api.clock.now()
    return {
        "amount": "1000",
        "assetCode": "XRP",
        "assetScale": 9,
        "interval": "P1M",
        "cycles": 12,
        "cap": False,
        "start": isoformat_z(now),
        "expiry": isoformat_z(now + timedelta(days=400)),
        "webhook": URL_PREFIX + "hook",
        "description": "rent",
        "metadata": {"order": 7},
    }


@dataclass(frozen=True)
class Bound:
    field: str
    name: str  # the keyword: maximum, minimum, maxLength, minLength, enum
    at: object  # a value on the bound: the document allows it
    beyond: object  # one step past it: the document forbids it


def text_of_length(schema: dict[str, Any], length: int) -> str:
    if schema.get("format") == "uri":
        return URL_PREFIX + "x" * (length - len(URL_PREFIX))
    return "X" * length


def bounds(schema_name: str) -> Iterator[Bound]:
    """Every bound the document states on the schema's properties (each branch of a oneOf)."""
    for field, prop in SCHEMAS[schema_name]["properties"].items():
        for branch in prop.get("oneOf", [prop]):
            if "maximum" in branch:
                yield Bound(field, "maximum", branch["maximum"], branch["maximum"] + 1)
            if "minimum" in branch:
                yield Bound(field, "minimum", branch["minimum"], branch["minimum"] - 1)
            if "maxLength" in branch:
                n = branch["maxLength"]
                yield Bound(field, "maxLength", text_of_length(branch, n), text_of_length(branch, n + 1))
            if branch.get("minLength", 0) > 0:
                n = branch["minLength"]
                yield Bound(field, "minLength", text_of_length(branch, n), text_of_length(branch, n - 1))
            if "enum" in branch and branch.get("type") == "string":
                for allowed in branch["enum"]:
                    yield Bound(field, "enum", allowed, "not-" + allowed)


async def refused_naming(response: ClientResponse, field: str) -> dict[str, Any]:
    assert 400 <= response.status < 500, (field, response.status, await response.text())
    assert response.content_type == "application/problem+json"
    problem: dict[str, Any] = await response.json(content_type=None)
    assert problem.get("field") == field, problem
    return problem


def test_the_document_lists_every_field_the_examples_give(api: Api) -> None:
    assert set(SCHEMAS["AgreementInput"]["properties"]) == set(examples(api))
    pause_only = {"paused", "resumesAt"}  # a pointer is created running; only a change pauses it
    assert set(SCHEMAS["AgreementChanges"]["properties"]) - pause_only <= set(examples(api))
    assert pause_only <= set(SCHEMAS["AgreementChanges"]["properties"])


async def test_required_fields_of_a_new_pointer(api: Api) -> None:
    schema = SCHEMAS["AgreementInput"]
    assert "cap" in schema["required"]
    before = await api.pointer_count()
    for field in examples(api):
        body = {k: v for k, v in examples(api).items() if k != field}
        response = await api.client.post("/", json=body, headers=api.auth())
        if field in schema["required"]:
            problem = await refused_naming(response, field)
            assert problem["code"] == "missing-field"
        else:
            assert response.status == 201, (field, await response.text())
    optional = len(set(examples(api)) - set(schema["required"]))
    assert await api.pointer_count() == before + optional


@pytest.mark.parametrize("bound", list(bounds("AgreementInput")), ids=lambda b: f"{b.field}-{b.name}")
async def test_limits_of_a_new_pointer(api: Api, bound: Bound) -> None:
    before = await api.pointer_count()
    at = await api.client.post("/", json={**examples(api), bound.field: bound.at}, headers=api.auth())
    assert at.status == 201, (bound, await at.text())
    beyond = await api.client.post("/", json={**examples(api), bound.field: bound.beyond}, headers=api.auth())
    await refused_naming(beyond, bound.field)
    assert await api.pointer_count() == before + 1


@pytest.mark.parametrize("bound", list(bounds("AgreementChanges")), ids=lambda b: f"{b.field}-{b.name}")
async def test_limits_of_a_change(api: Api, bound: Bound) -> None:
    created = await api.client.post("/", json=examples(api), headers=api.auth())
    assert created.status == 201, await created.text()
    token = (await created.json())["token"]
    path = f"/pointers/{token}"
    beyond = await api.client.patch(path, json={bound.field: bound.beyond}, headers=api.auth())
    await refused_naming(beyond, bound.field)
    at = await api.client.patch(path, json={bound.field: bound.at}, headers=api.auth())
    assert at.status == 200, (bound, await at.text())


def test_the_limits_found_cover_the_server_checks() -> None:
    """The derivation is not empty: the limits the server enforces are all in the document."""
    found = {(b.field, b.name) for b in bounds("AgreementInput")}
    assert {
        ("amount", "minimum"),
        ("amount", "maximum"),
        ("assetCode", "minLength"),
        ("assetCode", "maxLength"),
        ("assetScale", "minimum"),
        ("assetScale", "maximum"),
        ("cycles", "minimum"),
        ("cycles", "maximum"),
        ("cap", "enum"),
        ("webhook", "maxLength"),
        ("description", "maxLength"),
    } <= found
