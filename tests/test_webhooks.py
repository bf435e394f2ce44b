"""The webhook outbox: a recorded pull is announced, signed, retried with backoff, logged; a dead webhook
never blocks a pull."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from spsp_pull.api.views import webhook_body
from spsp_pull.config import Config
from spsp_pull.domain.clock import ManualClock
from spsp_pull.domain.details_input import DetailChanges
from spsp_pull.store import outbox, pointers, reservations
from spsp_pull.store.accounts import ensure_admin
from spsp_pull.store.database import Database
from spsp_pull.webhooks import BACKOFF, WebhookSettings, WebhookWorker
from tests.store.pointer_factory import terms

SECRET = b"webhook-secret"
LEASE = timedelta(seconds=30)


@dataclass
class Receiver:
    """A real HTTP endpoint on loopback that answers with the statuses it is told to, in order."""

    statuses: list[int] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    receiver.url = str(server.make_url("/hook"))
    try:
        yield receiver
    finally:
        await server.close()


async def pull_with_webhook(db: Database, clock: ManualClock, url: str, amount: int = 250) -> int:
    now = clock.now()
    admin = await ensure_admin(db, "k", now)
    record = await pointers.create_pointer(
        db, pointers.NewPointer(account_id=admin.id, terms=terms(now, amount=1000), webhook=url), now
    )
    grant = await reservations.reserve(db, record.id, amount, kind="stream", now=now, lease=LEASE)
    assert grant is not None
    config = Config(host="pull.example")
    await reservations.settle(
        db, grant.reservation_id, amount, now=now, notify=lambda r, t: webhook_body(config, r, t)
    )
    return record.id


def worker(db: Database, clock: ManualClock) -> WebhookWorker:
    return WebhookWorker(
        db, clock, WebhookSettings(secret=SECRET, bearer_token="bearer-1", timeout=timedelta(seconds=2))
    )


async def test_completed_pull_is_delivered_signed(
    db: Database, clock: ManualClock, receiver: Receiver
) -> None:
    pointer_id = await pull_with_webhook(db, clock, receiver.url)
    async with aiohttp.ClientSession() as session:
        assert await worker(db, clock).deliver_once_with(session) == 1
    [(headers, body)] = receiver.requests
    payload = json.loads(body)
    assert payload["balanceTotal"] == "250" and payload["balanceInterval"] == "250"
    assert payload["pointer"].startswith("$pull.example/")
    assert payload["balanceAvailable"] == "750" and payload["event"] == "pull.completed"
    assert headers["Authorization"] == "Bearer bearer-1"
    timestamp, mac = (part.split("=", 1)[1] for part in headers["Webhook-Signature"].split(","))
    expected = hmac.new(SECRET, f"{headers['Webhook-Id']}.{timestamp}.".encode() + body, hashlib.sha256)
    assert hmac.compare_digest(mac, expected.hexdigest())
    [(_, event, state)] = await outbox.messages_for_pointer(db, pointer_id)
    assert (event, state) == ("pull.completed", "delivered")


async def test_failures_are_retried_with_backoff_and_logged(
    db: Database, clock: ManualClock, receiver: Receiver
) -> None:
    pointer_id = await pull_with_webhook(db, clock, receiver.url)
    receiver.statuses = [500, 503]
    hooks = worker(db, clock)
    async with aiohttp.ClientSession() as session:
        assert await hooks.deliver_once_with(session) == 1
        assert await hooks.deliver_once_with(session) == 0  # not due before the backoff
        clock.advance(timedelta(seconds=BACKOFF[0]))
        assert await hooks.deliver_once_with(session) == 1
        clock.advance(timedelta(seconds=BACKOFF[1] - 1))
        assert await hooks.deliver_once_with(session) == 0
        clock.advance(timedelta(seconds=1))
        assert await hooks.deliver_once_with(session) == 1
    [(message_id, _, _)] = await outbox.messages_for_pointer(db, pointer_id)
    state, log = await outbox.message_state(db, message_id)
    assert state == "delivered"
    assert [(d.attempt, d.status_code) for d in log] == [(1, 500), (2, 503), (3, 200)]
    assert len({body for _, body in receiver.requests}) == 1  # the same message each time


async def test_dead_webhook_gives_up_and_never_blocks_pulls(db: Database, clock: ManualClock) -> None:
    dead_url = "http://127.0.0.1:9/hook"  # discard port: connection refused
    pointer_id = await pull_with_webhook(db, clock, dead_url)
    hooks = WebhookWorker(db, clock, WebhookSettings(secret=SECRET, bearer_token=None, max_attempts=3))
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            assert await hooks.deliver_once_with(session) == 1
            clock.advance(timedelta(hours=5))
        assert await hooks.deliver_once_with(session) == 0
    [(message_id, _, _)] = await outbox.messages_for_pointer(db, pointer_id)
    state, log = await outbox.message_state(db, message_id)
    assert state == "dead" and len(log) == 3 and all(d.error for d in log)
    # Pulls go on regardless of the webhook.
    now = clock.now()
    grant = await reservations.reserve(db, pointer_id, 100, kind="stream", now=now, lease=LEASE)
    assert grant is not None
    await reservations.settle(db, grant.reservation_id, 100, now=now, notify=lambda r, t: {"n": 1})
    assert [s for _, _, s in await outbox.messages_for_pointer(db, pointer_id)] == ["dead", "pending"]


async def test_two_workers_never_deliver_the_same_message_at_once(
    db: Database, clock: ManualClock, receiver: Receiver
) -> None:
    for _ in range(5):
        await pull_with_webhook(db, clock, receiver.url, amount=10)
    async with aiohttp.ClientSession() as session:
        first, second = worker(db, clock), worker(db, clock)
        import asyncio

        counts = await asyncio.gather(first.deliver_once_with(session), second.deliver_once_with(session))
    assert sum(counts) == 5 and len(receiver.requests) == 5


async def test_a_changed_webhook_gets_the_pulls_after_the_change(
    db: Database, clock: ManualClock, receiver: Receiver
) -> None:
    old_url = "http://127.0.0.1:9/hook"  # discard port: connection refused
    pointer_id = await pull_with_webhook(db, clock, old_url, amount=100)
    record = await pointers.find_by_id(db, pointer_id)
    assert record is not None
    now = clock.now()
    await pointers.revise_pointer(
        db, record.account_id, record.token, None, now, details=DetailChanges(webhook=receiver.url)
    )
    grant = await reservations.reserve(db, pointer_id, 50, kind="stream", now=now, lease=LEASE)
    assert grant is not None
    config = Config(host="pull.example")
    await reservations.settle(
        db, grant.reservation_id, 50, now=now, notify=lambda r, t: webhook_body(config, r, t)
    )
    async with aiohttp.ClientSession() as session:
        assert await worker(db, clock).deliver_once_with(session) == 2
    [(_, body)] = receiver.requests  # the pull queued before the change still goes to the old URL
    assert json.loads(body)["balanceTotal"] == "150"
    states = [state for _, _, state in await outbox.messages_for_pointer(db, pointer_id)]
    assert sorted(states) == ["delivered", "pending"]
