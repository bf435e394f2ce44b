"""Constant-answer HTTP servers: how many requests/s the load generator can get out of Python at all.

    python -m bench.ceiling_server asyncio --port 0   # a bare asyncio.Protocol responder
    python -m bench.ceiling_server aiohttp --port 0   # an aiohttp app with one constant handler

Both answer every request with the same 200 SPSP answer, the size of our server's, and print the port they
bound on 127.0.0.1 on stdout; SIGTERM or SIGINT stops them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

from aiohttp import web

CONTENT_TYPE = "application/spsp4+json"
BODY = json.dumps(
    {
        "destination_account": "private.spsppull.lpGNEQFwsENPxlgA~n4HdmKY55FKGQHK_",
        "shared_secret": "+POAuha3xeANK9vT7SCBU2IGdfqKTrIoE/AsM9C+NsY=",
        "pull": {
            "balance": {"total": "0", "interval": "0", "available": "1000"},
            "cycle": 1,
            "agreement": {
                "amount": "1000",
                "start": "2026-01-01T00:00:00.000Z",
                "interval": "P1M",
                "cycles": 12,
                "cap": False,
                "asset": {"code": "USD", "scale": 2},
            },
        },
    }
).encode()
RESPONSE = (
    f"HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {len(BODY)}\r\n\r\n".encode() + BODY
)


class Responder(asyncio.Protocol):
    """Answers each request head with RESPONSE; requests are taken to be GETs without a body."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        heads, consumed = 0, 0
        while (end := buffer.find(b"\r\n\r\n", consumed)) >= 0:
            heads += 1
            consumed = end + 4
        if heads:
            del buffer[:consumed]
            assert self._transport is not None
            self._transport.write(RESPONSE * heads)


async def _constant(_: web.Request) -> web.Response:
    return web.Response(body=BODY, content_type=CONTENT_TYPE)


async def serve(kind: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    if kind == "asyncio":
        server = await loop.create_server(Responder, "127.0.0.1", port)
        print(server.sockets[0].getsockname()[1], flush=True)
        await stopped.wait()
        server.close()
        return
    app = web.Application()
    app.router.add_get("/{token}", _constant)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(runner.addresses[0][1], flush=True)
    await stopped.wait()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("kind", choices=["asyncio", "aiohttp"])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.kind, args.port))


if __name__ == "__main__":
    main()
