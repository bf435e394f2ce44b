"""An aiohttp application on 127.0.0.1 that can be stopped and started again on the same port."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from abc import ABC, abstractmethod
from datetime import timedelta

from aiohttp import web

# Bound on how long a fake keeps a request open on purpose (stalls, long streams).
MAX_HOLD = timedelta(seconds=30)


class LoopbackServer(ABC):
    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.port = 0
        self._ssl_context = ssl_context
        self._runner: web.AppRunner | None = None
        self.stopping = asyncio.Event()

    @abstractmethod
    def build_app(self) -> web.Application: ...

    @property
    def base_url(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.stopping = asyncio.Event()
        runner = web.AppRunner(self.build_app(), shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port, ssl_context=self._ssl_context)
        await site.start()
        self.port = runner.addresses[0][1]
        self._runner = runner

    async def stop(self) -> None:
        """Close the listener and every open request; the state is kept for a later `start`."""
        self.stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def hold(self, limit: timedelta = MAX_HOLD) -> None:
        """Keep a request open until the server stops or `limit` passes."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), limit.total_seconds())
