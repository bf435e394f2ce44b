"""Hostile HTTP over real loopback sockets: request heads that never end, idle keep-alive connections,
and JSON built to break a decoder. Each gets a bounded, specific answer; none gets a 500."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from spsp_pull.api.bodies import MAX_BODY_BYTES, MAX_JSON_DEPTH
from spsp_pull.api.context import StaticIlpEndpoint
from spsp_pull.config import Config, from_environment
from spsp_pull.config_error import ConfigError
from spsp_pull.domain.clock import ManualClock
from spsp_pull.server import Server, running
from spsp_pull.store.database import Database
from tests.api.serving import ADMIN_KEY
from tests.bridge import factories, harness
from tests.bridge.api_harness import PayoutApi, serve
from tests.bridge.fakes.fake_bitcoind import FakeBitcoind

CLOSE_WITHIN = 5.0  # bound on waiting for a close the configured timeouts make due far sooner
SHORT = timedelta(milliseconds=200)
LONG = timedelta(seconds=60)  # longer than any wait below: a close seen here is the SHORT timeout's
TRICKLE_EVERY = 0.02  # the slow client's pace: one byte per this many seconds


# -- head and keep-alive timeouts ---------------------------------------------------------------------


@contextlib.asynccontextmanager
async def server_with(tmp_path: Path, *, head: timedelta, keepalive: timedelta) -> AsyncIterator[Server]:
    config = Config(
        data_dir=tmp_path / "data",
        bind="127.0.0.1",
        port=0,
        auth_token=ADMIN_KEY,
        btp_port=None,
        http_header_timeout=head,
        http_keepalive_timeout=keepalive,
    )
    ilp = StaticIlpEndpoint("private.spsppull")
    async with running(config, ilp=ilp, announce=lambda _line: None) as server:
        yield server


class Client:
    """One raw connection: write bytes, read whole answers, see when the server closes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, server: Server) -> Client:
        return cls(*await asyncio.open_connection("127.0.0.1", server.port))

    async def request(self, path: str) -> int:
        """Send a GET and read its answer whole; its status."""
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        status = int((await self.reader.readuntil(b"\r\n")).split()[1])
        length = 0
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status

    async def closed_at(self) -> float:
        """Loop time at which the server closed the connection (having sent nothing more)."""
        rest = await asyncio.wait_for(self.reader.read(), CLOSE_WITHIN)
        assert rest == b"", rest
        return asyncio.get_running_loop().time()

    def close(self) -> None:
        self.writer.close()


def now() -> float:
    return asyncio.get_running_loop().time()


PARTIAL_QUERY_HEAD = b"GET /some-token HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a"
PARTIAL_OTHER_HEAD = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


@pytest.mark.parametrize(
    ("before", "partial"),
    [
        pytest.param(None, PARTIAL_QUERY_HEAD, id="fast-path"),
        pytest.param(None, PARTIAL_OTHER_HEAD, id="handed-to-aiohttp-mid-head"),
        pytest.param("/healthz", PARTIAL_QUERY_HEAD, id="aiohttp-after-a-request"),
        pytest.param("/unknown-token", PARTIAL_OTHER_HEAD, id="after-a-fast-path-answer"),
    ],
)
async def test_a_head_that_stops_short_is_closed_at_the_head_timeout(
    tmp_path: Path, before: str | None, partial: bytes
) -> None:
    async with server_with(tmp_path, head=SHORT, keepalive=LONG) as server:
        client = await Client.connect(server)
        try:
            if before is not None:
                assert await client.request(before) in (200, 404)
            started = now()
            client.writer.write(partial)
            assert await client.closed_at() - started >= SHORT.total_seconds()
        finally:
            client.close()


@pytest.mark.parametrize(
    ("before", "head"),
    [
        pytest.param(None, PARTIAL_QUERY_HEAD + b" " * 8000 + b"\r\n\r\n", id="fast-path"),
        pytest.param("/healthz", PARTIAL_OTHER_HEAD + b"X-Pad: " + b"p" * 8000 + b"\r\n\r\n", id="aiohttp"),
    ],
)
async def test_a_trickled_head_is_closed_at_the_head_timeout_though_bytes_keep_coming(
    tmp_path: Path, before: str | None, head: bytes
) -> None:
    """Slowloris: every byte arrives well within any idle timeout, the head never in time."""
    async with server_with(tmp_path, head=SHORT, keepalive=LONG) as server:
        client = await Client.connect(server)
        sent = 0

        async def trickle() -> None:
            nonlocal sent
            for byte in head:
                client.writer.write(bytes([byte]))
                sent += 1
                await asyncio.sleep(TRICKLE_EVERY)  # the client's pace, not a wait for the server

        try:
            if before is not None:
                assert await client.request(before) == 200
            started = now()
            slow = asyncio.create_task(trickle())
            closed = await client.closed_at()
            assert closed - started >= SHORT.total_seconds()
            assert sent < len(head)  # closed while the head was still arriving
            slow.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await slow
        finally:
            client.close()


@pytest.mark.parametrize(
    "before",
    [
        pytest.param(None, id="silent-from-the-start"),
        pytest.param("/unknown-token", id="after-a-fast-path-answer"),
        pytest.param("/healthz", id="after-an-aiohttp-answer"),
    ],
)
async def test_an_idle_keep_alive_connection_is_closed_at_the_keep_alive_timeout(
    tmp_path: Path, before: str | None
) -> None:
    async with server_with(tmp_path, head=LONG, keepalive=SHORT) as server:
        started = now()  # before the server accepts the connection or answers on it
        client = await Client.connect(server)
        try:
            if before is not None:
                assert await client.request(before) in (200, 404)
            assert await client.closed_at() - started >= SHORT.total_seconds()
        finally:
            client.close()


async def test_requests_within_the_timeouts_keep_the_connection(tmp_path: Path) -> None:
    async with server_with(tmp_path, head=timedelta(seconds=5), keepalive=timedelta(seconds=5)) as server:
        client = await Client.connect(server)
        try:
            for path in ("/unknown-token", "/healthz", "/unknown-token", "/healthz"):
                assert await client.request(path) in (200, 404)
        finally:
            client.close()


def test_http_timeouts_are_read_as_durations() -> None:
    defaults = from_environment({})
    assert (defaults.http_header_timeout, defaults.http_keepalive_timeout) == (
        timedelta(seconds=30),
        timedelta(seconds=75),
    )
    for text, expected in (
        ("250ms", timedelta(milliseconds=250)),
        ("0.2", timedelta(milliseconds=200)),
        ("0.2s", timedelta(milliseconds=200)),
        ("45", timedelta(seconds=45)),
        ("2m", timedelta(minutes=2)),
        ("1h", timedelta(hours=1)),
    ):
        config = from_environment({"SPSP_HTTP_HEADER_TIMEOUT": text, "SPSP_HTTP_KEEPALIVE_TIMEOUT": text})
        assert (config.http_header_timeout, config.http_keepalive_timeout) == (expected, expected)
    for bad in ("0", "0ms", "-1", "1e3", "nan", "inf", "30 seconds", "2h", "5d", "0.0000001"):
        for name in ("SPSP_HTTP_HEADER_TIMEOUT", "SPSP_HTTP_KEEPALIVE_TIMEOUT"):
            with pytest.raises(ConfigError, match=name):
                from_environment({name: bad})


# -- hostile JSON ---------------------------------------------------------------------------------------

HOSTILE_JSON = [
    pytest.param(b"[" * 60_000, "json-too-deep", id="60000-deep"),
    pytest.param(b'{"a":' * 1000 + b"1" + b"}" * 1000, "json-too-deep", id="1000-deep-objects"),
    pytest.param(
        b'{"metadata": ' + b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH + b"}", "json-too-deep", id="65-deep"
    ),
    pytest.param(b'{"amount": ' + b"7" * 5000 + b"}", "json-number-too-large", id="5000-digit-integer"),
    pytest.param(b'{"amount": -' + b"7" * 41 + b"}", "json-number-too-large", id="41-digit-integer"),
    pytest.param(b'{"amount": 1e999999999}', "json-number-too-large", id="huge-exponent"),
    pytest.param(b'{"amount": 0.' + b"1" * 5000 + b"}", "json-number-too-large", id="5000-digit-fraction"),
    pytest.param(b'{"description": "\\ud800"}', "malformed-json", id="lone-surrogate"),
    pytest.param(b'{"description": "a\\udfffb"}', "malformed-json", id="lone-low-surrogate"),
    pytest.param(b'{"\\ud800": 1}', "malformed-json", id="lone-surrogate-key"),
    pytest.param(b'{"amount": NaN}', "malformed-json", id="NaN"),
    pytest.param(b'{"amount": Infinity}', "malformed-json", id="Infinity"),
    pytest.param(b'{"amount": -Infinity}', "malformed-json", id="-Infinity"),
    pytest.param(b'{"amount": "1", "amount": "2"}', "duplicate-key", id="duplicate-key"),
    pytest.param(b'{"metadata": {"a": 1, "b": 2, "a": 3}}', "duplicate-key", id="nested-duplicate-key"),
    pytest.param(b'{"description": "\xed\xa0\x80"}', "malformed-json", id="utf8-encoded-surrogate"),
    pytest.param(b'{"amount": "1"', "malformed-json", id="truncated"),
]
PAYOUT_ID = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
async def payout_api(db: Database) -> AsyncIterator[PayoutApi]:
    """The whole API, payout routes included (a bridge over a fake bitcoind on 127.0.0.1)."""
    clock = ManualClock(factories.NOW)
    node = FakeBitcoind()
    await node.start()
    try:
        async with (
            harness.running(harness.settings(node), db, clock) as bridge,
            serve(db, clock, bridge) as api,
        ):
            yield api
    finally:
        await node.stop()


def json_routes(token: str) -> list[tuple[str, str, str | None]]:
    """Every route that reads a JSON body: (method, path, the key it is called with)."""
    wallet, admin, payee = "wallet", "admin", None
    return [
        ("POST", "/", wallet),
        ("PATCH", f"/pointers/{token}", wallet),
        ("POST", f"/update/{token}", wallet),
        ("POST", "/accounts", admin),
        ("POST", "/accounts/other/keys", admin),
        ("POST", "/jwt-keys", wallet),
        ("POST", "/jwt-revocations", wallet),
        ("POST", f"/pointers/{token}/payouts", wallet),
        ("POST", f"/pointers/{token}/payouts/{PAYOUT_ID}/approve", wallet),
        ("POST", f"/pointers/{token}/payouts/{PAYOUT_ID}/cancel", wallet),
        ("POST", f"/{token}/payouts", payee),
        ("POST", f"/{token}/payouts/{PAYOUT_ID}/approve", payee),
        ("POST", f"/{token}/payouts/{PAYOUT_ID}/cancel", payee),
    ]


async def post(api: PayoutApi, method: str, path: str, key: str | None, body: bytes) -> tuple[int, str, Any]:
    """Send `body` as JSON: the status, content type and decoded answer."""
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {ADMIN_KEY if key == 'admin' else api.wallet_key}"
    response = await api.client.request(method, path, data=body, headers=headers)
    return response.status, response.content_type, await response.json(content_type=None)


async def send_json(api: PayoutApi, method: str, path: str, key: str | None, body: bytes) -> tuple[int, Any]:
    """Send `body` as JSON to a request that fails: the status and the problem document."""
    status, content_type, answer = await post(api, method, path, key, body)
    assert content_type == "application/problem+json", (path, status, answer)
    return status, answer


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # decoding only: one backend is enough
@pytest.mark.parametrize(("body", "code"), HOSTILE_JSON)
async def test_hostile_json_gets_a_specific_400_on_every_json_route(
    payout_api: PayoutApi, body: bytes, code: str
) -> None:
    token = await payout_api.pointer()
    before = await payout_api.get(f"/pointers/{token}")
    for method, path, key in json_routes(token):
        status, problem = await send_json(payout_api, method, path, key, body)
        assert (status, problem["code"]) == (400, code), (method, path, problem)
    assert await payout_api.get(f"/pointers/{token}") == before
    status, listed = await payout_api.get("/pointers?limit=200")
    assert (status, len(listed["items"])) == (200, 1)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_json_at_the_limits_is_decoded(payout_api: PayoutApi) -> None:
    """64 deep and 40 digits pass the decoder: what answers is the route's own validation."""
    at_limit = [
        b'{"metadata": ' + b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1) + b"}",
        b'{"amount": ' + b"7" * 40 + b"}",
        b'{"amount": 1e40}',
        b'{"description": "\\ud83d\\ude00"}',  # a surrogate pair is one character
    ]
    decoder_codes = {"json-too-deep", "json-number-too-large", "malformed-json", "duplicate-key"}
    token = await payout_api.pointer()
    for body in at_limit:
        for method, path, key in json_routes(token)[:3]:
            status, _, answer = await post(payout_api, method, path, key, body)
            assert status < 500 and answer.get("code") not in decoder_codes, (body[:40], path, answer)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_body_over_the_size_limit_gets_413(payout_api: PayoutApi) -> None:
    token = await payout_api.pointer()
    body = b'{"description": "' + b"d" * MAX_BODY_BYTES + b'"}'
    for method, path, key in json_routes(token):
        status, problem = await send_json(payout_api, method, path, key, body)
        assert (status, problem["code"]) == (413, "body-too-large"), (path, problem)


def hs256_jwt(payload: bytes, secret: str) -> str:
    """A compact JWS over exactly these payload bytes (a JSON library would not write hostile ones)."""

    def part(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = part(b'{"alg":"HS256","typ":"JWT"}')
    signed = f"{header}.{part(payload)}"
    signature = hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest()
    return f"{signed}.{part(signature)}"


HOSTILE_CLAIMS = [
    pytest.param(b'{"a":' + b"[" * 4000, id="4000-deep"),
    pytest.param(b'{"amount": ' + b"7" * 5000 + b"}", id="5000-digit-integer"),
    pytest.param(b'{"amount": 1e999999999}', id="huge-exponent"),
    pytest.param(b'{"amount": "1", "description": "\\ud800"}', id="lone-surrogate"),
    pytest.param(b'{"amount": NaN}', id="NaN"),
    pytest.param(b'{"amount": Infinity}', id="Infinity"),
    pytest.param(b'{"amount": "1", "amount": "2"}', id="duplicate-key"),
]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("claims", HOSTILE_CLAIMS)
async def test_hostile_json_in_an_offline_pointer_gets_a_4xx(payout_api: PayoutApi, claims: bytes) -> None:
    secret = payout_api.context.config.jwt_secret
    assert secret is not None
    token = hs256_jwt(claims, secret)
    for method in ("GET", "POST"):
        response = await payout_api.client.request(method, f"/{token}")
        assert 400 <= response.status < 500, (method, response.status, await response.text())
    status, listed = await payout_api.get("/pointers?limit=200")
    assert (status, listed["items"]) == (200, [])
