"""Delivering the webhook outbox: signed POSTs with retries and backoff, each attempt logged.

A message is claimed for a while before delivery, so a worker that dies mid-delivery leaves it to another;
delivery is therefore at-least-once and receivers should de-duplicate by the `Webhook-Id` header. A failing
webhook only ever delays its own messages; pulls never wait for webhooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp

from spsp_pull.domain.clock import Clock
from spsp_pull.store import outbox
from spsp_pull.store.database import Database

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Webhook-Signature"
BACKOFF = (5, 30, 120, 600, 1800, 3600, 7200, 14400)  # seconds before attempt 2, 3, ...


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    secret: bytes
    bearer_token: str | None
    timeout: timedelta = timedelta(seconds=10)
    batch: int = 20
    max_attempts: int = len(BACKOFF) + 1
    poll_interval: timedelta = timedelta(seconds=1)


def signature(secret: bytes, message_id: int, timestamp: int, body: bytes) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<id>.<t>.<body>">`: receivers recompute it with the shared
    secret, and reject old timestamps to stop replays."""
    mac = hmac.new(secret, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def retry_time(attempts_made: int, now: datetime, settings: WebhookSettings) -> datetime | None:
    if attempts_made >= settings.max_attempts:
        return None
    return now + timedelta(seconds=BACKOFF[min(attempts_made - 1, len(BACKOFF) - 1)])


class WebhookWorker:
    def __init__(self, db: Database, clock: Clock, settings: WebhookSettings) -> None:
        self._db = db
        self._clock = clock
        self._settings = settings
        self._wake = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self._settings.timeout.total_seconds())
        async with aiohttp.ClientSession(timeout=timeout) as session:
            self._session = session
            while True:
                delivered = await self.deliver_due()
                if delivered < self._settings.batch:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            self._wake.wait(), self._settings.poll_interval.total_seconds()
                        )
                    self._wake.clear()

    async def deliver_due(self) -> int:
        """Deliver what is due now, concurrently; the number of messages attempted."""
        messages = await outbox.claim_due(
            self._db,
            now=self._clock.now(),
            claim_for=self._settings.timeout * 3,
            limit=self._settings.batch,
        )
        await asyncio.gather(*(self._deliver(m) for m in messages))
        return len(messages)

    async def _deliver(self, message: outbox.OutboxMessage) -> None:
        body = message.body.encode()
        sent_at = self._clock.now()
        headers = {
            "Content-Type": "application/json",
            "Webhook-Id": str(message.id),
            "Webhook-Event": message.event,
            SIGNATURE_HEADER: signature(self._settings.secret, message.id, int(sent_at.timestamp()), body),
            "User-Agent": "spsp-pull",
        }
        if self._settings.bearer_token:
            headers["Authorization"] = f"Bearer {self._settings.bearer_token}"
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        session = self._session
        assert session is not None, "run() opens the HTTP session"
        try:
            async with session.post(
                message.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
                await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        delivered = status is not None and 200 <= status < 300
        if not delivered and error is None:
            error = f"HTTP {status}"
        now = self._clock.now()
        await outbox.record_attempt(
            self._db,
            message.id,
            now=now,
            delivered=delivered,
            status_code=status,
            error=error,
            duration_ms=int((time.monotonic() - started) * 1000),
            retry_at=None if delivered else retry_time(message.attempts + 1, now, self._settings),
        )
        if not delivered:
            log.info(
                "webhook %s to %s failed (attempt %d): %s",
                message.id,
                message.url,
                message.attempts + 1,
                error,
            )

    async def deliver_once_with(self, session: aiohttp.ClientSession) -> int:
        """Deliver what is due now with this HTTP session (for callers that drive the worker step by step)."""
        self._session = session
        return await self.deliver_due()
