"""The webhook outbox: a recorded pull is announced, signed with its account's secret, retried with backoff,
logged; a dead webhook never blocks a pull; internal targets are refused before any connection; answers
are read up to a cap; one account's slow receivers never hold up another's.

Every receiver listens on 127.0.0.1. Names resolve through a fake resolver; refusals are shown with names
that resolve to loopback without SPSP_WEBHOOK_ALLOW_NETS (never by sending anywhere else).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver
from pytest_aiohttp import AiohttpServer

from spsp_pull.api.views import webhook_body
from spsp_pull.config import Config
from spsp_pull.delivery_slots import SlotLimits
from spsp_pull.domain.clock import ManualClock
from spsp_pull.domain.details_input import DetailChanges
from spsp_pull.domain.outbound_targets import PUBLIC_ONLY, TargetPolicy, parse_networks
from spsp_pull.domain.states import ReservationKind
from spsp_pull.outbound import NoAllowedAddress, PolicyResolver
from spsp_pull.store import accounts, outbox, pointers, reservations
from spsp_pull.store.accounts import AccountRecord, ensure_admin
from spsp_pull.store.database import Database
from spsp_pull.webhooks import BACKOFF, SIGNATURE_HEADER, WebhookSettings, WebhookWorker
from tests.fake_resolver import FakeResolver
from tests.store.pointer_factory import terms

LEASE = timedelta(seconds=30)
LOCAL = TargetPolicy(parse_networks(["127.0.0.0/8"]))  # SPSP_WEBHOOK_ALLOW_NETS=127.0.0.0/8


@dataclass
class Receiver:
    """A real HTTP endpoint on loopback that answers with the statuses it is told to, in order."""

    statuses: list[int] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""
    port: int = 0
    got_request: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        self.got_request.set()
        status = self.statuses.pop(0) if self.statuses else 200
        headers = {"Location": f"http://127.0.0.1:{self.port}/elsewhere"} if 300 <= status < 400 else None
        return web.Response(status=status, headers=headers)


@pytest.fixture
async def receiver(aiohttp_server: AiohttpServer) -> Receiver:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    app.router.add_post("/elsewhere", receiver.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    receiver.url = str(server.make_url("/hook"))
    receiver.port = server.port or 0
    return receiver


def verifies(headers: dict[str, str], body: bytes, secret: str) -> bool:
    """What a receiver does: recompute the HMAC of "<id>.<t>.<body>" and accept any matching v1."""
    parts = [part.split("=", 1) for part in headers[SIGNATURE_HEADER].split(",")]
    timestamp = next(value for key, value in parts if key == "t")
    signed = f"{headers['Webhook-Id']}.{timestamp}.".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return any(key == "v1" and hmac.compare_digest(value, expected) for key, value in parts)


async def pull_with_webhook(
    db: Database, clock: ManualClock, url: str, amount: int = 250, account: AccountRecord | None = None
) -> int:
    now = clock.now()
    owner = account or await ensure_admin(db, "k", now)
    record = await pointers.create_pointer(
        db, pointers.NewPointer(account_id=owner.id, terms=terms(now, amount=1000), webhook=url), now
    )
    grant = await reservations.reserve(
        db, record.id, amount, kind=ReservationKind.STREAM, now=now, lease=LEASE
    )
    assert grant is not None
    config = Config(host="pull.example")
    await reservations.settle(
        db, grant.reservation_id, amount, now=now, notify=lambda r, t: webhook_body(config, r, t)
    )
    return record.id


async def queue(db: Database, clock: ManualClock, account_id: int, url: str, n: int = 1) -> None:
    async with db.write() as session:
        for i in range(n):
            outbox.enqueue(
                session, url=url, event="test", body={"n": i}, now=clock.now(), account_id=account_id
            )


def worker(
    db: Database,
    clock: ManualClock,
    *,
    targets: TargetPolicy = LOCAL,
    resolver: AbstractResolver | None = None,
    **settings: Any,
) -> WebhookWorker:
    settings.setdefault("timeout", timedelta(seconds=5))
    return WebhookWorker(db, clock, WebhookSettings(targets=targets, **settings), resolver=resolver)


async def deliver(hooks: WebhookWorker) -> int:
    async with hooks:
        return await hooks.deliver_due()


async def wait_for(event: asyncio.Event) -> None:
    """Wait for something the test expects to happen (the bound only keeps a broken test from hanging)."""
    await asyncio.wait_for(event.wait(), 30)


async def test_completed_pull_is_delivered_signed_with_the_accounts_secret(
    db: Database, clock: ManualClock, receiver: Receiver
) -> None:
    pointer_id = await pull_with_webhook(db, clock, receiver.url)
    assert await deliver(worker(db, clock)) == 1
    [(headers, body)] = receiver.requests
    payload = json.loads(body)
    assert payload["balanceTotal"] == "250" and payload["balanceInterval"] == "250"
    assert payload["pointer"].startswith("$pull.example/")
    assert payload["balanceAvailable"] == "750" and payload["event"] == "pull.completed"
    assert "Authorization" not in headers  # no bearer token shared by every account
    admin = await ensure_admin(db, "k", clock.now())
    secret = (await accounts.webhook_secret(db, admin.id, clock.now())).secret
    assert verifies(headers, body, secret) and not verifies(headers, body, "another secret")
    assert headers[SIGNATURE_HEADER].count("v1=") == 1
    [(_, event, state)] = await outbox.messages_for_pointer(db, pointer_id)
    assert (event, state) == ("pull.completed", "delivered")


async def test_each_account_signs_with_its_own_secret(
    db: Database, clock: ManualClock, receiver: Receiver
) -> None:
    now = clock.now()
    shop = (await accounts.create_account(db, "shop", now)).account
    rival = (await accounts.create_account(db, "rival", now)).account
    await pull_with_webhook(db, clock, receiver.url, account=shop)
    await pull_with_webhook(db, clock, receiver.url, account=rival)
    assert await deliver(worker(db, clock)) == 2
    shop_secret = (await accounts.webhook_secret(db, shop.id, now)).secret
    rival_secret = (await accounts.webhook_secret(db, rival.id, now)).secret
    assert shop_secret != rival_secret
    by_secret = sorted(
        (verifies(headers, body, shop_secret), verifies(headers, body, rival_secret))
        for headers, body in receiver.requests
    )
    assert by_secret == [(False, True), (True, False)]  # each message verifies with its account's only


async def test_a_rotated_secret_signs_queued_messages_with_the_old_one_beside_for_a_day(
    db: Database, clock: ManualClock, receiver: Receiver
) -> None:
    shop = (await accounts.create_account(db, "shop", clock.now())).account
    old = (await accounts.webhook_secret(db, shop.id, clock.now())).secret
    await pull_with_webhook(db, clock, receiver.url, account=shop)  # queued before the rotation
    rotated = await accounts.rotate_webhook_secret(db, shop.id, clock.now())
    assert rotated.secret != old and rotated.previous_valid_until == clock.now() + accounts.ROTATION_OVERLAP
    assert await deliver(worker(db, clock)) == 1
    headers, body = receiver.requests[-1]
    assert headers[SIGNATURE_HEADER].count("v1=") == 2
    assert verifies(headers, body, rotated.secret) and verifies(headers, body, old)

    clock.advance(accounts.ROTATION_OVERLAP)
    await pull_with_webhook(db, clock, receiver.url, account=shop)
    assert await deliver(worker(db, clock)) == 1
    headers, body = receiver.requests[-1]
    assert verifies(headers, body, rotated.secret) and not verifies(headers, body, old)
    assert (await accounts.webhook_secret(db, shop.id, clock.now())).previous_valid_until is None


async def test_failures_are_retried_with_backoff_and_logged(
    db: Database, clock: ManualClock, receiver: Receiver
) -> None:
    pointer_id = await pull_with_webhook(db, clock, receiver.url)
    receiver.statuses = [500, 503]
    hooks = worker(db, clock)
    async with hooks:
        assert await hooks.deliver_due() == 1
        assert await hooks.deliver_due() == 0  # not due before the backoff
        clock.advance(timedelta(seconds=BACKOFF[0]))
        assert await hooks.deliver_due() == 1
        clock.advance(timedelta(seconds=BACKOFF[1] - 1))
        assert await hooks.deliver_due() == 0
        clock.advance(timedelta(seconds=1))
        assert await hooks.deliver_due() == 1
    [(message_id, _, _)] = await outbox.messages_for_pointer(db, pointer_id)
    state, log = await outbox.message_state(db, message_id)
    assert state == "delivered"
    assert [(d.attempt, d.status_code) for d in log] == [(1, 500), (2, 503), (3, 200)]
    assert len({body for _, body in receiver.requests}) == 1  # the same message each time


async def test_redirects_are_not_followed(db: Database, clock: ManualClock, receiver: Receiver) -> None:
    pointer_id = await pull_with_webhook(db, clock, receiver.url)
    receiver.statuses = [307]
    assert await deliver(worker(db, clock)) == 1
    assert len(receiver.requests) == 1  # /elsewhere was never asked
    [(message_id, _, _)] = await outbox.messages_for_pointer(db, pointer_id)
    state, [attempt] = await outbox.message_state(db, message_id)
    assert (state, attempt.status_code, attempt.error) == ("pending", 307, "HTTP 307")


async def test_dead_webhook_gives_up_and_never_blocks_pulls(db: Database, clock: ManualClock) -> None:
    dead_url = "http://127.0.0.1:9/hook"  # discard port: connection refused
    pointer_id = await pull_with_webhook(db, clock, dead_url)
    hooks = worker(db, clock, max_attempts=3)
    async with hooks:
        for _ in range(3):
            assert await hooks.deliver_due() == 1
            clock.advance(timedelta(hours=5))
        assert await hooks.deliver_due() == 0
    [(message_id, _, _)] = await outbox.messages_for_pointer(db, pointer_id)
    state, log = await outbox.message_state(db, message_id)
    assert state == "dead" and len(log) == 3 and all(d.error for d in log)
    # Pulls go on regardless of the webhook.
    now = clock.now()
    grant = await reservations.reserve(db, pointer_id, 100, kind=ReservationKind.STREAM, now=now, lease=LEASE)
    assert grant is not None
    await reservations.settle(db, grant.reservation_id, 100, now=now, notify=lambda r, t: {"n": 1})
    assert [s for _, _, s in await outbox.messages_for_pointer(db, pointer_id)] == ["dead", "pending"]


async def test_two_workers_never_deliver_the_same_message_at_once(
    db: Database, clock: ManualClock, receiver: Receiver
) -> None:
    for _ in range(5):
        await pull_with_webhook(db, clock, receiver.url, amount=10)
    first, second = worker(db, clock), worker(db, clock)
    counts = await asyncio.gather(deliver(first), deliver(second))
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
    grant = await reservations.reserve(db, pointer_id, 50, kind=ReservationKind.STREAM, now=now, lease=LEASE)
    assert grant is not None
    config = Config(host="pull.example")
    await reservations.settle(
        db, grant.reservation_id, 50, now=now, notify=lambda r, t: webhook_body(config, r, t)
    )
    assert await deliver(worker(db, clock)) == 2
    [(_, body)] = receiver.requests  # the pull queued before the change still goes to the old URL
    assert json.loads(body)["balanceTotal"] == "150"
    states = [state for _, _, state in await outbox.messages_for_pointer(db, pointer_id)]
    assert sorted(states) == ["delivered", "pending"]


# -- targets --------------------------------------------------------------------------------------


@dataclass
class ConnectionCounter:
    """A bare TCP listener on loopback that only counts the connections made to it."""

    port: int = 0
    connections: int = 0


@pytest.fixture
async def listener() -> AsyncIterator[ConnectionCounter]:
    counter = ConnectionCounter()

    async def accepted(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        counter.connections += 1
        writer.close()

    server = await asyncio.start_server(accepted, "127.0.0.1", 0)
    counter.port = server.sockets[0].getsockname()[1]
    try:
        yield counter
    finally:
        server.close()
        await server.wait_closed()


async def only_attempt(db: Database, pointer_id: int) -> tuple[str, str | None]:
    [(message_id, _, _)] = await outbox.messages_for_pointer(db, pointer_id)
    state, [attempt] = await outbox.message_state(db, message_id)
    return state, attempt.error


async def test_a_name_resolving_to_loopback_is_refused_before_any_connection(
    db: Database, clock: ManualClock, listener: ConnectionCounter
) -> None:
    resolver = FakeResolver({"hooks.example": ["127.0.0.1"], "both.example": ["::1", "127.0.0.1"]})
    first = await pull_with_webhook(db, clock, f"http://hooks.example:{listener.port}/hook")
    second = await pull_with_webhook(db, clock, f"http://both.example:{listener.port}/hook")
    assert await deliver(worker(db, clock, targets=PUBLIC_ONLY, resolver=resolver)) == 2
    assert listener.connections == 0
    assert sorted(resolver.lookups) == ["both.example", "hooks.example"]
    for pointer_id in (first, second):
        state, error = await only_attempt(db, pointer_id)
        assert state == "pending"  # the name may resolve elsewhere later: retried, and checked again
        assert error is not None and error.startswith("target refused:") and "no public address" in error


async def test_only_the_allowed_addresses_of_a_name_are_connected_to(
    db: Database, clock: ManualClock, receiver: Receiver
) -> None:
    """DNS answers a private address and a loopback one; only 127.0.0.0/8 is allowed, so the private one is
    dropped before connecting and the request reaches the loopback receiver."""
    resolver = FakeResolver({"mixed.example": ["10.20.30.40", "127.0.0.1"]})
    # Checked before anything is delivered: were the filter broken, nothing may ever try 10.20.30.40.
    answers = await PolicyResolver(LOCAL, resolver).resolve("mixed.example", receiver.port)
    assert [answer["host"] for answer in answers] == ["127.0.0.1"]
    await pull_with_webhook(db, clock, f"http://mixed.example:{receiver.port}/hook")
    assert await deliver(worker(db, clock, resolver=resolver)) == 1
    [(headers, _)] = receiver.requests
    assert headers["Host"] == f"mixed.example:{receiver.port}"


async def test_a_name_resolving_only_to_private_addresses_is_refused(
    db: Database, clock: ManualClock
) -> None:
    resolver = FakeResolver({"intranet.example": ["10.1.2.3", "fd00::1", "169.254.169.254"]})
    # Checked before anything is delivered: were the filter broken, nothing may ever try these addresses.
    with pytest.raises(NoAllowedAddress):
        await PolicyResolver(LOCAL, resolver).resolve("intranet.example", 80)
    pointer_id = await pull_with_webhook(db, clock, "http://intranet.example/hook")
    assert await deliver(worker(db, clock, resolver=resolver)) == 1
    _, error = await only_attempt(db, pointer_id)
    assert error is not None and error.startswith("target refused: intranet.example resolves to")


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.1", "2130706433", "0x7f000001", "[::ffff:127.0.0.1]", "localhost"]
)
async def test_a_queued_literal_address_is_refused_for_good_without_connecting(
    db: Database, clock: ManualClock, listener: ConnectionCounter, host: str
) -> None:
    """A URL queued before these checks existed (or under another allow list) is checked again at delivery:
    an address written out is refused for good."""
    pointer_id = await pull_with_webhook(db, clock, f"http://{host}:{listener.port}/hook")
    resolver = FakeResolver({"localhost": ["127.0.0.1"]})
    assert await deliver(worker(db, clock, targets=PUBLIC_ONLY, resolver=resolver)) == 1
    assert listener.connections == 0
    state, error = await only_attempt(db, pointer_id)
    assert state == "dead" and error is not None and error.startswith("target refused:")


async def test_credentials_in_urls_never_reach_the_log(
    db: Database, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    await pull_with_webhook(db, clock, "http://hook-user:hook-pass@127.0.0.1:9/hook?token=query-secret")
    with caplog.at_level(logging.INFO, logger="spsp_pull.webhooks"):
        assert await deliver(worker(db, clock)) == 1
    logged = caplog.text
    assert "webhook" in logged and "127.0.0.1:9/hook" in logged
    assert not any(secret in logged for secret in ("hook-user", "hook-pass", "query-secret"))


# -- answers and fair shares ----------------------------------------------------------------------


@dataclass
class Streamer:
    """Answers 200 with an endless body (up to `total`), counting what the socket accepted."""

    total: int = 64 * 1024 * 1024
    written: int = 0
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    cut_off: bool = False

    async def handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse()
        await response.prepare(request)
        chunk = b"x" * 65536
        try:
            while self.written < self.total:
                await response.write(chunk)
                self.written += len(chunk)
        except ConnectionError:
            pass  # the client hung up (or aiohttp cancels this handler for it)
        finally:
            self.cut_off = self.written < self.total
            self.finished.set()
        return response


@pytest.fixture
async def streamer(aiohttp_server: AiohttpServer) -> tuple[Streamer, str]:
    streamer = Streamer()
    app = web.Application()
    app.router.add_post("/hook", streamer.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    return streamer, str(server.make_url("/hook"))


async def test_a_huge_answer_is_read_up_to_the_cap_and_the_connection_dropped(
    db: Database, clock: ManualClock, streamer: tuple[Streamer, str]
) -> None:
    body, url = streamer
    pointer_id = await pull_with_webhook(db, clock, url)
    assert await deliver(worker(db, clock)) == 1
    await wait_for(body.finished)
    # Kernel socket buffers took some; the rest of the 64 MiB was never sent, let alone read.
    assert body.cut_off and body.written < body.total // 4
    state, error = await only_attempt(db, pointer_id)
    assert (state, error) == ("delivered", None)


async def test_read_capped_reads_exactly_the_cap(streamer: tuple[Streamer, str]) -> None:
    from spsp_pull.outbound import client_session, read_capped

    body, url = streamer
    async with (
        client_session(LOCAL, timeout=timedelta(seconds=10)) as session,
        session.post(url, data=b"{}") as response,
    ):
        assert await read_capped(response, 100_000) == 100_000
        assert response.closed
    await wait_for(body.finished)
    assert body.cut_off


@dataclass
class HeldReceivers:
    """Receivers on many loopback ports that hold each request open until `release` is set."""

    expected: int
    urls: list[str] = field(default_factory=list)
    arrived: int = 0
    answered: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)
    full: asyncio.Event = field(default_factory=asyncio.Event)  # `full_at` requests are held
    full_at: int = 0
    all_answered: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.arrived += 1
        if self.arrived == self.full_at:
            self.full.set()
        await self.release.wait()
        self.answered += 1
        if self.answered == self.expected:
            self.all_answered.set()
        return web.Response()


async def held_receivers(
    count: int, *, expected: int, full_at: int
) -> tuple[HeldReceivers, Callable[[], Awaitable[None]]]:
    held = HeldReceivers(expected=expected, full_at=full_at)
    app = web.Application()
    app.router.add_post("/hook", held.handle)
    runner = web.AppRunner(app, shutdown_timeout=0)
    await runner.setup()
    for _ in range(count):
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
    held.urls = [f"http://127.0.0.1:{address[1]}/hook" for address in runner.addresses]
    return held, runner.cleanup


async def test_one_accounts_slow_receivers_never_delay_another_accounts_delivery(
    db: Database, clock: ManualClock, receiver: Receiver
) -> None:
    """40 receivers of account A hold every request; B's message, queued after all of A's, is delivered
    while A's are still held."""
    now = clock.now()
    a = (await accounts.create_account(db, "a", now)).account
    b = (await accounts.create_account(db, "b", now)).account
    limits = SlotLimits(total=64, per_account=8, per_destination=4)
    held, stop = await held_receivers(40, expected=40, full_at=limits.per_account)
    for url in held.urls:
        await queue(db, clock, a.id, url)
    await queue(db, clock, b.id, receiver.url)
    hooks = worker(db, clock, slots=limits, timeout=timedelta(seconds=60))
    running = asyncio.create_task(hooks.run())
    try:
        await wait_for(held.full)
        await wait_for(receiver.got_request)
        assert held.answered == 0 and held.arrived == limits.per_account  # A still held, at its share
        held.release.set()
        await wait_for(held.all_answered)  # and all 40 of A's get through once released
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await stop()
    assert held.arrived == 40 and len(receiver.requests) == 1


async def test_one_slow_host_gets_at_most_its_share_of_deliveries(
    db: Database, clock: ManualClock, receiver: Receiver
) -> None:
    now = clock.now()
    a = (await accounts.create_account(db, "a", now)).account
    limits = SlotLimits(total=64, per_account=8, per_destination=4)
    held, stop = await held_receivers(1, expected=10, full_at=limits.per_destination)
    await queue(db, clock, a.id, held.urls[0], n=10)
    await queue(db, clock, a.id, receiver.url)  # same account, another host
    hooks = worker(db, clock, slots=limits, timeout=timedelta(seconds=60))
    running = asyncio.create_task(hooks.run())
    try:
        await wait_for(held.full)
        await wait_for(receiver.got_request)
        assert held.arrived == limits.per_destination and held.answered == 0
        held.release.set()
        await wait_for(held.all_answered)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await stop()
    assert held.arrived == 10
