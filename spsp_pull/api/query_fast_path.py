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
import ssl
import time
from collections.abc import Iterable
from datetime import timedelta
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE
from aiohttp.tcp_helpers import tcp_keepalive

from spsp_pull.api import spsp
from spsp_pull.api.access_log import Access, access_logger_class, record_access
from spsp_pull.api.context import CONTEXT, ApiContext
from spsp_pull.api.problems import unexpected_error
from spsp_pull.api.query_head import NOT_A_QUERY, QueryHead, QueryHeadReader
from spsp_pull.api.request_id import HEADER as REQUEST_ID_HEADER
from spsp_pull.api.request_id import request_id
from spsp_pull.logging_setup import REQUEST_ID

PAUSE_READING_ABOVE = 64 * 1024  # unconsumed bytes while queries are being answered


class ResponseWriter:
    """HTTP/1.1 responses laid out as aiohttp lays them out, with its `Date` and `Server`."""

    def __init__(self) -> None:
        self._heads: dict[tuple[int, tuple[tuple[str, str], ...]], bytes] = {}
        self._date_second = -1
        self._date = ""

    def __call__(
        self, status: int, headers: tuple[tuple[str, str], ...], body: bytes, request_id: str
    ) -> bytes:
        head = self._heads.get((status, headers))
        if head is None:
            lines = "".join(f"{name}: {value}\r\n" for name, value in headers)
            head = f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n{lines}".encode()
            self._heads[status, headers] = head
        tail = (
            f"{REQUEST_ID_HEADER}: {request_id}\r\nContent-Length: {len(body)}\r\n"
            f"Date: {self._now()}\r\nServer: {SERVER_SOFTWARE}\r\n\r\n"
        )
        return b"".join((head, tail.encode(), body))

    def _now(self) -> str:
        second = int(time.time())
        if second != self._date_second:
            self._date_second = second
            self._date = formatdate(second, usegmt=True)
        return self._date


class HeadTimeoutRequestHandler(web.RequestHandler):
    """aiohttp's protocol, closing a connection whose request head is not complete `head_timeout`
    after its first byte arrived while the connection waited for it.

    aiohttp has no such limit, only its keep-alive deadline: when it passes while the connection still
    waits for a request, aiohttp closes the connection (`_process_keepalive`). A head's first byte
    brings that deadline forward; aiohttp moves it back out after each response."""

    __slots__ = ("_head_timeout",)

    def __init__(self, manager: web.Server, *, head_timeout: timedelta, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._head_timeout = head_timeout

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if data and self._waiter is not None and not self._waiter.done():
            self.head_began(self._loop.time())

    def head_began(self, at: float) -> None:
        """A head's first byte arrived at `at` (loop time)."""
        deadline = at + self._head_timeout.total_seconds()
        if self._keepalive_handle is not None:
            if self._next_keepalive_close_time <= deadline:
                return
            self._keepalive_handle.cancel()
        self._next_keepalive_close_time = deadline
        self._keepalive_handle = self._loop.call_at(deadline, self._process_keepalive)


class QueryFastPathSite(web.BaseSite):
    """Listens like `web.TCPSite`, with `QueryFastPath` in front of aiohttp on every connection.

    Idle connections close after aiohttp's `keepalive_timeout` (the runner's, see
    `http_runner_options`), and a connection whose request head is not complete `head_timeout` (the
    configured `http_header_timeout`) after its first byte closes too, whichever of the two serves it."""

    __slots__ = (
        "_host",
        "_port",
        "connections",
        "context",
        "head_timeout",
        "keepalive_timeout",
        "reserved",
        "write",
    )

    def __init__(
        self,
        runner: web.AppRunner,
        host: str | None,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._host = host
        self._port = port
        self.context: ApiContext = runner.app[CONTEXT]
        self.reserved = reserved_segments(runner.app.router.resources())
        self.write = ResponseWriter()
        self.head_timeout = self.context.config.http_header_timeout
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

    def aiohttp_protocol(self) -> HeadTimeoutRequestHandler:
        server = self._runner.server
        assert server is not None
        # The handler aiohttp's server would make (`server()`), with the head timeout.
        return HeadTimeoutRequestHandler(
            server, loop=asyncio.get_running_loop(), head_timeout=self.head_timeout, **server._kwargs
        )


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
        self._remote: str | None = None
        self._buffer = bytearray()  # from the start of the next request
        self._head = QueryHeadReader(site.reserved)
        self._head_began_at: float | None = None  # while `_buffer` holds the start of a head
        self._answering: asyncio.Task[None] | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._last_answer_at = 0.0
        self._deadline_check: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        tcp_keepalive(transport)
        peer = transport.get_extra_info("peername")
        self._remote = str(peer[0]) if isinstance(peer, tuple) and peer else None
        self._site.connections.add(self)
        self._last_answer_at = self._loop.time()
        self._watch_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()

    def data_received(self, data: bytes) -> None:
        if not self._buffer:
            self._head_began_at = self._loop.time()
        self._buffer += data
        if self._answering is None:
            query = self._next_query()
            if query is not None:
                self._answering = self._loop.create_task(self._answer_queries(query))
            elif self._transport is not None:
                self._watch_deadline()
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

    async def _answer_queries(self, query: QueryHead) -> None:
        transport = self._transport
        next_query: QueryHead | None = query
        try:
            while next_query is not None:
                started = self._loop.time()
                rid = request_id(next_query.request_id)
                status, response = await self._answer(next_query.token, rid)
                if transport is None or self._transport is not transport:
                    return
                transport.write(response)
                self._last_answer_at = now = self._loop.time()
                self._log(next_query, status, len(response), now - started, rid)
                next_query = self._next_query()
        finally:
            self._answering = None
        if self._transport is not None:
            self._watch_deadline()
        self._update_reading()

    async def _answer(self, token: str, rid: str) -> tuple[int, bytes]:
        request_id_var = REQUEST_ID.set(rid)
        try:
            answer = await spsp.answer_query(self._site.context, token)
        except Exception:
            response = unexpected_error("GET", f"/{token}")
            assert isinstance(response.body, bytes)
            return response.status, self._site.write(
                response.status, tuple(response.headers.items()), response.body, rid
            )
        finally:
            REQUEST_ID.reset(request_id_var)
        return answer.status, self._site.write(answer.status, answer.headers, answer.body, rid)

    def _log(self, query: QueryHead, status: int, size: int, elapsed: float, rid: str) -> None:
        access = Access(
            remote=self._remote,
            request_line=f"GET /{query.token} HTTP/1.1",
            method="GET",
            status=status,
            size=size,
            referer=query.referer,
            user_agent=query.user_agent,
            request_id=rid,
        )
        record_access(self._site.context.metrics, access, elapsed)

    def _next_query(self) -> QueryHead | None:
        """Take the next request off the buffer if it is a query; None while its head is incomplete,
        and after handing the connection to aiohttp."""
        head = self._head.read(self._buffer)
        if head is None:
            return None
        if head is NOT_A_QUERY:
            self._hand_off()
            return None
        del self._buffer[: head.end]
        self._head.reset()
        self._head_began_at = self._loop.time() if self._buffer else None
        return head

    def _hand_off(self) -> None:
        transport = self._transport
        unconsumed = bytes(self._buffer)
        head_began_at = self._head_began_at
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
            assert head_began_at is not None
            handler.head_began(head_began_at)
            handler.data_received(unconsumed)

    def _forget(self) -> None:
        self._site.connections.discard(self)
        if self._deadline_check is not None:
            self._deadline_check.cancel()
            self._deadline_check = None
        self._transport = None
        self._buffer = bytearray()

    def _update_reading(self) -> None:
        if self._transport is None:
            return
        backlog = self._answering is not None and len(self._buffer) > PAUSE_READING_ABOVE
        pause = self._writing_paused or backlog
        if pause != self._reading_paused:
            self._reading_paused = pause
            if pause:
                self._transport.pause_reading()
            else:
                self._transport.resume_reading()

    def _deadline(self) -> float | None:
        """When the connection closes unless something happens, as aiohttp's handler decides it: the
        keep-alive timeout after the last answer, brought forward by the head timeout while a head is
        incomplete; none while answering."""
        if self._answering is not None:
            return None
        deadlines = []
        if self._head_began_at is not None:
            deadlines.append(self._head_began_at + self._site.head_timeout.total_seconds())
        if self._site.keepalive_timeout > 0:
            deadlines.append(self._last_answer_at + self._site.keepalive_timeout)
        return min(deadlines, default=None)

    def _watch_deadline(self) -> None:
        """Check no later than the deadline (a check that comes early looks again later)."""
        deadline = self._deadline()
        if deadline is None:
            return
        if self._deadline_check is not None:
            if self._deadline_check.when() <= deadline:
                return
            self._deadline_check.cancel()
        self._deadline_check = self._loop.call_at(deadline, self._check_deadline)

    def _check_deadline(self) -> None:
        self._deadline_check = None
        if self._transport is None:
            return
        deadline = self._deadline()
        if deadline is not None and self._loop.time() >= deadline:
            self._transport.close()
            return
        self._watch_deadline()


def http_runner_options(context: ApiContext) -> dict[str, Any]:
    """`web.AppRunner` options for serving through `QueryFastPathSite`: the access log and request
    counts both share, and the idle keep-alive timeout."""
    return {
        "access_log_class": access_logger_class(context.metrics),
        "keepalive_timeout": context.config.http_keepalive_timeout.total_seconds(),
    }
