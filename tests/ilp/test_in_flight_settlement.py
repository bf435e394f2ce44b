"""A pull settles only when nothing it sent is in flight; every Fulfill the server's link accepts is debited.

The server runs in-process (embedded BTP endpoint on loopback, the STREAM server, a real SQLite or
PostgreSQL ledger); the payee is `HostilePayee`, which answers the server's money Prepares only when the test
says so. What the payee was paid is what the server's link handed back as Fulfills (`PaidCounter`); what was
debited is the pointer's `pulled_total` and its ledger.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from spsp_pull.domain.agreement import Terms
from spsp_pull.domain.clock import SystemClock
from spsp_pull.domain.duration import parse_interval
from spsp_pull.ilp import stream_server as stream_server_module
from spsp_pull.ilp.node import EmbeddedNode
from spsp_pull.ilp.pull_session import PullSettings
from spsp_pull.ilp.receiver_address import ReceiverAddresses
from spsp_pull.ilp.stream_server import StreamServer, StreamServerSettings
from spsp_pull.metrics import Metrics
from spsp_pull.rates import Asset, StaticRates
from spsp_pull.store import pointers, reservations
from spsp_pull.store.accounts import ensure_admin
from spsp_pull.store.audit import audit_ledger
from spsp_pull.store.database import Database
from spsp_pull.store.pointers import NewPointer
from spsp_pull.store.records import PointerRecord
from stream import ilp
from stream.aio.plugin import IlpHandler, IlpLink
from tests.ilp.hostile.payee import HostilePayee

SERVER_ADDRESS = "private.pullsrv"
SETTLE_POLLS = 500  # 10 s
PACKET_TIMEOUT = timedelta(seconds=4)  # the server's Prepares' lifetime unless a test sets its own


class PaidCounter:
    """The server's ILP link, counting what payees were paid: the amounts of the Prepares its `send` returned
    a Fulfill for (the embedded endpoint keeps no balances; that is the payment)."""

    def __init__(self, inner: IlpLink) -> None:
        self._inner = inner
        self._paid_more = asyncio.Event()
        self.paid = 0

    async def send(self, prepare: ilp.Prepare) -> ilp.Fulfill | ilp.Reject:
        reply = await self._inner.send(prepare)
        if isinstance(reply, ilp.Fulfill):
            self.paid += prepare.amount
            self._paid_more.set()
        return reply

    async def paid_at_least(self, amount: int) -> None:
        """Until `paid` reaches `amount` (the sender has then handled those Fulfills: it runs on in the same
        step)."""
        async with asyncio.timeout(10):
            while self.paid < amount:
                self._paid_more.clear()
                await self._paid_more.wait()

    def set_handler(self, handler: IlpHandler) -> None:
        self._inner.set_handler(handler)


class CountedNode(EmbeddedNode):
    def __init__(self) -> None:
        super().__init__(
            SERVER_ADDRESS, Asset("XRP", 9), host="127.0.0.1", port=0, fallback_to_free_port=False
        )
        self.counter = PaidCounter(super().link)

    @property
    def link(self) -> IlpLink:
        return self.counter


@dataclass
class Served:
    db: Database
    node: CountedNode
    server: StreamServer
    addresses: ReceiverAddresses

    @property
    def paid(self) -> int:
        return self.node.counter.paid

    async def pointer(self, amount: int, *, scale: int = 9) -> PointerRecord:
        """A cap:false XRP pointer of `amount` at `scale` (the server's asset is XRP at scale 9)."""
        now = datetime.now(UTC)
        admin = await ensure_admin(self.db, "in-flight-admin-key", now)
        terms = Terms(
            amount=amount,
            asset_code="XRP",
            asset_scale=scale,
            interval=parse_interval("P1M"),
            cycles=1,
            cap=False,
            start=now - timedelta(seconds=1),
            expiry=None,
        )
        return await pointers.create_pointer(self.db, NewPointer(account_id=admin.id, terms=terms), now)

    async def payee(self, record: PointerRecord, username: str = "payee") -> HostilePayee:
        """A payee (BTP account `username`) on a fresh SPSP query (destination and secret) of `record`."""
        details = self.addresses.issue(SERVER_ADDRESS, record.tag)
        url = f"ws://127.0.0.1:{self.node.btp_port}"
        return await HostilePayee.join(url, username, details.destination_account, details.shared_secret)

    async def honest_pull(self, record: PointerRecord, username: str = "honest") -> int:
        """What an honest payee on a fresh query of `record` receives until the server closes its stream."""
        async with await self.payee(record, username) as honest:
            await honest.open_stream(receive_max=10_000_000)
            return await honest.receive_until_closed()

    async def settled(self, record: PointerRecord) -> PointerRecord:
        """The pointer once no reservation of it is open (the pull has ended)."""
        for _ in range(SETTLE_POLLS):  # the ledger is the only witness: poll it
            if not await reservations.open_reservations(self.db, record.id):
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError(f"pointer {record.id} still has open reservations")
        after = await pointers.find_by_id(self.db, record.id)
        assert after is not None
        return after

    async def ledger_total(self, record: PointerRecord) -> int:
        return sum(p.amount for p in await pointers.pointer_pulls(self.db, record.id, limit=10_000))


@asynccontextmanager
async def served(
    db: Database,
    *,
    packet_timeout: timedelta = PACKET_TIMEOUT,
    max_packet_amount: int | None = None,
    reservation_lease: timedelta = timedelta(seconds=60),
) -> AsyncIterator[Served]:
    node = CountedNode()
    addresses = ReceiverAddresses(secrets.token_bytes(32))
    server = StreamServer(
        node=node,
        db=db,
        clock=SystemClock(),
        addresses=addresses,
        rates=StaticRates({"XRP/XRP": Decimal(1)}),
        notify=lambda record, now: {},
        metrics=Metrics(),
        settings=StreamServerSettings(
            pull=PullSettings(reservation_lease=reservation_lease),
            packet_timeout=packet_timeout,
            max_packet_amount=max_packet_amount,
        ),
    )
    node.set_handler(server.handle)
    await node.start()
    try:
        yield Served(db, node, server, addresses)
    finally:
        await server.stop()
        await node.stop()


async def assert_ledger_sound(db: Database) -> None:
    """The ledger audit: every counter explained by the ledger, nothing debited beyond the terms."""
    report = await audit_ledger(db, now=datetime.now(UTC))
    assert report.clean, report.to_json()


async def test_closing_the_stream_with_prepares_in_flight_then_fulfilling_late_is_debited(
    db: Database,
) -> None:
    """The issue's attack: on the first money Prepares the payee closes its stream, holds the Fulfills a
    while (the Prepares have not expired), then returns them. Before: 1,000,000 paid, 0 debited, and the next
    pull got the whole allowance again."""
    async with served(db, max_packet_amount=250_000) as s:
        record = await s.pointer(1_500_000)
        async with await s.payee(record) as payee:
            await payee.open_stream(receive_max=1_000_000)
            held = await payee.money_worth(1_000_000)
            assert len(held) == 4  # four Prepares in flight at once
            await payee.close_stream()
            await asyncio.sleep(2)  # the attack: hold the Fulfills past the server's idle check
            for incoming in held:
                await payee.fulfill(incoming)
            after = await s.settled(record)
        assert s.paid == 1_000_000
        assert after.usage.pulled_total == 1_000_000 == await s.ledger_total(record)
        assert after.reserved_total == 0
        assert await s.honest_pull(record) == 500_000
        after = await s.settled(record)
        assert s.paid == after.usage.pulled_total == 1_500_000
    await assert_ledger_sound(db)


async def test_closing_the_connection_with_a_prepare_in_flight_then_fulfilling_is_debited(
    db: Database,
) -> None:
    async with served(db) as s:
        record = await s.pointer(1_000_000)
        async with await s.payee(record) as payee:
            await payee.open_stream(receive_max=1_000_000)
            [held] = await payee.money_worth(1_000_000)
            await payee.close_connection()
            await asyncio.sleep(1.5)
            await payee.fulfill(held)
            after = await s.settled(record)
        assert s.paid == after.usage.pulled_total == 1_000_000
        assert await s.honest_pull(record) == 0
        assert (await s.settled(record)).usage.pulled_total == 1_000_000
    await assert_ledger_sound(db)


async def test_the_pull_settles_only_once_the_last_prepare_in_flight_has_expired(db: Database) -> None:
    """Four Prepares in flight when the payee closes the stream: one fulfilled at once, one rejected, one
    fulfilled late, one never answered. The grants stay open until that one has expired."""
    async with served(db, packet_timeout=timedelta(seconds=2), max_packet_amount=250_000) as s:
        record = await s.pointer(1_000_000)
        async with await s.payee(record) as payee:
            await payee.open_stream(receive_max=1_000_000)
            first, second, third, fourth = await payee.money_worth(1_000_000)
            await payee.fulfill(first)
            await payee.close_stream()
            await payee.reject(second)
            await payee.fulfill(third)
            await s.node.counter.paid_at_least(500_000)
            assert datetime.now(UTC) < fourth.prepare.expires_at
            assert await reservations.open_reservations(s.db, record.id)  # `fourth` is still in flight
            after = await s.settled(record)
            assert datetime.now(UTC) >= fourth.prepare.expires_at
        assert s.paid == after.usage.pulled_total == 500_000
        assert await s.honest_pull(record) == 500_000
        assert s.paid == (await s.settled(record)).usage.pulled_total == 1_000_000
    await assert_ledger_sound(db)


async def test_reservations_held_past_their_lease_by_prepares_in_flight_are_not_recovered(
    db: Database,
) -> None:
    """The payee holds the Prepares longer than the reservation lease (but not past their expiry): the pull
    keeps its grant, so recovery does not debit it in full; only what was fulfilled is debited."""
    lease = timedelta(seconds=2)
    async with served(
        db, packet_timeout=timedelta(seconds=5), max_packet_amount=250_000, reservation_lease=lease
    ) as s:
        record = await s.pointer(1_000_000)
        async with await s.payee(record) as payee:
            await payee.open_stream(receive_max=1_000_000)
            held = await payee.money_worth(1_000_000)
            await payee.close_stream()
            await asyncio.sleep(1.25 * lease.total_seconds())  # the scenario: hold past the lease
            assert await reservations.recover_expired(s.db, now=datetime.now(UTC)) == []
            await payee.fulfill(held[0])
            for incoming in held[1:]:
                await payee.reject(incoming)
            after = await s.settled(record)
        assert s.paid == after.usage.pulled_total == 250_000
    await assert_ledger_sound(db)


async def test_a_fulfill_after_the_prepare_expired_is_refused_not_paid_and_not_debited(db: Database) -> None:
    async with served(db, packet_timeout=timedelta(seconds=1)) as s:
        record = await s.pointer(1_000_000)
        async with await s.payee(record) as payee:
            await payee.open_stream(receive_max=1_000_000)
            [held] = await payee.money_worth(1_000_000)
            late = held.prepare.expires_at - datetime.now(UTC) + timedelta(milliseconds=200)
            await asyncio.sleep(late.total_seconds())  # the scenario: answer only once it has expired
            await payee.fulfill(held)
            after = await s.settled(record)
        assert s.paid == 0
        assert after.usage.pulled_total == 0 == await s.ledger_total(record)
        assert await s.honest_pull(record) == 1_000_000
        assert s.paid == (await s.settled(record)).usage.pulled_total == 1_000_000
    await assert_ledger_sound(db)


async def test_a_fulfill_with_the_wrong_fulfillment_is_refused_not_paid_and_not_debited(db: Database) -> None:
    async with served(db) as s:
        record = await s.pointer(1_000_000)
        async with await s.payee(record) as payee:
            await payee.open_stream(receive_max=1_000_000)
            [held] = await payee.money_worth(1_000_000)
            await payee.fulfill_wrongly(held)
            after = await s.settled(record)
        assert s.paid == 0 == after.usage.pulled_total
    await assert_ledger_sound(db)


async def test_dropping_the_btp_link_with_a_prepare_in_flight_pays_and_debits_nothing(db: Database) -> None:
    async with served(db) as s:
        record = await s.pointer(1_000_000)
        payee = await s.payee(record)
        await payee.open_stream(receive_max=1_000_000)
        await payee.money_worth(1_000_000)
        await payee.drop_link()  # T01 for the Prepare; the retry finds nobody (F02) and the pull ends
        after = await s.settled(record)
        assert s.paid == 0 == after.usage.pulled_total
        assert await s.honest_pull(record) == 1_000_000
        assert s.paid == (await s.settled(record)).usage.pulled_total == 1_000_000
    await assert_ledger_sound(db)


async def test_a_fulfill_for_a_prepare_of_a_dropped_btp_link_is_not_paid(db: Database) -> None:
    """Reconnected on the same query, the payee answers the old request as well as the retry: only the
    retry is paid (and debited)."""
    async with served(db) as s:
        record = await s.pointer(1_000_000)
        payee = await s.payee(record)
        await payee.open_stream(receive_max=1_000_000)
        [old] = await payee.money_worth(1_000_000)
        await payee.drop_link()
        await payee.connect()  # the same BTP account, on the same query
        async with payee:
            await payee.fulfill(old)
            [retry] = await payee.money_worth(1_000_000)
            await payee.fulfill(retry)
            assert await payee.receive_until_closed() == 0
            after = await s.settled(record)
        assert s.paid == after.usage.pulled_total == 1_000_000
    await assert_ledger_sound(db)


async def test_fulfilling_and_then_dropping_the_btp_link_is_debited(db: Database) -> None:
    async with served(db, max_packet_amount=400_000) as s:
        record = await s.pointer(1_000_000)
        payee = await s.payee(record)
        await payee.open_stream(receive_max=1_000_000)
        first, *_ = await payee.money_worth(1_000_000)
        await payee.fulfill(first)
        await payee.drop_link()
        after = await s.settled(record)
        assert s.paid == after.usage.pulled_total == first.prepare.amount
    await assert_ledger_sound(db)


async def test_shutdown_waits_for_prepares_in_flight_and_debits_their_fulfills(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server stops while the payee holds a Prepare and answers it during the shutdown; the runner waits
    for it (up to its expiry) rather than abandoning it."""
    monkeypatch.setattr(stream_server_module, "STOP_CLOSE_WAIT", 0.1)  # straight to stopping the runners
    async with served(db) as s:
        record = await s.pointer(1_000_000)
        async with await s.payee(record) as payee:
            await payee.open_stream(receive_max=1_000_000)
            [held] = await payee.money_worth(1_000_000)
            stopping = asyncio.create_task(s.server.stop())
            await asyncio.sleep(1)
            assert not stopping.done()
            await payee.fulfill(held)
            await stopping
            after = await s.settled(record)
        assert s.paid == after.usage.pulled_total == 1_000_000
    await assert_ledger_sound(db)
