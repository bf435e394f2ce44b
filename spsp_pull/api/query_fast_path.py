"""`GET /<token>` answered straight from the socket; every other request is aiohttp's.

aiohttp's request machinery costs several times what a pointer query itself costs. `QueryFastPath`
recognizes the one request shape it serves — `GET /<pointer token> HTTP/1.1` with plain headers and
no body — and answers it with `spsp.answer_query`, the core aiohttp's handler calls too. At the
first request of any other shape, the connection and every byte not yet consumed go to aiohttp's
own protocol, which owns the connection from then on (limits, errors, keep-alive, TLS).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import time
from collections.abc import Iterable
from email.utils import formatdate
from http import HTTPStatus

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE
from aiohttp.tcp_helpers import tcp_keepalive

from spsp_pull.api import spsp
from spsp_pull.api.context import CONTEXT, ApiContext
from spsp_pull.api.problems import unexpected_error

HEAD_LIMIT = 8192
MAX_HEADERS = 100  # aiohttp refuses more than 128
PAUSE_READING_ABOVE = 64 * 1024  # unconsumed bytes while queries are being answered

_TOKEN = rb"[A-Za-z0-9_-]{1,64}"
_HEADER_LINE = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e]*\r\n"
QUERY_HEAD = re.compile(rb"GET /(" + _TOKEN + rb") HTTP/1\.1\r\n((?:" + _HEADER_LINE + rb")*)\r\n")
COMPLETE_LINES = re.compile(rb"GET /" + _TOKEN + rb" HTTP/1\.1\r\n(?:" + _HEADER_LINE + rb")*")
PARTIAL_HEADER_LINE = re.compile(rb"(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+(?::[\t\x20-\x7e]*)?)?\r?")
PARTIAL_TOKEN = re.compile(rb"[A-Za-z0-9_-]{0,64}")
HEADER = re.compile(rb"^([^:]+):[\t ]*(.*?)[\t ]*\r$", re.MULTILINE)
REQUEST_LINE_START = b"GET /"
REQUEST_LINE_END = b" HTTP/1.1\r"
# Headers that give the request a body, or change what happens to the connection.
NOT_SERVED_HEADERS = frozenset({b"transfer-encoding", b"expect", b"upgrade"})


def query_token(head: bytes, start: int, end: int, reserved: frozenset[str]) -> str | None:
    """The pointer token if `head[start:end]` (a request head, through its empty line) is a query
    this path serves."""
    match = QUERY_HEAD.fullmatch(head, start, end)
    if match is None:
        return None
    token = match[1].decode()
    if token in reserved:
        return None
    headers = HEADER.findall(match[2].lower())
    names = {name for name, _ in headers}
    if len(headers) > MAX_HEADERS or len(names) != len(headers) or names & NOT_SERVED_HEADERS:
        return None  # aiohttp refuses some repeated headers: it decides
    values = dict(headers)
    if (
        values.get(b"connection", b"keep-alive") != b"keep-alive"
        or values.get(b"content-length", b"0") != b"0"
    ):
        return None
    return token


def could_become_query(partial: bytes, start: int) -> bool:
    """Whether `partial[start:]`, a request head without its end yet, can still turn into a query."""
    line_end = partial.rfind(b"\r\n", start)
    if line_end >= 0:
        return (
            COMPLETE_LINES.fullmatch(partial, start, line_end + 2) is not None
            and PARTIAL_HEADER_LINE.fullmatch(partial, line_end + 2) is not None
        )
    line = partial[start:]
    if len(line) <= len(REQUEST_LINE_START):
        return REQUEST_LINE_START.startswith(line)
    if not line.startswith(REQUEST_LINE_START):
        return False
    token_end = line.find(b" ", len(REQUEST_LINE_START))
    if token_end < 0:
        return PARTIAL_TOKEN.fullmatch(line, len(REQUEST_LINE_START)) is not None
    return (
        PARTIAL_TOKEN.fullmatch(line, len(REQUEST_LINE_START), token_end) is not None
        and token_end > len(REQUEST_LINE_START)
        and REQUEST_LINE_END.startswith(line[token_end:])
    )


class ResponseWriter:
    """HTTP/1.1 responses laid out as aiohttp lays them out, with its `Date` and `Server`."""

    def __init__(self) -> None:
        self._heads: dict[tuple[int, tuple[tuple[str, str], ...]], bytes] = {}
        self._date_second = -1
        self._date = ""

    def __call__(self, status: int, headers: tuple[tuple[str, str], ...], body: bytes) -> bytes:
        head = self._heads.get((status, headers))
        if head is None:
            lines = "".join(f"{name}: {value}\r\n" for name, value in headers)
            head = f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n{lines}".encode()
            self._heads[status, headers] = head
        tail = f"Content-Length: {len(body)}\r\nDate: {self._now()}\r\nServer: {SERVER_SOFTWARE}\r\n\r\n"
        return b"".join((head, tail.encode(), body))

    def _now(self) -> str:
        second = int(time.time())
        if second != self._date_second:
            self._date_second = second
            self._date = formatdate(second, usegmt=True)
        return self._date


class QueryFastPathSite(web.BaseSite):
    """Listens like `web.TCPSite`, with `QueryFastPath` in front of aiohttp on every connection."""

    __slots__ = ("_host", "_port", "connections", "context", "keepalive_timeout", "reserved", "write")

    def __init__(
        self, runner: web.AppRunner, host: str | None, port: int, *, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._host = host
        self._port = port
        self.context: ApiContext = runner.app[CONTEXT]
        self.reserved = reserved_segments(runner.app.router.resources())
        self.write = ResponseWriter()
        # aiohttp's idle timeout, as this app's server would apply it (read off an unused handler).
        self.keepalive_timeout = self.aiohttp_protocol().keepalive_timeout
        self.connections: set[QueryFastPath] = set()

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host or '0.0.0.0'}:{self._port}"  # noqa: S104

    async def start(self) -> None:
        await super().start()
        self._server = await asyncio.get_running_loop().create_server(
            lambda: QueryFastPath(self), self._host, self._port, ssl=self._ssl_context, backlog=self._backlog
        )

    async def stop(self) -> None:
        await super().stop()
        answering = [connection.close() for connection in list(self.connections)]
        for task in answering:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def aiohttp_protocol(self) -> web.RequestHandler:
        server = self._runner.server
        assert server is not None
        return server()


def reserved_segments(resources: Iterable[web.AbstractResource]) -> frozenset[str]:
    """First path segments the router gives to a route other than the pointer query's `/{token}`."""
    reserved = set()
    query_routes = 0
    for resource in resources:
        if any(route.method == "GET" and route.handler is spsp.query for route in resource):
            query_routes += 1
            continue
        first = resource.canonical.split("/")[1]
        if "{" not in first:
            reserved.add(first)
    if query_routes != 1:
        raise ValueError("the application needs exactly one GET route to spsp.query")
    return frozenset(reserved)


class QueryFastPath(asyncio.Protocol):
    """One connection: answers queries in order, hands the connection to aiohttp at anything else."""

    def __init__(self, site: QueryFastPathSite) -> None:
        self._site = site
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None  # None once closed or handed off
        self._buffer = b""
        self._offset = 0  # bytes of `_buffer` already taken
        self._answering: asyncio.Task[None] | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._last_answer_at = 0.0
        self._idle_check: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        tcp_keepalive(transport)
        self._site.connections.add(self)
        self._last_answer_at = self._loop.time()
        if self._site.keepalive_timeout > 0:
            self._idle_check = self._loop.call_at(
                self._last_answer_at + self._site.keepalive_timeout, self._close_if_idle
            )

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()

    def data_received(self, data: bytes) -> None:
        if self._offset:
            self._buffer = self._buffer[self._offset :] + data
            self._offset = 0
        else:
            self._buffer = self._buffer + data if self._buffer else data
        if self._answering is None:
            token = self._next_query()
            if token is not None:
                self._answering = self._loop.create_task(self._answer_queries(token))
        self._update_reading()

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._update_reading()

    def close(self) -> asyncio.Task[None] | None:
        """Close the connection; returns the task still answering, if any."""
        if self._transport is not None:
            self._transport.close()
        return self._answering

    async def _answer_queries(self, token: str) -> None:
        transport = self._transport
        next_token: str | None = token
        try:
            while next_token is not None:
                response = await self._answer(next_token)
                if transport is None or self._transport is not transport:
                    return
                transport.write(response)
                self._last_answer_at = self._loop.time()
                next_token = self._next_query()
        finally:
            self._answering = None
        self._update_reading()

    async def _answer(self, token: str) -> bytes:
        try:
            answer = await spsp.answer_query(self._site.context, token)
        except Exception:
            response = unexpected_error("GET", f"/{token}")
            assert isinstance(response.body, bytes)
            return self._site.write(response.status, tuple(response.headers.items()), response.body)
        return self._site.write(answer.status, answer.headers, answer.body)

    def _next_query(self) -> str | None:
        """Take the next request off the buffer if it is a query; None while its head is incomplete,
        and after handing the connection to aiohttp."""
        buffer, start = self._buffer, self._offset
        head_end = buffer.find(b"\r\n\r\n", start)
        if head_end < 0:
            if len(buffer) - start >= HEAD_LIMIT or not could_become_query(buffer, start):
                self._hand_off()
            return None
        end = head_end + 4
        token = query_token(buffer, start, end, self._site.reserved) if end - start <= HEAD_LIMIT else None
        if token is None:
            self._hand_off()
            return None
        self._offset = end
        return token

    def _hand_off(self) -> None:
        transport = self._transport
        unconsumed = self._buffer[self._offset :]
        self._forget()
        if transport is None or transport.is_closing():
            return
        handler = self._site.aiohttp_protocol()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        if self._reading_paused:
            transport.resume_reading()
        if self._writing_paused:
            handler.pause_writing()
        if unconsumed:
            handler.data_received(unconsumed)

    def _forget(self) -> None:
        self._site.connections.discard(self)
        if self._idle_check is not None:
            self._idle_check.cancel()
        self._transport = None
        self._buffer = b""
        self._offset = 0

    def _update_reading(self) -> None:
        if self._transport is None:
            return
        backlog = self._answering is not None and len(self._buffer) - self._offset > PAUSE_READING_ABOVE
        pause = self._writing_paused or backlog
        if pause != self._reading_paused:
            self._reading_paused = pause
            if pause:
                self._transport.pause_reading()
            else:
                self._transport.resume_reading()

    def _close_if_idle(self) -> None:
        if self._transport is None:
            return
        idle_until = self._last_answer_at + self._site.keepalive_timeout
        if self._answering is None and self._loop.time() >= idle_until:
            self._transport.close()
            return
        self._idle_check = self._loop.call_at(max(idle_until, self._loop.time() + 1.0), self._close_if_idle)
