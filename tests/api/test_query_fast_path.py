"""The query fast path answers byte for byte as aiohttp does, and hands it everything else."""

from __future__ import annotations

import asyncio
import re
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spsp_pull.api.context import StaticIlpEndpoint
from spsp_pull.api.query_fast_path import QueryFastPathSite
from spsp_pull.config import Config
from spsp_pull.server import running
from spsp_pull.tls import self_signed
from tests.api.conftest import Api
from tests.api.serving import ADMIN_KEY

READ_TIMEOUT = 5.0
QUIET_AFTER = 0.15  # how long a connection stays silent before it counts as open and idle


@dataclass(frozen=True)
class Response:
    status_line: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes


@dataclass(frozen=True)
class Exchange:
    responses: list[Response]
    closed: bool


def get(path: str, *headers: str, method: str = "GET", version: str = "1.1") -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: pull.example", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class ResponseReader:
    """Reads HTTP/1.1 responses off a socket, as sent."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader

    async def response(self, method: bytes) -> Response | None:
        status_line = await self.reader.readline()
        if status_line == b"":
            return None  # closed between responses; never inside one (asserted below)
        # aiohttp answers a request line without a version (HTTP/0.9 style) with an "HTTP/0.9" status line.
        assert re.fullmatch(rb"HTTP/(?:1\.[01]|0\.9) [1-5]\d\d [^\r\n]*\r\n", status_line), status_line
        headers = []
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, value = line[:-2].split(b":", 1)
            assert re.fullmatch(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name), line
            headers.append((name, value.strip()))
        fields = {name.lower(): value for name, value in headers}
        status = int(status_line.split()[1])
        if method == b"HEAD" or status < 200 or status in (204, 304):
            body = b""
        elif b"content-length" in fields:
            body = await self.reader.readexactly(int(fields[b"content-length"]))
        else:
            assert fields.get(b"transfer-encoding") == b"chunked", headers
            body = await self._chunks()
        return Response(status_line, headers, body)

    async def _chunks(self) -> bytes:
        body = b""
        while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
            body += await self.reader.readexactly(size)
            assert await self.reader.readexactly(2) == b"\r\n"
        assert await self.reader.readuntil(b"\r\n") == b"\r\n"
        return body


async def exchange(
    port: int,
    raw: bytes,
    methods: list[bytes],
    *,
    tls: ssl.SSLContext | None = None,
    patience: float | None = None,
) -> Exchange:
    """Send `raw` in one write; read one response per method in `methods` (fewer if the server
    closes first, or is silent for `patience` seconds), then whether the connection is closed."""
    reader, writer = await asyncio.open_connection("localhost" if tls else "127.0.0.1", port, ssl=tls)
    try:
        writer.write(raw)
        responses = ResponseReader(reader)
        received: list[Response] = []
        for method in methods:
            try:
                response = await asyncio.wait_for(responses.response(method), patience or READ_TIMEOUT)
            except TimeoutError:
                if patience is None:
                    raise
                return Exchange(received, closed=False)
            if response is None:
                return Exchange(received, closed=True)
            received.append(response)
        try:
            rest = await asyncio.wait_for(reader.read(1), QUIET_AFTER)
        except TimeoutError:
            return Exchange(received, closed=False)
        assert rest == b"", rest
        return Exchange(received, closed=True)
    finally:
        writer.close()


FRESH_PER_ANSWER = re.compile(rb'"(destination_account|shared_secret)": "[^"]*"')


def comparable(result: Exchange) -> Exchange:
    """Without what differs between any two answers: the date, and each query's fresh receiver."""
    return Exchange(
        [
            Response(
                r.status_line,
                [(n, v) for n, v in r.headers if n.lower() != b"date"],
                FRESH_PER_ANSWER.sub(rb'"\1": "fresh"', r.body),
            )
            for r in result.responses
        ],
        result.closed,
    )


@pytest.fixture
async def plain_aiohttp_port(api: Api) -> int:
    """The same app (same runner) also listening through a plain `web.TCPSite`."""
    runner = api.client.server.runner
    assert runner is not None
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return site.port


def fast_port(api: Api) -> int:
    port = api.client.server.port
    assert port is not None
    return port


async def same_as_aiohttp(api: Api, aiohttp_port: int, raw: bytes, methods: list[bytes]) -> Exchange:
    fast = await exchange(fast_port(api), raw, methods)
    plain = await exchange(aiohttp_port, raw, methods)
    assert comparable(fast) == comparable(plain)
    return fast


OVERSIZE = b"GET /abc HTTP/1.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n"
LARGE_BUT_FINE = b"GET /abc HTTP/1.1\r\nX-A: " + b"a" * 5000 + b"\r\nX-B: " + b"b" * 5000 + b"\r\n\r\n"


async def test_answers_every_request_as_aiohttp_does(api: Api, plain_aiohttp_port: int) -> None:
    token = (await api.create())["token"]
    auth = f"Authorization: Bearer {api.wallet_key}"
    cases: list[tuple[bytes, list[bytes]]] = [
        (get(f"/{token}"), [b"GET"]),
        (get(f"/{token}", "Accept: application/spsp4+json", "Connection: keep-alive"), [b"GET"]),
        (get(f"/{token}", "Content-Length: 0"), [b"GET"]),
        (get("/unknown-token_0"), [b"GET"]),
        (get("/eyJhbGciOiJIUzI1NiJ9.eyJhIjoxfQ.c2ln"), [b"GET"]),
        (get(f"/{token}", method="HEAD"), [b"HEAD"]),
        (get(f"/{token}", "Access-Control-Request-Method: GET", method="OPTIONS"), [b"OPTIONS"]),
        (get("/healthz"), [b"GET"]),
        (get("/metrics"), [b"GET"]),
        (get("/pointers"), [b"GET"]),
        (get("/pointers", auth), [b"GET"]),
        (
            get("/", auth, "Content-Type: application/json", "Content-Length: 2", method="POST") + b"{}",
            [b"POST"],
        ),
        (get(f"/{token}", version="1.0"), [b"GET"]),
        (get(f"/{token}", "Connection: close"), [b"GET"]),
        (get(f"/{token}", "Transfer-Encoding: chunked") + b"0\r\n\r\n", [b"GET"]),
        (get(f"/{token}", "Expect: 100-continue"), [b"GET", b"GET"]),
        (get(f"/{token}?x=1"), [b"GET"]),
        (get(f"/%41{token}"), [b"GET"]),
        (get(f"/{token}", "X-Folded: a", " b"), [b"GET"]),
        (get(f"/{token}", "Host: twice"), [b"GET"]),
        (get(f"/{token}", "X-Bad : a"), [b"GET"]),
        (f"GET /{token} HTTP/1.1\n\n".encode(), [b"GET"]),
        (f"get /{token} HTTP/1.1\r\n\r\n".encode(), [b"GET"]),
        (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03garbage\r\n\r\n", [b"GET"]),
        (OVERSIZE, [b"GET"]),
        (LARGE_BUT_FINE, [b"GET"]),
        (
            get(f"/{token}")
            + get("/unknown")
            + get("/healthz")
            + get(f"/{token}")
            + get(f"/{token}", method="HEAD")
            + get(f"/{token}"),
            [b"GET", b"GET", b"GET", b"GET", b"HEAD", b"GET"],
        ),
        (get(f"/{token}") + get(f"/{token}", "Connection: close"), [b"GET"] * 2),
    ]
    for raw, methods in cases:
        await same_as_aiohttp(api, plain_aiohttp_port, raw, methods)


async def test_answers_queries_before_a_malformed_request_in_the_same_read(api: Api) -> None:
    """Where aiohttp alone answers 400 to the whole read: its parser drops the requests it parsed
    before the error."""
    raw = get("/unknown") + get("/unknown", "Connection: close") + get("/unknown")
    result = await exchange(fast_port(api), raw, [b"GET"] * 3)
    statuses = [r.status_line.split()[1] for r in result.responses]
    assert (statuses, result.closed) == ([b"404", b"400"], True)


async def test_not_connected_answers_503_as_aiohttp_does(api: Api, plain_aiohttp_port: int) -> None:
    token = (await api.create())["token"]
    api.context.ilp = StaticIlpEndpoint("private.spsppull", ready=False)
    result = await same_as_aiohttp(api, plain_aiohttp_port, get(f"/{token}"), [b"GET"])
    assert result.responses[0].status_line == b"HTTP/1.1 503 Service Unavailable\r\n"
    assert (b"Retry-After", b"1") in result.responses[0].headers


async def test_a_failing_query_answers_500_as_aiohttp_does(
    api: Api, plain_aiohttp_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: object) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr("spsp_pull.store.pointers.find_by_token", broken)
    raw = get("/some-token") + get("/healthz")
    result = await same_as_aiohttp(api, plain_aiohttp_port, raw, [b"GET", b"GET"])
    assert result.responses[0].status_line == b"HTTP/1.1 500 Internal Server Error\r\n"


async def test_keeps_the_connection_across_a_hand_off(api: Api) -> None:
    token = (await api.create())["token"]
    aiohttp_server = api.client.server.handler
    aiohttp_connections = len(aiohttp_server.connections)
    reader, writer = await asyncio.open_connection("127.0.0.1", fast_port(api))
    responses = ResponseReader(reader)
    try:
        for path, handed_off in ((f"/{token}", 0), ("/healthz", 1), (f"/{token}", 1), ("/unknown", 1)):
            writer.write(get(path))
            response = await asyncio.wait_for(responses.response(b"GET"), READ_TIMEOUT)
            assert response is not None
            expected = 404 if path == "/unknown" else 200
            assert response.status_line.startswith(f"HTTP/1.1 {expected} ".encode())
            assert len(aiohttp_server.connections) == aiohttp_connections + handed_off
    finally:
        writer.close()


async def test_pipelined_queries_are_answered_in_order(api: Api) -> None:
    tokens = [(await api.create(amount=str(n)))["token"] for n in (1, 2, 3)]
    many = tokens * 200
    result = await exchange(fast_port(api), b"".join(get(f"/{t}") for t in many), [b"GET"] * len(many))
    assert len(result.responses) == len(many)
    for token, response in zip(many, result.responses, strict=True):
        amount = {tokens[0]: b'"1"', tokens[1]: b'"2"', tokens[2]: b'"3"'}[token]
        assert b'"amount": ' + amount in response.body


async def test_shutdown_closes_idle_connections(api: Api) -> None:
    token = (await api.create())["token"]
    reader, writer = await asyncio.open_connection("127.0.0.1", fast_port(api))
    writer.write(get(f"/{token}"))
    assert await ResponseReader(reader).response(b"GET") is not None
    await api.client.close()
    assert await asyncio.wait_for(reader.read(), READ_TIMEOUT) == b""
    writer.close()


async def test_idle_connections_close_after_the_keep_alive_timeout(api: Api) -> None:
    runner = api.client.server.runner
    assert isinstance(runner, web.AppRunner)
    site = QueryFastPathSite(runner, "127.0.0.1", 0)
    site.keepalive_timeout = 0.2
    await site.start()
    port = runner.addresses[-1][1]
    token = (await api.create())["token"]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(get(f"/{token}") + b"GET /partial-head HTTP/1.1\r\n")
    assert await ResponseReader(reader).response(b"GET") is not None
    assert await asyncio.wait_for(reader.read(), READ_TIMEOUT) == b""
    writer.close()


VALID = get("/some-token", "Accept: application/spsp4+json")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # framing only: one backend is enough
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.builds(
            lambda at, junk, cut: VALID[:at] + junk + VALID[at + cut :],
            st.integers(0, len(VALID)),
            st.binary(max_size=8),
            st.integers(0, 4),
        ),
    )
)
async def test_any_bytes_get_well_formed_answers_or_none(api: Api, data: bytes) -> None:
    await exchange(fast_port(api), data, [b"GET"] * 3, patience=QUIET_AFTER)  # asserts well-formed
    after = await exchange(fast_port(api), VALID, [b"GET"])
    assert after.responses[0].status_line == b"HTTP/1.1 404 Not Found\r\n"


async def test_queries_and_hand_offs_over_tls(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path / "tls", "localhost")
    config = Config(
        data_dir=tmp_path / "data",
        bind="127.0.0.1",
        port=0,
        auth_token=ADMIN_KEY,
        tls_cert=cert,
        tls_key=key,
        btp_port=None,
    )
    tls = ssl.create_default_context(cafile=str(cert))
    ilp = StaticIlpEndpoint("private.spsppull")
    async with running(config, ilp=ilp, announce=lambda _line: None) as server:
        raw = get("/unknown") + get("/healthz") + get("/unknown")
        result = await exchange(server.port, raw, [b"GET"] * 3, tls=tls)
        statuses = [r.status_line.split()[1] for r in result.responses]
        assert statuses == [b"404", b"200", b"404"]
        alone = await exchange(server.port, get("/unknown"), [b"GET"], tls=tls)
        assert alone.responses[0].headers[0] == (b"Content-Type", b"application/spsp4+json")
