"""PAYOUT_PATHS documents exactly the payout routes, and merges cleanly into the server's document."""

from __future__ import annotations

import re

from aiohttp import web

from spsp_pull.api.app import add_routes
from spsp_pull.api.openapi import docs_page, openapi_document
from spsp_pull.api.payouts import add_payout_routes
from spsp_pull.bridge import PAYOUT_PATHS, PAYOUT_SCHEMAS


def routes(register: object) -> set[tuple[str, str]]:
    app = web.Application()
    register(app.router)  # type: ignore[operator]
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        assert isinstance(path, str)
        if route.method != "HEAD":
            found.add((route.method.lower(), re.sub(r"\{(\w+):[^}]+\}", r"{\1}", path)))
    return found


def test_paths_and_routes_agree() -> None:
    documented = {(method, path) for path, ops in PAYOUT_PATHS.items() for method in ops}
    assert routes(add_payout_routes) == documented


def test_merged_document_is_consistent() -> None:
    base = openapi_document()
    wired = set(PAYOUT_PATHS) <= set(base["paths"])  # once the server's document includes them
    if wired:
        assert all(base["paths"][path] == item for path, item in PAYOUT_PATHS.items())
    else:
        assert not set(PAYOUT_PATHS) & set(base["paths"])
        assert not set(PAYOUT_SCHEMAS) & set(base["components"]["schemas"])
    merged = {
        **base,
        "paths": {**base["paths"], **PAYOUT_PATHS},
        "components": {**base["components"], "schemas": {**base["components"]["schemas"], **PAYOUT_SCHEMAS}},
    }
    schemas = merged["components"]["schemas"]
    for ref in re.findall(r"#/components/schemas/(\w+)", repr(merged)):
        assert ref in schemas
    for ops in PAYOUT_PATHS.values():
        for op in ops.values():
            assert op["summary"] and op["responses"]["default"]
            assert all(p["in"] != "path" or p["name"] in ("token", "payoutId") for p in op["parameters"])
    everything = routes(add_routes) | routes(add_payout_routes)
    assert everything == {(m, p) for p, ops in merged["paths"].items() for m in ops}
    assert "/{token}/lnurlw/callback" in docs_page(merged)


def test_owner_routes_need_a_key_and_payee_routes_do_not() -> None:
    for path, ops in PAYOUT_PATHS.items():
        for op in ops.values():
            assert ("security" in op) == (path.startswith(("/pointers/", "/payouts"))), path
