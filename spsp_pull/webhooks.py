"""Delivering the webhook outbox: signed POSTs with retries and backoff, each attempt logged.

A message is claimed for a while before delivery, so a worker that dies mid-delivery leaves it to another;
delivery is therefore at-least-once and receivers should de-duplicate by the `Webhook-Id` header. Deliveries
run concurrently within `SlotLimits` (in all, per account, per destination): a slow or dead receiver only
ever delays messages of its own account or to its own host, and pulls never wait for webhooks.

Targets are checked by `spsp_pull.outbound` (public addresses only, unless allowed), bodies signed with the
secrets in force at delivery (`store.outbox`), answers read up to a cap. Every body is the event envelope
(`domain.events`), made here from the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import Self

import aiohttp
from aiohttp.abc import AbstractResolver

from spsp_pull.delivery_slots import DeliverySlots, SlotLimits
from spsp_pull.domain.clock import Clock
from spsp_pull.domain.events import envelope
from spsp_pull.domain.outbound_targets import PUBLIC_ONLY, TargetPolicy, TargetRefused, redacted
from spsp_pull.outbound import RESPONSE_BODY_CAP, client_session, failure_text, read_capped, target_url
from spsp_pull.store import outbox
from spsp_pull.store.database import Database

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Webhook-Signature"
BACKOFF = (5, 30, 120, 600, 1800, 3600, 7200, 14400)  # seconds before attempt 2, 3, ...


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    targets: TargetPolicy = PUBLIC_ONLY
    timeout: timedelta = timedelta(seconds=10)
    batch: int = 20
    max_attempts: int = len(BACKOFF) + 1
    poll_interval: timedelta = timedelta(seconds=1)
    slots: SlotLimits = field(default_factory=SlotLimits)
    response_body_cap: int = RESPONSE_BODY_CAP


def signature(secrets: tuple[bytes, ...], message_id: int, timestamp: int, body: bytes) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<id>.<t>.<body>">`, one `v1` per secret in force (two while
    a rotated secret overlaps the new one). Receivers recompute it with their secret, accept the message if
    any `v1` matches, and reject old timestamps to stop replays."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    macs = ",".join(f"v1={hmac.new(key, signed, hashlib.sha256).hexdigest()}" for key in secrets)
    return f"t={timestamp},{macs}"


def delivered_body(message: outbox.OutboxMessage) -> bytes:
    """The bytes POSTed (and signed) for a message: its event's envelope around the data it stores."""
    data = envelope(message.id, message.event, message.created_at, json.loads(message.body))
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


def retry_time(attempts_made: int, now: datetime, settings: WebhookSettings) -> datetime | None:
    if attempts_made >= settings.max_attempts:
        return None
    return now + timedelta(seconds=BACKOFF[min(attempts_made - 1, len(BACKOFF) - 1)])


class WebhookWorker:
    """`run()` delivers for ever. Step by step: `async with worker:` then `await worker.deliver_due()`."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: WebhookSettings,
        *,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._settings = settings
        self._resolver = resolver
        self._wake = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._slots = DeliverySlots(settings.slots)
        self._deliveries: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        self._wake.set()

    async def __aenter__(self) -> Self:
        self._session = client_session(
            self._settings.targets, timeout=self._settings.timeout, resolver=self._resolver
        )
        return self

    async def __aexit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        for task in self._deliveries:
            task.cancel()  # their claims lapse; another worker (or the next start) delivers them
        await asyncio.gather(*self._deliveries, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def run(self) -> None:
        async with self:
            while True:
                self._wake.clear()
                await self.dispatch()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._settings.poll_interval.total_seconds())

    async def deliver_due(self) -> int:
        """Deliver what is due now (those waiting for a slot as slots free up) and wait for those
        deliveries; the number of messages attempted."""
        started = await self.dispatch()
        while self._deliveries:
            await asyncio.wait(self._deliveries, return_when=asyncio.FIRST_COMPLETED)
            started += await self.dispatch()
        return started

    async def dispatch(self) -> int:
        """Start a delivery for each due message that has a free slot; the number started.

        Messages of busy accounts or to busy destinations are not claimed at all, so messages behind them
        in the queue (other tenants') are."""
        started = 0
        while (room := min(self._slots.free, self._settings.batch)) > 0:
            messages = await outbox.claim_due(
                self._db,
                now=self._clock.now(),
                claim_for=self._settings.timeout * 3,
                limit=room,
                skip_accounts=self._slots.busy_accounts(),
                skip_destinations=self._slots.busy_destinations(),
            )
            waiting = []
            for message in messages:
                if self._slots.take(message.account_id, message.destination):
                    task = asyncio.create_task(self._deliver_in_slot(message))
                    self._deliveries.add(task)
                    task.add_done_callback(self._deliveries.discard)
                    started += 1
                else:
                    waiting.append(message.id)  # its account or host filled up within this batch
            await outbox.release_claims(self._db, waiting)
            if len(messages) < room:
                break
        return started

    async def _deliver_in_slot(self, message: outbox.OutboxMessage) -> None:
        try:
            await self._deliver(message)
        except Exception:
            log.exception("webhook %s: delivery broke off; retried once its claim lapses", message.id)
        finally:
            self._slots.give_back(message.account_id, message.destination)
            self._wake.set()

    async def _deliver(self, message: outbox.OutboxMessage) -> None:
        session = self._session
        assert session is not None, "deliveries run inside `async with worker`"
        body = delivered_body(message)
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        final = False  # a failure no retry can mend
        try:
            if not message.secrets:
                raise TargetRefused("no signing secret for this message")
            url = target_url(message.url, self._settings.targets)
            headers = {
                "Content-Type": "application/json",
                "Webhook-Id": str(message.id),
                "Webhook-Event": message.event,
                SIGNATURE_HEADER: signature(
                    message.secrets, message.id, int(self._clock.now().timestamp()), body
                ),
                "User-Agent": "spsp-pull",
            }
            async with session.post(url, data=body, headers=headers, allow_redirects=False) as response:
                status = response.status
                await read_capped(response, self._settings.response_body_cap)
        except TargetRefused as exc:
            error, final = failure_text(exc), True
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = failure_text(exc)
        delivered = status is not None and 200 <= status < 300
        if not delivered and error is None:
            error = f"HTTP {status}"
        now = self._clock.now()
        retry_at = None if delivered or final else retry_time(message.attempts + 1, now, self._settings)
        await outbox.record_attempt(
            self._db,
            message.id,
            now=now,
            delivered=delivered,
            status_code=status,
            error=error,
            duration_ms=int((time.monotonic() - started) * 1000),
            retry_at=retry_at,
        )
        self._db.metrics.webhook_delivery(delivered=delivered, retrying=retry_at is not None)
        if not delivered:
            log.info(
                "webhook %s to %s failed (attempt %d): %s",
                message.id,
                redacted(message.url),
                message.attempts + 1,
                error,
            )
