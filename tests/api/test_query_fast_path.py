"""The query fast path answers byte for byte as aiohttp does, and hands it everything else."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spsp_pull.api import query_head
from spsp_pull.api.access_log import REQUESTS_METRIC
from spsp_pull.api.context import StaticIlpEndpoint
from spsp_pull.api.query_fast_path import QueryFastPathSite
from spsp_pull.api.query_head import (
    HEAD_LIMIT,
    MAX_HEADERS,
    NOT_A_QUERY,
    REQUEST_LINE_LIMIT,
    QueryHead,
    QueryHeadReader,
)
from spsp_pull.config import Config
from spsp_pull.server import running
from spsp_pull.tls import self_signed
from tests.api.conftest import Api
from tests.api.serving import ADMIN_KEY

READ_TIMEOUT = 5.0  # seconds: only stops a test that would hang; nothing is timed


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


# Sent after the answers awaited: a connection still open answers it, and then closes.
PROBE = get("/probe", "Connection: close")


async def exchange(
    port: int, raw: bytes, methods: list[bytes], *, tls: ssl.SSLContext | None = None
) -> Exchange:
    """Send `raw` in one write; read one response per method in `methods` (fewer if the server
    closes first), then whether the connection is closed: whether it answers one more request, PROBE."""
    reader, writer = await asyncio.open_connection("localhost" if tls else "127.0.0.1", port, ssl=tls)
    try:
        writer.write(raw)
        responses = ResponseReader(reader)
        received: list[Response] = []
        for method in methods:
            response = await asyncio.wait_for(responses.response(method), READ_TIMEOUT)
            if response is None:
                return Exchange(received, closed=True)
            received.append(response)
        writer.write(PROBE)
        try:
            probed = await asyncio.wait_for(responses.response(b"GET"), READ_TIMEOUT)
            rest = await asyncio.wait_for(reader.read(), READ_TIMEOUT)
        except ConnectionResetError:  # the probe reached a socket the server had closed
            return Exchange(received, closed=True)
        assert rest == b"", rest  # that answer was the probe's, not one more to `raw`
        return Exchange(received, closed=probed is None)
    finally:
        writer.close()


async def answers_until_closed(port: int, raw: bytes) -> list[Response]:
    """Send `raw`, an empty line (ending a head `raw` may leave open) and PROBE in one write; every
    response up to the close (after PROBE's answer, if not before), each well formed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw + b"\r\n\r\n" + PROBE)
        responses = ResponseReader(reader)
        received: list[Response] = []
        with contextlib.suppress(ConnectionResetError):  # closed with bytes of ours unread
            while (response := await asyncio.wait_for(responses.response(b"GET"), READ_TIMEOUT)) is not None:
                received.append(response)
        return received
    finally:
        writer.close()


FRESH_PER_ANSWER = re.compile(rb'"(destination_account|shared_secret)": "[^"]*"')


def comparable(result: Exchange) -> Exchange:
    """Without what differs between any two answers: the date, each query's fresh receiver, and the request
    id made for a request that brought none."""
    return Exchange(
        [
            Response(
                r.status_line,
                [
                    (n, b"fresh" if n.lower() == b"x-request-id" else v)
                    for n, v in r.headers
                    if n.lower() != b"date"
                ],
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
    await answers_until_closed(fast_port(api), data)  # asserts well-formed
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


# -- linear, bounded head reading ------------------------------------------------------------------------

RESERVED = frozenset({"healthz", "pointers"})


@dataclass
class ReadOutcome:
    tokens: list[str]  # queries taken, in order
    handed_off: bool  # a head that is not a query came next
    examined: int  # bytes the reader looked at
    python_lines: int  # lines of query_head.py executed
    reads: int


def read_stream(chunks: list[bytes]) -> ReadOutcome:
    """Feed `chunks` to a reader as `QueryFastPath` does: one buffer, queries taken off its front."""
    reader = QueryHeadReader(RESERVED)
    buffer = bytearray()
    tokens: list[str] = []
    lines = 0

    def count_lines(frame: FrameType, event: str, _arg: object) -> Any:
        nonlocal lines
        if frame.f_code.co_filename != query_head.__file__:
            return None
        lines += event == "line"
        return count_lines

    previous = sys.gettrace()
    sys.settrace(count_lines)
    try:
        for chunk in chunks:
            buffer += chunk
            while (head := reader.read(buffer)) is not None:
                if head is NOT_A_QUERY:
                    return ReadOutcome(tokens, True, reader.examined, lines, len(chunks))
                assert isinstance(head, QueryHead)
                tokens.append(head.token)
                del buffer[: head.end]
                reader.reset()
    finally:
        sys.settrace(previous)
    return ReadOutcome(tokens, False, reader.examined, lines, len(chunks))


def in_chunks(data: bytes, size: int | None) -> list[bytes]:
    if size is None:
        return [data]
    return [data[at : at + size] for at in range(0, len(data), size)]


def space_run(n: int) -> bytes:
    return b"GET /tok HTTP/1.1\r\nHost: h\r\nX-Pad: x" + b" " * n + b"x\r\n\r\n"


def unfinished_space_run(n: int) -> bytes:
    return b"GET /tok HTTP/1.1\r\nX-Pad: x" + b" " * n


def many_headers(n: int) -> bytes:
    return b"GET /tok HTTP/1.1\r\n" + b"".join(b"X-%05d: v\r\n" % i for i in range(n // 11)) + b"\r\n"


def pipelined_heads(n: int) -> bytes:
    head = b"GET /tok HTTP/1.1\r\nX-Pad: x" + b" " * 64 + b"x\r\n\r\n"
    return head * (n // len(head))


@pytest.mark.parametrize("hostile", [space_run, unfinished_space_run, many_headers, pipelined_heads])
@pytest.mark.parametrize("chunk", [1, 7, 1460, None])
def test_head_reading_work_grows_linearly_with_hostile_input(
    hostile: Callable[[int], bytes], chunk: int | None
) -> None:
    """The work measured two ways (bytes the reader looked at; Python lines it ran) for n and 4n bytes
    of each hostile shape, read whole or a few bytes at a time: 4n costs about 4 times n (a quadratic
    reader, like the header pattern this replaced, costs 16 times)."""
    small, large = (read_stream(in_chunks(hostile(n), chunk)) for n in (1500, 6000))
    assert large.examined <= 4.5 * small.examined
    assert large.python_lines <= 4.5 * small.python_lines
    for outcome, n in ((small, 1500), (large, 6000)):
        size = len(hostile(n))
        assert outcome.examined <= 3 * size + len(b"GET /tok HTTP/1.1\r\n") * outcome.reads


def test_heads_over_the_limit_are_handed_off_without_reading_further() -> None:
    outcome = read_stream([space_run(HEAD_LIMIT)])
    assert (outcome.tokens, outcome.handed_off) == ([], True)
    assert outcome.examined <= 3 * HEAD_LIMIT
    fits = space_run(HEAD_LIMIT - len(space_run(0)))
    assert len(fits) == HEAD_LIMIT
    assert read_stream([fits]).tokens == ["tok"]


def reference_token(head: bytes) -> str | None:
    """The query a complete head (through its empty line) asks for, if the fast path serves it:
    the definition, written plainly over the whole head."""
    if len(head) > HEAD_LIMIT:
        return None
    request_line, *fields = head[: -len(b"\r\n\r\n")].split(b"\r\n")
    request = re.fullmatch(rb"GET /([A-Za-z0-9_-]{1,64}) HTTP/1\.1", request_line)
    if request is None or request[1].decode() in RESERVED:
        return None
    values: dict[bytes, bytes] = {}
    for field in fields:
        name, colon, value = field.partition(b":")
        if not (
            colon
            and re.fullmatch(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name)
            and re.fullmatch(rb"[\t\x20-\x7e]*", value)
        ):
            return None
        if name.lower() in values:
            return None
        values[name.lower()] = value.strip(b" \t")
    if len(values) > MAX_HEADERS or {b"transfer-encoding", b"expect", b"upgrade"} & values.keys():
        return None
    if values.get(b"connection", b"keep-alive").lower() != b"keep-alive":
        return None
    if values.get(b"content-length", b"0") != b"0":
        return None
    return request[1].decode()


header_names = st.sampled_from(
    [b"Host", b"Accept", b"X-Pad", b"Connection", b"Content-Length", b"Expect", b"x-pad", b"Bad Name", b""]
)
header_values = st.one_of(
    st.sampled_from([b"keep-alive", b"close", b"0", b"1", b"Keep-Alive", b"\x80", b"a\rb"]),
    st.builds(
        lambda lead, n, tail: lead + b" " * n + tail,
        st.sampled_from([b"", b"x", b"\t"]),
        st.integers(0, 6000),
        st.sampled_from([b"", b"x", b" "]),
    ),
)
fields = st.one_of(
    st.lists(st.tuples(header_names, header_values), max_size=6),
    st.builds(lambda n: [(b"X-%d" % i, b"v") for i in range(n)], st.integers(95, 130)),  # huge header counts
)
request_lines = st.sampled_from(
    [
        b"GET /tok HTTP/1.1",
        b"GET /other_Token-2 HTTP/1.1",
        b"GET /healthz HTTP/1.1",
        b"GET /a.b HTTP/1.1",
        b"GET /tok HTTP/1.0",
        b"POST /tok HTTP/1.1",
        b"GET /" + b"t" * 64 + b" HTTP/1.1",
        b"GET /" + b"t" * 65 + b" HTTP/1.1",
    ]
)
heads = st.builds(
    lambda line, headers: line + b"\r\n" + b"".join(n + b":" + v + b"\r\n" for n, v in headers) + b"\r\n",
    request_lines,
    fields,
)


@settings(max_examples=300, deadline=None)
@given(stream=st.lists(heads, min_size=1, max_size=40), cuts=st.lists(st.integers(1, 9000), max_size=30))
def test_head_reader_agrees_with_the_plain_definition_at_linear_cost(
    stream: list[bytes], cuts: list[int]
) -> None:
    """Long space runs, many pipelined heads and huge header counts, cut at random places: the reader
    takes exactly the queries the plain definition serves, in order, and hands off at the first other
    head; it looks at no byte more than three times (plus the short request line once per read)."""
    data = b"".join(stream)
    points = sorted({cut % len(data) for cut in cuts} | {0, len(data)})
    chunks = [data[a:b] for a, b in itertools.pairwise(points) if b > a]
    outcome = read_stream(chunks)
    expected: list[str] = []
    for head in stream:
        token = reference_token(head)
        if token is None:
            break
        expected.append(token)
    assert outcome.tokens == expected
    assert outcome.handed_off == (len(expected) < len(stream))
    assert outcome.examined <= 3 * len(data) + REQUEST_LINE_LIMIT * len(chunks)


HOSTILE_HEAD = space_run(HEAD_LIMIT - len(space_run(0))).replace(b"/tok", b"/xyz")


async def test_forty_pipelined_hostile_heads_are_answered(api: Api) -> None:
    """The issue's input: 40 heads of 8 KiB with a run of 8,000 spaces in one header, in one write."""
    assert len(HOSTILE_HEAD) == HEAD_LIMIT
    result = await exchange(fast_port(api), HOSTILE_HEAD * 40 + get("/healthz"), [b"GET"] * 41)
    assert [r.status_line for r in result.responses] == [b"HTTP/1.1 404 Not Found\r\n"] * 40 + [
        b"HTTP/1.1 200 OK\r\n"
    ]


# -- one access log and one request count, however a request is served ------------------------------------

ACCESS_LINE = re.compile(  # aiohttp's default: %a %t "%r" %s %b "%{Referer}i" "%{User-Agent}i"
    r"127\.0\.0\.1 \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] "
    r'"GET (\S+) HTTP/1\.1" (\d{3}) (\d+) "(.*)" "(.*)"'
)


async def test_fast_path_answers_are_logged_and_counted_as_aiohttp_answers_are(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    token = (await api.create())["token"]
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    metrics = api.context.metrics
    counted_before = {
        status: metrics.value(REQUESTS_METRIC, method="GET", status=status) for status in ("200", "404")
    }
    aiohttp_server = api.client.server.handler
    reader, writer = await asyncio.open_connection("127.0.0.1", fast_port(api))
    responses = ResponseReader(reader)
    served_by: list[str] = []
    sizes: list[int] = []
    try:
        for path in (f"/{token}", "/no-such-token", f"/{token}?handed=off", "/no-such-token?handed=off"):
            writer.write(get(path, "User-Agent: probe/1.0", "Referer: https://pay.example/x"))
            response = await asyncio.wait_for(responses.response(b"GET"), READ_TIMEOUT)
            assert response is not None
            sizes.append(
                len(response.status_line)
                + sum(len(n) + len(v) + 4 for n, v in response.headers)
                + 2
                + len(response.body)
            )
            ours = writer.get_extra_info("sockname")
            aiohttp_peers = [
                h.transport.get_extra_info("peername") for h in aiohttp_server.connections if h.transport
            ]
            served_by.append("aiohttp" if ours in aiohttp_peers else "fast path")
    finally:
        writer.close()
    assert served_by == ["fast path", "fast path", "aiohttp", "aiohttp"]
    lines = [ACCESS_LINE.fullmatch(r.getMessage()) for r in caplog.records if r.name == "aiohttp.access"]
    assert all(lines), [r.getMessage() for r in caplog.records]
    logged = [(m[1], m[2], int(m[3]), m[4], m[5]) for m in lines if m is not None]
    ua, referer = "probe/1.0", "https://pay.example/x"
    assert logged == [
        (f"/{token}", "200", sizes[0], referer, ua),
        ("/no-such-token", "404", sizes[1], referer, ua),
        (f"/{token}?handed=off", "200", sizes[2], referer, ua),
        ("/no-such-token?handed=off", "404", sizes[3], referer, ua),
    ]
    assert sizes[0] == sizes[2] and sizes[1] == sizes[3]  # the same answers, either way
    for status in ("200", "404"):
        assert metrics.value(REQUESTS_METRIC, method="GET", status=status) == counted_before[status] + 2
    assert 'spsp_http_requests_total{method="GET",status="404"}' in metrics.render()


async def test_requests_with_any_method_are_counted_under_few_labels(api: Api) -> None:
    metrics = api.context.metrics
    raw = get("/x", method="PROPFIND") + get("/healthz", method="PURGE")
    result = await exchange(fast_port(api), raw, [b"GET"] * 2)
    assert [r.status_line for r in result.responses] == [b"HTTP/1.1 405 Method Not Allowed\r\n"] * 2
    assert metrics.value(REQUESTS_METRIC, method="OTHER", status="405") == 2
    malformed = await exchange(fast_port(api), get("/x", method="BREW"), [b"GET"])
    assert malformed.responses[0].status_line.split()[1] == b"400"  # aiohttp refuses unknown methods
    assert sum(metrics.value(REQUESTS_METRIC, method=m, status="400") for m in ("GET", "OTHER")) == 1
    assert "PROPFIND" not in metrics.render() and "BREW" not in metrics.render()
