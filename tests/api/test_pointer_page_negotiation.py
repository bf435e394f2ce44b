"""`GET /<token>`: SPSP clients get exactly the answer they got before the page existed, byte for byte,
from the query fast path and from aiohttp alike; a browser (Accept preferring HTML) gets the page."""

from __future__ import annotations

import pytest
from aiohttp import web

from spsp_pull.api.query_head import NOT_A_QUERY, QueryHead, QueryHeadReader
from spsp_pull.offline import mint_offline_pointer
from spsp_pull.web.headers import CONTENT_SECURITY_POLICY
from tests.api.conftest import AGREEMENT, Api
from tests.api.test_query_fast_path import Exchange, comparable, exchange, fast_port, get

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
SPSP_ACCEPTS = [
    "application/spsp4+json, application/spsp+json",
    "application/spsp4+json",
    "application/json",
    "*/*",
    "application/json, text/html",
    "text/html;q=0.5, */*",
    "text/plain",
]
SECRET = "offline-secret-shared-with-the-wallet"  # the fixture's SPSP_JWT_SECRET


def offline_pointer() -> str:
    return mint_offline_pointer(dict(AGREEMENT), algorithm="HS256", secret=SECRET)


@pytest.fixture
async def aiohttp_port(api: Api) -> int:
    """The same app also listening through a plain `web.TCPSite` (no fast path)."""
    runner = api.client.server.runner
    assert runner is not None
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return site.port


def headers(result: Exchange) -> dict[bytes, bytes]:
    return {name.lower(): value for name, value in result.responses[0].headers}


async def test_spsp_answers_unchanged_whatever_the_accept(api: Api, aiohttp_port: int) -> None:
    tokens = [(await api.create())["token"], "unknown-token", offline_pointer()]
    for token in tokens:
        baseline = comparable(await exchange(fast_port(api), get(f"/{token}"), [b"GET"]))
        assert baseline.responses[0].body.startswith(b'{"')
        for accept in SPSP_ACCEPTS:
            request = get(f"/{token}", f"Accept: {accept}")
            for port in (fast_port(api), aiohttp_port):
                assert comparable(await exchange(port, request, [b"GET"])) == baseline, (token, accept, port)


async def test_browsers_get_the_page(api: Api, aiohttp_port: int) -> None:
    tokens = [(await api.create())["token"], offline_pointer()]
    for token in tokens:
        for port in (fast_port(api), aiohttp_port):
            result = await exchange(port, get(f"/{token}", f"Accept: {BROWSER}"), [b"GET"])
            fields = headers(result)
            assert result.responses[0].status_line.startswith(b"HTTP/1.1 200"), token
            assert fields[b"content-type"] == b"text/html; charset=utf-8"
            assert fields[b"content-security-policy"] == CONTENT_SECURITY_POLICY.encode()
            assert fields[b"x-content-type-options"] == b"nosniff"
            assert fields[b"referrer-policy"] == b"same-origin"
            assert b"<h1>Pull payment</h1>" in result.responses[0].body
            assert b"10.00 USD every month, 12 cycles" in result.responses[0].body


async def test_unknown_pointer_page_is_a_404_page(api: Api) -> None:
    result = await exchange(fast_port(api), get("/unknown-token", f"Accept: {BROWSER}"), [b"GET"])
    assert result.responses[0].status_line.startswith(b"HTTP/1.1 404")
    assert b"Pull payment not found" in result.responses[0].body
    forged_jwt = "/eyJhbGciOiJIUzI1NiJ9.eyJhIjoxfQ.c2ln"
    forged = await exchange(fast_port(api), get(forged_jwt, f"Accept: {BROWSER}"), [b"GET"])
    assert forged.responses[0].status_line.startswith(b"HTTP/1.1 404")
    assert headers(forged)[b"content-type"] == b"text/html; charset=utf-8"


def read_head(raw: bytes) -> QueryHead | object:
    return QueryHeadReader(frozenset()).read(raw)


def test_fast_path_keeps_spsp_queries_and_hands_browsers_on() -> None:
    for accept in SPSP_ACCEPTS:
        assert isinstance(read_head(get("/abc", f"Accept: {accept}")), QueryHead), accept
    assert read_head(get("/abc", f"Accept: {BROWSER}")) is NOT_A_QUERY
    assert read_head(get("/abc", "Accept: text/html")) is NOT_A_QUERY
