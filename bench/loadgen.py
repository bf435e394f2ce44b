"""A lean HTTP/1.1 load generator: N keep-alive connections, one request in flight on each.

A general-purpose client (aiohttp) spends more CPU per request than the servers measured here, and the
client shares the machine with the server; this one builds each request from a template and only reads the
status line and Content-Length of the answers, so that more of the machine is left to the server. The same
generator drives every server compared.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    requests: int
    seconds: float
    latencies: list[float] = field(default_factory=list)  # seconds, one per request
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


class _Load:
    """What the connections share: the requests to cycle through, the counters and the result."""

    def __init__(self, requests: list[bytes], total: int) -> None:
        self.requests = requests
        self.total = total
        self.issued = 0
        self.done = 0
        self.result = LoadResult(total, 0.0)
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def fire(self, client: _Client) -> None:
        if self.issued >= self.total:
            return
        request = self.requests[self.issued % len(self.requests)]
        self.issued += 1
        client.sent_at = time.perf_counter()
        client.send(request)

    def answered(self, client: _Client, status: int) -> None:
        result = self.result
        result.latencies.append(time.perf_counter() - client.sent_at)
        result.statuses[status] = result.statuses.get(status, 0) + 1
        self.done += 1
        if self.done == self.total and not self.finished.done():
            self.finished.set_result(None)
        self.fire(client)


class _Client(asyncio.BufferedProtocol):
    """One keep-alive connection; one request in flight."""

    def __init__(self, load: _Load) -> None:
        self._load = load
        self._buffer = bytearray()
        # One receive buffer for the connection's life: with plain data_received asyncio allocates 256 KiB per
        # read, and in a fresh process glibc maps that afresh each time (two page faults per response): the
        # first ~20,000 requests ran 2-3x slower than the rest, whichever server answered.
        self._chunk = memoryview(bytearray(65536))
        self._transport: asyncio.Transport | None = None
        self.sent_at = 0.0
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)

    def send(self, request: bytes) -> None:
        assert self._transport is not None
        self._transport.write(request)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._chunk

    def buffer_updated(self, nbytes: int) -> None:
        buffer = self._buffer
        buffer += self._chunk[:nbytes]
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).lower()
            if b"\r\ntransfer-encoding: chunked" in head:
                total = _chunked_end(buffer, end + 4)
                if total < 0:
                    return
            else:
                length = 0
                marker = head.find(b"\r\ncontent-length:")
                if marker >= 0:
                    stop = head.find(b"\r\n", marker + 2)
                    length = int(head[marker + 17 : stop if stop >= 0 else len(head)])
                total = end + 4 + length
                if len(buffer) < total:
                    return
            status = int(head[9:12])
            del buffer[:total]
            self._load.answered(self, status)


def _chunked_end(buffer: bytearray, position: int) -> int:
    """Where a chunked body starting at `position` ends (after its last chunk), or -1 if not all here."""
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return -1
        size = int(bytes(buffer[position:line_end]).split(b";", 1)[0], 16)
        if size == 0:
            trailer_end = buffer.find(b"\r\n\r\n", line_end)
            return -1 if trailer_end < 0 else trailer_end + 4
        position = line_end + 2 + size + 2
        if position > len(buffer):
            return -1


async def run(
    host: str,
    port: int,
    paths: Sequence[str],
    *,
    total: int,
    concurrency: int,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    body: bytes = b"",
) -> LoadResult:
    """`total` requests (cycling through `paths`) over `concurrency` connections; latencies per request."""
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    length = f"Content-Length: {len(body)}\r\n" if body or method != "GET" else ""
    requests = [
        f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}{length}\r\n".encode() + body
        for path in paths
    ]
    loop = asyncio.get_running_loop()
    load = _Load(requests, total)
    clients: list[_Client] = []
    try:
        for _ in range(concurrency):
            _, client = await loop.create_connection(lambda: _Client(load), host, port)
            clients.append(client)
        started = time.perf_counter()
        for client in clients:
            load.fire(client)
        await asyncio.wait(
            [load.finished, *(c.lost for c in clients)],
            timeout=max(60.0, total / 200),
            return_when=asyncio.FIRST_COMPLETED,
        )
        if not load.finished.done():
            raise RuntimeError(f"load stopped after {load.done} of {total} responses")
        load.result.seconds = time.perf_counter() - started
    finally:
        for client in clients:
            client.close()
    return load.result
