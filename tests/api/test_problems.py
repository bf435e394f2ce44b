"""Every refusal is one error type, `InputError`, answered as problem+json with its status, its code and the
status's standard title; an aiohttp HTTP error gets a code for its status; anything else a 500."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from spsp_pull.api.problems import PROBLEM_JSON, problem_middleware
from spsp_pull.domain.errors import InputError

Client = TestClient[web.Request, web.Application]


async def refuse(request: web.Request) -> web.Response:
    status = int(request.match_info["status"])
    raise InputError("some-code", "Refused.", status=status, field="thing")


async def fail(_request: web.Request) -> web.Response:
    raise RuntimeError("a bug")


@pytest.fixture
async def client(aiohttp_client: AiohttpClient) -> Client:
    app = web.Application(middlewares=[problem_middleware])
    app.router.add_get("/refuse/{status}", refuse)
    app.router.add_get("/fail", fail)
    return await aiohttp_client(app)


@pytest.mark.parametrize("status", [401, 403, 404, 409, 413, 422, 503])
async def test_an_input_error_is_answered_with_its_status_code_and_the_standard_title(
    client: Client, status: int
) -> None:
    response = await client.get(f"/refuse/{status}")
    assert response.status == status
    assert response.content_type == PROBLEM_JSON
    assert await response.json() == {
        "type": "https://spsp-pull.dev/problems/some-code",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": "some-code",
        "detail": "Refused.",
        "field": "thing",
    }


async def test_an_unknown_path_and_a_bug_are_problems_too(client: Client) -> None:
    missing = await client.get("/nowhere")
    assert missing.status == 404
    assert (await missing.json())["code"] == "not-found"
    failed = await client.get("/fail")
    assert failed.status == 500
    assert (await failed.json())["title"] == "Internal Server Error"
