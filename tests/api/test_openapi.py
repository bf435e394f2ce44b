"""The OpenAPI document describes exactly the routes the server has."""

from __future__ import annotations

import re

from aiohttp import web

from spsp_pull.api.app import add_routes
from spsp_pull.api.openapi import openapi_document
from tests.api.conftest import Api


def served_routes() -> set[tuple[str, str]]:
    app = web.Application()
    add_routes(app.router)
    routes = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        assert isinstance(path, str)
        path = re.sub(r"\{(\w+):[^}]+\}", r"{\1}", path)
        if route.method != "HEAD":
            routes.add((route.method.lower(), path))
    return routes


def documented_routes() -> set[tuple[str, str]]:
    return {(method, path) for path, ops in openapi_document()["paths"].items() for method in ops}


def test_document_and_routes_agree() -> None:
    assert served_routes() == documented_routes()


def test_every_operation_has_responses_and_refs_resolve() -> None:
    document = openapi_document()
    assert document["openapi"].startswith("3.1")
    schemas = document["components"]["schemas"]
    text = repr(document)
    for ref in re.findall(r"#/components/schemas/(\w+)", text):
        assert ref in schemas
    for ops in document["paths"].values():
        for op in ops.values():
            assert op["responses"] and op["summary"]


async def test_served_document_and_docs_page(api: Api) -> None:
    response = await api.client.get("/openapi.json")
    assert response.status == 200
    assert await response.json() == openapi_document()
    page = await api.client.get("/docs")
    assert page.status == 200 and "/pointers/{token}" in await page.text()


async def test_healthz_and_metrics(api: Api) -> None:
    response = await api.client.get("/healthz")
    assert response.status == 200 and (await response.json())["status"] == "ok"
    await api.create()
    metrics = await (await api.client.get("/metrics")).text()
    assert "spsp_pointers_created_total 1" in metrics
