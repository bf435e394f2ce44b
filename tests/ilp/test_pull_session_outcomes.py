"""Pulls that run their course, in this process: a scripted payee through the embedded BTP endpoint, the
STREAM server and a real SQLite or PostgreSQL ledger (`tests/ilp/test_in_flight_settlement.py`'s setting,
with the pull's chunking, leases and webhook under the test's control).

What each checks is the outcome: what the payee received, what the ledger debited (each grant's entry), what
the pull announced to the pointer's webhook, and the ledger audit.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from sqlalchemy import select, update

from spsp_pull.domain.agreement import Terms
from spsp_pull.domain.clock import Clock, ManualClock, SystemClock, isoformat_z, parse_timestamp
from spsp_pull.domain.duration import parse_interval
from spsp_pull.domain.pull_refusal import SENDER_BUSY
from spsp_pull.ilp.pull_session import PULL_LIMIT_REACHED, PullSettings
from spsp_pull.ilp.receiver_address import ReceiverAddresses
from spsp_pull.ilp.stream_server import StreamServer, StreamServerSettings
from spsp_pull.metrics import Metrics
from spsp_pull.rates import StaticRates
from spsp_pull.store import models, pointers, reservations
from spsp_pull.store.accounts import ensure_admin
from spsp_pull.store.database import Database
from spsp_pull.store.pointers import NewPointer
from spsp_pull.store.records import PointerRecord
from stream.frames import (
    ConnectionAssetDetails,
    ConnectionClose,
    ConnectionNewAddress,
    StreamClose,
    StreamErrorCode,
    StreamMaxMoney,
    StreamMoney,
)
from stream.ilp import ErrorCode
from tests.ilp.hostile.payee import PAYEE_STREAM, HostilePayee, IncomingPrepare
from tests.ilp.test_in_flight_settlement import PACKET_TIMEOUT, CountedNode, Served, assert_ledger_sound

WEBHOOK = "https://wallet.example/hooks/pulls"
PACKET = 100_000
QUICK = PullSettings(chunk_packets=1, max_chunk_packets=2, lease_wait=timedelta(seconds=5))


def webhook_body(record: PointerRecord, now: datetime) -> dict[str, object]:
    """What the server's own body says of the pointer and when: the pull adds its pullId and pullAmount."""
    return {
        "event": "pull.completed",
        "pointer": record.token,
        "pulledTotal": str(record.usage.pulled_total),
        "at": isoformat_z(now),
    }


@asynccontextmanager
async def serving(
    db: Database, settings: PullSettings = QUICK, clock: Clock | None = None
) -> AsyncIterator[Served]:
    node = CountedNode()
    addresses = ReceiverAddresses(secrets.token_bytes(32))
    server = StreamServer(
        node=node,
        db=db,
        clock=clock or SystemClock(),
        addresses=addresses,
        rates=StaticRates({"XRP/XRP": Decimal(1)}),
        notify=webhook_body,
        metrics=Metrics(),
        settings=StreamServerSettings(pull=settings, packet_timeout=PACKET_TIMEOUT, max_packet_amount=PACKET),
    )
    node.set_handler(server.handle)
    await node.start()
    try:
        yield Served(db, node, server, addresses)
    finally:
        await server.stop()
        await node.stop()


async def pointer_with_webhook(db: Database, amount: int) -> PointerRecord:
    now = datetime.now(UTC)
    admin = await ensure_admin(db, "outcomes-admin-key", now)
    terms = Terms(
        amount=amount,
        asset_code="XRP",
        asset_scale=9,
        interval=parse_interval("P1M"),
        cycles=1,
        cap=False,
        start=now - timedelta(seconds=1),
        expiry=None,
    )
    spec = NewPointer(account_id=admin.id, terms=terms, webhook=WEBHOOK)
    return await pointers.create_pointer(db, spec, now)


async def announcements(db: Database, record: PointerRecord) -> list[dict[str, object]]:
    """The bodies of the pull.completed messages the outbox holds for the pointer, in order."""
    async with db.read() as session:
        rows = (
            await session.scalars(
                select(models.WebhookMessage)
                .where(
                    models.WebhookMessage.pointer_id == record.id,
                    models.WebhookMessage.event == "pull.completed",
                )
                .order_by(models.WebhookMessage.id)
            )
        ).all()
        assert all(row.url == WEBHOOK for row in rows)
        return [json.loads(row.body) for row in rows]


async def ledger(db: Database, record: PointerRecord) -> list[tuple[int | None, int, str]]:
    """The pointer's ledger entries in order: (reservation, amount, kind)."""
    pulls = await pointers.pointer_pulls(db, record.id, limit=10_000)
    return [(p.reservation_id, p.amount, p.kind) for p in reversed(pulls)]


async def reservations_of(db: Database, record: PointerRecord) -> Sequence[models.Reservation]:
    """Every reservation of the pointer, in order."""
    async with db.read() as session:
        return (
            await session.scalars(
                select(models.Reservation)
                .where(models.Reservation.pointer_id == record.id)
                .order_by(models.Reservation.id)
            )
        ).all()


async def stream_grants(db: Database, record: PointerRecord) -> list[tuple[int, int, str]]:
    """Every reservation of the pointer: (amount, settled, state), in order."""
    return [(row.amount, row.settled, row.state) for row in await reservations_of(db, record)]


async def pulls_ended(db: Database, count: int) -> tuple[dict[tuple[str, str], float], float]:
    """Once `count` pulls have ended (each counts itself after it settled): how many ended how (outcome,
    reason), and the packets they were paid for in all."""
    registry = db.metrics.registry
    for _ in range(250):  # 5 s
        if (registry.get_sample_value("spsp_pull_packets_count") or 0) >= count:
            break
        await asyncio.sleep(0.02)
    assert registry.get_sample_value("spsp_pull_packets_count") == count
    outcomes = {
        (sample.labels["outcome"], sample.labels["reason"]): sample.value
        for metric in registry.collect()
        if metric.name == "spsp_pulls"
        for sample in metric.samples
        if sample.name == "spsp_pulls_total" and sample.value
    }
    return outcomes, registry.get_sample_value("spsp_pull_packets_sum") or 0


async def sender_lease_of(db: Database, record: PointerRecord) -> tuple[str | None, datetime | None]:
    """Who holds the pointer's sender lease, and until when."""
    async with db.read() as session:
        pointer = models.Pointer
        query = select(pointer.sender, pointer.sender_until).where(pointer.id == record.id)
        holder, until = (await session.execute(query)).one()
        return holder, until


async def sender(db: Database, record: PointerRecord) -> str | None:
    return (await sender_lease_of(db, record))[0]


async def sender_until(db: Database, record: PointerRecord) -> datetime | None:
    return (await sender_lease_of(db, record))[1]


async def closing_frames(payee: HostilePayee) -> list[object]:
    """The frames of the server's Prepares until one closes the connection or the payee's stream."""
    frames: list[object] = []
    for _ in range(200):
        incoming = await payee.next_prepare()
        if incoming.packet is None:
            continue
        frames.extend(incoming.packet.frames)
        if any(isinstance(f, ConnectionClose) for f in incoming.packet.frames) or incoming.closes_stream(
            PAYEE_STREAM
        ):
            return frames
    raise AssertionError("the server never closed")


async def test_a_whole_pull_over_many_full_chunks_is_debited_and_announced_once(db: Database) -> None:
    """Chunks of 1 then 2 packets: every grant but the last is used up in full, and a full grant does not end
    the pull. The server ends the stream at the allowance; the webhook hears once, with the whole pull."""
    started = datetime.now(UTC)
    async with serving(db) as s:
        record = await pointer_with_webhook(db, 1_000_000)
        async with await s.payee(record) as payee:
            await payee.open_stream(receive_max=5_000_000)
            assert await payee.receive_until_closed() == 1_000_000
            after = await s.settled(record)
        assert s.paid == payee.paid == after.usage.pulled_total == 1_000_000
        grants = await stream_grants(db, record)
        assert [amount for amount, _, _ in grants] == [100_000] + [200_000] * 4 + [100_000]
        assert all(settled == amount and state == "settled" for amount, settled, state in grants)
        entries = await ledger(db, record)
        assert [amount for _, amount, _ in entries] == [amount for amount, _, _ in grants]
        [announced] = await announcements(db, record)
        assert started <= parse_timestamp(announced.pop("at"), "at") <= datetime.now(UTC)
        assert announced == {
            "event": "pull.completed",
            "pointer": record.token,
            "pulledTotal": "1000000",
            "pullId": str(entries[0][0]),
            "pullAmount": "1000000",
        }
        assert await sender(db, record) is None
        # The payee asked for 5,000,000 and never said it had enough: partial.
        assert await pulls_ended(db, 1) == ({("partial", ""): 1}, 10)
    await assert_ledger_sound(db)


async def test_the_stream_ends_with_the_reason_and_sends_within_each_receive_max(db: Database) -> None:
    """The payee raises its receive max twice: the pull sends up to each (its sendMax follows what the
    payee takes), then to the end of the allowance, and closes the stream saying why."""
    async with serving(db) as s:
        record = await pointer_with_webhook(db, 1_000_000)
        async with await s.payee(record) as payee:
            await payee.open_stream(receive_max=250_000)
            first = await payee.money_worth(250_000)
            for incoming in first:
                await payee.fulfill(incoming)
            assert [i.amount for i in first] == [100_000, 100_000, 50_000]
            await s.node.counter.paid_at_least(250_000)
            await payee.send_frames(StreamMaxMoney(PAYEE_STREAM, 600_000, 250_000))
            second = await payee.money_worth(350_000)
            for incoming in second:
                await payee.fulfill(incoming)
            assert sum(i.amount for i in second) == 350_000
            await s.node.counter.paid_at_least(600_000)
            await payee.send_frames(StreamMaxMoney(PAYEE_STREAM, 2**64 - 1, 600_000))
            assert await payee.receive_until_closed() == 400_000
            after = await s.settled(record)
        assert s.paid == after.usage.pulled_total == 1_000_000
        [announced] = await announcements(db, record)
        assert announced["pullAmount"] == "1000000"
    await assert_ledger_sound(db)


async def test_the_close_says_the_limit_was_reached(db: Database) -> None:
    async with serving(db) as s:
        record = await pointer_with_webhook(db, 300_000)
        async with await s.payee(record) as payee:
            await payee.open_stream(receive_max=1_000_000)
            money: list[IncomingPrepare] = []
            for _ in range(10):
                incoming = await payee.next_prepare()
                if incoming.amount:
                    money.append(incoming)
                    await payee.fulfill(incoming)
                elif incoming.closes_stream(PAYEE_STREAM):
                    assert incoming.packet is not None
                    [close] = [f for f in incoming.packet.frames if isinstance(f, StreamClose)]
                    assert close.message == PULL_LIMIT_REACHED
                    break
            else:
                raise AssertionError("the stream was not closed")
            assert sum(i.amount for i in money) == 300_000
            after = await s.settled(record)
        assert after.usage.pulled_total == 300_000 == s.paid
    await assert_ledger_sound(db)


async def test_a_pull_the_payee_ends_early_settles_what_it_took_and_announces_it(db: Database) -> None:
    async with serving(db) as s:
        record = await pointer_with_webhook(db, 1_000_000)
        async with await s.payee(record) as payee:
            await payee.open_stream(receive_max=350_000)
            for incoming in await payee.money_worth(350_000):
                await payee.fulfill(incoming)
            await s.node.counter.paid_at_least(350_000)
            await payee.send_frames(StreamMaxMoney(PAYEE_STREAM, 350_000, 350_000))  # it has what it asked
            await payee.close_connection()
            after = await s.settled(record)
        assert s.paid == after.usage.pulled_total == 350_000
        grants = await stream_grants(db, record)
        assert sum(settled for _, settled, _ in grants) == 350_000
        assert all(state == "settled" for _, _, state in grants)
        [announced] = await announcements(db, record)
        entries = await ledger(db, record)
        assert (announced["pullAmount"], announced["pullId"]) == ("350000", str(entries[0][0]))
        assert announced["pulledTotal"] == "350000"
        assert await pulls_ended(db, 1) == ({("complete", ""): 1}, 4)
    await assert_ledger_sound(db)


async def test_a_pull_on_a_pointer_cancelled_after_the_connection_opened_gets_nothing_and_is_told_why(
    db: Database,
) -> None:
    async with serving(db) as s:
        record = await pointer_with_webhook(db, 1_000_000)
        async with await s.payee(record) as payee:
            await payee.send_frames(
                ConnectionNewAddress(payee.address),
                ConnectionAssetDetails(payee.asset.asset_code, payee.asset.asset_scale),
            )
            await pointers.cancel_pointer(db, record.account_id, record.token, datetime.now(UTC))
            await payee.send_frames(StreamMaxMoney(PAYEE_STREAM, 1_000_000, 0))
            frames = await closing_frames(payee)
            [close] = [f for f in frames if isinstance(f, StreamClose)]
            assert close.message == "cancelled: the payer cancelled this pointer"
            after = await s.settled(record)
        assert s.paid == after.usage.pulled_total == 0
        assert await announcements(db, record) == []
        assert await pulls_ended(db, 1) == ({("refused", "cancelled"): 1}, 0)
    await assert_ledger_sound(db)


async def test_a_second_stream_on_the_connection_gets_nothing_and_its_close_does_not_end_the_pull(
    db: Database,
) -> None:
    """The payee opens a second stream while four Prepares of the first are in flight: the server closes it,
    sends nothing on it, and the pull goes on to the end of the allowance (the second stream's close once
    ended the pull after the chunk it held)."""
    async with serving(db) as s:
        record = await pointer_with_webhook(db, 1_000_000)
        async with await s.payee(record) as payee:
            await payee.open_stream(receive_max=2**64 - 1)
            held = await payee.money(4)
            await payee.send_frames(StreamMaxMoney(3, 1_000_000, 0))
            for incoming in held:
                await payee.fulfill(incoming)
            assert await payee.receive_until_closed() == 600_000
            assert 3 in payee.closed_streams
            money = [f for i in held if i.packet for f in i.packet.frames if isinstance(f, StreamMoney)]
            assert {f.stream_id for f in money} == {PAYEE_STREAM}
            after = await s.settled(record)
        assert s.paid == after.usage.pulled_total == 1_000_000
    await assert_ledger_sound(db)


async def test_a_second_pull_waits_for_the_sender_lease_and_goes_on_once_the_first_ends(db: Database) -> None:
    async with serving(db) as s:
        record = await pointer_with_webhook(db, 1_000_000)
        async with await s.payee(record, "first") as first, await s.payee(record, "second") as second:
            await first.open_stream(receive_max=300_000)
            held = await first.money_worth(300_000)
            await second.open_stream(receive_max=2**64 - 1)
            with_second = asyncio.get_running_loop().create_task(second.receive_until_closed())
            await asyncio.sleep(0.3)  # the second pull waits for the lease meanwhile
            assert not with_second.done() and second.paid == 0
            for incoming in held:
                await first.fulfill(incoming)
            await first.close_connection()
            async with asyncio.timeout(10):
                assert await with_second == 700_000
            after = await s.settled(record)
        assert s.paid == after.usage.pulled_total == 1_000_000
        assert [a["pullAmount"] for a in await announcements(db, record)] == ["300000", "700000"]
    await assert_ledger_sound(db)


async def test_a_second_pull_gives_up_after_its_lease_wait(db: Database) -> None:
    settings = PullSettings(chunk_packets=1, max_chunk_packets=2, lease_wait=timedelta(milliseconds=300))
    async with serving(db, settings) as s:
        record = await pointer_with_webhook(db, 1_000_000)
        async with await s.payee(record, "first") as first, await s.payee(record, "second") as second:
            await first.open_stream(receive_max=300_000)
            held = await first.money_worth(300_000)
            await second.open_stream(receive_max=2**64 - 1)
            frames = await closing_frames(second)
            [close] = [f for f in frames if isinstance(f, ConnectionClose)]
            assert (close.error_code, close.message) == (
                StreamErrorCode.APPLICATION_ERROR,
                SENDER_BUSY.message,
            )
            assert second.paid == 0
            for incoming in held:
                await first.fulfill(incoming)
            await first.close_connection()
            after = await s.settled(record)
        assert s.paid == after.usage.pulled_total == 300_000
        assert [a["pullAmount"] for a in await announcements(db, record)] == ["300000"]
        assert await pulls_ended(db, 2) == ({("partial", ""): 1, ("refused", "sender-busy"): 1}, 3)
    await assert_ledger_sound(db)


async def take_sender_lease(db: Database, record: PointerRecord) -> None:
    """Another instance holds the pointer's sender lease now (as after the pull's own lapsed)."""
    async with db.write() as session:
        await session.execute(
            update(models.Pointer)
            .where(models.Pointer.id == record.id)
            .values(sender="another-instance", sender_until=datetime.now(UTC) + timedelta(hours=1))
        )


async def test_a_pull_that_lost_its_sender_lease_at_a_reservation_stops_and_settles_what_it_sent(
    db: Database,
) -> None:
    async with serving(db) as s:
        record = await pointer_with_webhook(db, 1_000_000)
        async with await s.payee(record) as payee:
            await payee.open_stream(receive_max=300_000)
            for incoming in await payee.money_worth(300_000):
                await payee.fulfill(incoming)
            await s.node.counter.paid_at_least(300_000)
            await take_sender_lease(db, record)
            await payee.send_frames(StreamMaxMoney(PAYEE_STREAM, 1_000_000, 300_000))
            frames = await closing_frames(payee)
            assert any(isinstance(f, ConnectionClose) and f.message == "internal error" for f in frames)
            after = await s.settled(record)
        assert s.paid == after.usage.pulled_total == 300_000
        assert {state for _, _, state in await stream_grants(db, record)} == {"settled"}
        [announced] = await announcements(db, record)  # once, at the end: not for the grants settled before
        assert announced["pullAmount"] == "300000"
        assert await pulls_ended(db, 1) == ({("failed", ""): 1}, 3)
        assert await sender(db, record) == "another-instance"  # not released by the pull that lost it
    await assert_ledger_sound(db)


async def test_a_pull_that_lost_its_sender_lease_while_the_payee_held_on_sends_no_more(db: Database) -> None:
    """Another instance takes the lease while four Prepares are in flight: at its next renewal (every 200 ms)
    the pull stops sending and fails; the four Fulfills that come later are debited, and nothing follows."""
    settings = PullSettings(chunk_packets=1, max_chunk_packets=2, sender_lease=timedelta(milliseconds=600))
    async with serving(db, settings) as s:
        record = await pointer_with_webhook(db, 1_000_000)
        async with await s.payee(record) as payee:
            await payee.open_stream(receive_max=1_000_000)
            held = await payee.money(4)
            await take_sender_lease(db, record)
            await asyncio.sleep(0.6)  # the scenario: hold on past the pull's next renewal
            for incoming in held:
                await payee.fulfill(incoming)
            frames = await closing_frames(payee)
            assert any(isinstance(f, ConnectionClose) and f.message == "internal error" for f in frames)
            after = await s.settled(record)
        assert s.paid == after.usage.pulled_total == 400_000
    await assert_ledger_sound(db)


async def recover_all_but_the_last(db: Database, record: PointerRecord) -> list[int]:
    """Recovery (run as if their lease had run out) debits the pointer's open grants in full, all but the
    newest, whose lease is kept (the pull may make another meanwhile: recovery takes that one too). The
    grants it recovered."""
    open_ids = sorted(await reservations.open_reservations(db, record.id))
    assert len(open_ids) >= 2
    later = datetime.now(UTC) + timedelta(hours=1)
    await reservations.extend_leases(db, open_ids[-1:], until=later + timedelta(hours=1))
    recovered = sorted(r.reservation_id for r in await reservations.recover_expired(db, now=later))
    assert recovered and open_ids[-1] not in recovered
    return recovered


async def held_on_two_grants(s: Served, payee: HostilePayee) -> None:
    """The payee takes 250,000 (three Prepares on two grants), saying it has all it asked for while they are
    in flight (this payee's Fulfills carry no receipt): the pull then reserves nothing more."""
    await payee.open_stream(receive_max=250_000)
    held = await payee.money_worth(250_000)
    await payee.send_frames(StreamMaxMoney(PAYEE_STREAM, 250_000, 250_000))
    for incoming in held:
        await payee.fulfill(incoming)
    await s.node.counter.paid_at_least(250_000)


async def assert_recovered_and_settled(db: Database, record: PointerRecord, recovered: list[int]) -> int:
    """Recovered grants stay debited in full, the others settled with what was delivered; what the pull
    announced is what it settled (under the id of its first ledger entry). What the ledger debited."""
    rows = await reservations_of(db, record)
    assert [row.id for row in rows if row.state == "recovered"] == recovered
    assert {row.state for row in rows if row.id not in recovered} == {"settled"}
    settled = sum(row.settled for row in rows if row.state == "settled")
    [announced] = await announcements(db, record)
    assert announced["pullAmount"] == str(settled)
    first_settled = min(row.id for row in rows if row.state == "settled" and row.settled)
    assert announced["pullId"] == str(first_settled)
    debited = settled + sum(row.amount for row in rows if row.state == "recovered")
    after = await pointers.find_by_id(db, record.id)
    assert after is not None and after.usage.pulled_total == debited
    assert await sender(db, record) is None
    return debited


async def test_a_grant_recovered_during_the_pull_stays_debited_and_the_others_settle(db: Database) -> None:
    """Grants of the pull are recovered while it runs (debited in full); the payee asks for more. The pull
    finds the recovered grant when it next reserves, settles the others and stops: nothing more is sent
    (the grant left open was used up), and everything it was paid is debited."""
    async with serving(db) as s:
        record = await pointer_with_webhook(db, 1_000_000)
        async with await s.payee(record) as payee:
            await held_on_two_grants(s, payee)
            recovered = await recover_all_but_the_last(db, record)
            await payee.send_frames(StreamMaxMoney(PAYEE_STREAM, 1_000_000, 250_000))
            more = await payee.receive_until_closed()
            await s.settled(record)
        assert more == 0
        assert s.paid == payee.paid == 250_000 <= await assert_recovered_and_settled(db, record, recovered)
    await assert_ledger_sound(db)


async def test_a_grant_recovered_before_the_pull_ends_is_skipped_when_it_settles(db: Database) -> None:
    async with serving(db) as s:
        record = await pointer_with_webhook(db, 1_000_000)
        async with await s.payee(record) as payee:
            await held_on_two_grants(s, payee)
            recovered = await recover_all_but_the_last(db, record)
            await payee.close_connection()
            await s.settled(record)
        assert s.paid == 250_000 <= await assert_recovered_and_settled(db, record, recovered)
    await assert_ledger_sound(db)


async def test_stopping_the_server_returns_once_the_pulls_have_settled(db: Database) -> None:
    async with serving(db) as s:
        record = await pointer_with_webhook(db, 1_000_000)
        async with await s.payee(record) as payee:
            await payee.open_stream(receive_max=200_000)
            held = await payee.money_worth(200_000)
            stopping = asyncio.get_running_loop().create_task(s.server.stop())
            await asyncio.sleep(0.2)
            for incoming in held:
                await payee.fulfill(incoming)
            await stopping
            # No waiting here: stop() itself waited for the pull to settle.
            assert await reservations.open_reservations(db, record.id) == []
            after = await pointers.find_by_id(db, record.id)
            assert after is not None and after.usage.pulled_total == 200_000 == s.paid
    await assert_ledger_sound(db)


async def test_a_pull_that_delivered_nothing_settles_its_grant_and_announces_nothing(db: Database) -> None:
    async with serving(db) as s:
        record = await pointer_with_webhook(db, 1_000_000)
        async with await s.payee(record) as payee:
            await payee.open_stream(receive_max=100_000)
            await payee.reject(await payee.next_money())
            await payee.close_connection()
            after = await s.settled(record)
        assert s.paid == after.usage.pulled_total == 0
        assert await stream_grants(db, record) == [(100_000, 0, "settled")]
        assert await announcements(db, record) == []
        assert await sender(db, record) is None
    await assert_ledger_sound(db)


async def test_a_pull_waiting_for_the_sender_lease_gives_up_when_its_payee_leaves(db: Database) -> None:
    """The second payee leaves while its pull waits for the lease: the pull gives up then, and reserves
    nothing once the first pull has ended and released the lease."""
    async with serving(db) as s:
        record = await pointer_with_webhook(db, 1_000_000)
        async with await s.payee(record, "first") as first, await s.payee(record, "second") as second:
            await first.open_stream(receive_max=300_000)
            held = await first.money_worth(300_000)
            await second.open_stream(receive_max=2**64 - 1)
            await second.close_connection()
            outcomes, _ = await pulls_ended(db, 1)
            assert outcomes == {("refused", "sender-busy"): 1}
            for incoming in held:
                await first.fulfill(incoming)
            await first.close_connection()
            after = await s.settled(record)
        assert s.paid == after.usage.pulled_total == 300_000
        assert [settled for _, settled, _ in await stream_grants(db, record)] == [100_000, 200_000]
        assert await pulls_ended(db, 2) == ({("partial", ""): 1, ("refused", "sender-busy"): 1}, 3)
    await assert_ledger_sound(db)


async def test_a_grant_recovered_before_the_pull_ends_leaves_the_other_debited_with_what_it_delivered(
    db: Database,
) -> None:
    """The payee leaves with the last Prepare in flight and then rejects it: the open grant delivered less
    than it holds, and when the pull settles it on its own (the other grant was recovered), it is debited
    what it delivered, not all it held."""
    async with serving(db) as s:
        record = await pointer_with_webhook(db, 1_000_000)
        async with await s.payee(record) as payee:
            await payee.open_stream(receive_max=250_000)
            held = await payee.money_worth(250_000)
            await payee.send_frames(StreamMaxMoney(PAYEE_STREAM, 250_000, 250_000))  # wants no more
            for incoming in held[:-1]:
                await payee.fulfill(incoming)
            await s.node.counter.paid_at_least(200_000)
            recovered = await recover_all_but_the_last(db, record)
            await payee.close_connection()
            await payee.reject(held[-1], ErrorCode.T04_INSUFFICIENT_LIQUIDITY)
            await s.settled(record)
        grants = await stream_grants(db, record)
        assert grants == [(100_000, 100_000, "recovered"), (150_000, 100_000, "settled")]
        assert s.paid == 200_000 == await assert_recovered_and_settled(db, record, recovered)
    await assert_ledger_sound(db)


RECHUNKED = PullSettings(
    chunk_packets=1,
    max_chunk_packets=2,
    lease_wait=timedelta(seconds=5),
    reservation_lease=timedelta(hours=1),
)


async def test_a_pull_that_finds_a_grant_recovered_when_it_rechunks_sends_no_more(db: Database) -> None:
    """The pull's grants grow old (half their lease) while the payee has all it asked for; one is recovered.
    When the payee asks for more, the pull settles its grants to reserve afresh, finds the recovered one, and
    stops: the payee gets nothing more, and the pull is announced with what it settled."""
    clock = ManualClock(datetime.now(UTC))
    async with serving(db, RECHUNKED, clock) as s:
        record = await pointer_with_webhook(db, 1_000_000)
        async with await s.payee(record) as payee:
            await held_on_two_grants(s, payee)
            recovered = await recover_all_but_the_last(db, record)
            clock.advance(RECHUNKED.reservation_lease * 3 / 5)
            await payee.send_frames(StreamMaxMoney(PAYEE_STREAM, 1_000_000, 250_000))
            assert await payee.receive_until_closed() == 0
            await payee.close_connection()
            await s.settled(record)
        assert s.paid == payee.paid == 250_000
        assert await stream_grants(db, record) == [
            (100_000, 100_000, "recovered"),
            (150_000, 150_000, "settled"),
        ]
        assert await assert_recovered_and_settled(db, record, recovered) == 250_000
    await assert_ledger_sound(db)


async def lease_ends(db: Database, record: PointerRecord) -> list[datetime]:
    return [row.lease_until for row in await reservations_of(db, record)]


async def kept_until(db: Database, record: PointerRecord, payee: HostilePayee, until: datetime) -> None:
    """Once every grant of the pointer is kept until `until` or later (the payee wakes the pull meanwhile)."""
    for _ in range(250):  # the ledger is the only witness: poll it (5 s)
        await payee.send_frames(StreamMaxMoney(PAYEE_STREAM, 250_000, 0))
        if all(end >= until for end in await lease_ends(db, record)):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"grants not kept until {until}: {await lease_ends(db, record)}")


async def test_grants_held_in_flight_are_kept_once_per_half_lease(db: Database) -> None:
    """The payee holds the pull's Prepares while half the grants' lease passes: the pull extends the leases
    of its open grants (recovery would otherwise debit them in full while the payee may yet reject), and
    again once another half lease has passed (one write per half lease, not one per wake-up)."""
    lease = RECHUNKED.reservation_lease
    clock = ManualClock(datetime.now(UTC))
    async with serving(db, RECHUNKED, clock) as s:
        record = await pointer_with_webhook(db, 1_000_000)
        async with await s.payee(record) as payee:
            await payee.open_stream(receive_max=250_000)
            held = await payee.money_worth(250_000)
            assert all(end < clock.now() + lease * 3 / 5 + lease for end in await lease_ends(db, record))
            clock.advance(lease * 3 / 5)
            first = clock.now() + lease
            await kept_until(db, record, payee, first)
            clock.advance(lease * 2 / 5)  # less than half a lease since they were kept
            for _ in range(10):  # the pull polls every 20 ms while Prepares are in flight
                await payee.send_frames(StreamMaxMoney(PAYEE_STREAM, 250_000, 0))
                await asyncio.sleep(0.02)
            assert await lease_ends(db, record) == [first, first]
            clock.advance(lease / 10)  # half a lease since they were kept
            await kept_until(db, record, payee, clock.now() + lease)
            for incoming in held:
                await payee.fulfill(incoming)
            await payee.close_connection()
            after = await s.settled(record)
        assert s.paid == after.usage.pulled_total == 250_000
    await assert_ledger_sound(db)


async def test_a_pull_stopped_by_a_cancel_is_announced_with_all_it_took(db: Database) -> None:
    """The cancel makes the pull settle its grants mid-way and reserve afresh, which finds nothing: the pull
    then has no grant left to announce it with, and is announced on its own, with everything it settled."""
    async with serving(db) as s:
        record = await pointer_with_webhook(db, 100 * PACKET)
        async with await s.payee(record) as payee:
            await payee.open_stream()
            receiving = asyncio.get_running_loop().create_task(payee.receive_until_closed())
            await s.node.counter.paid_at_least(3 * PACKET)
            await pointers.cancel_pointer(db, record.account_id, record.token, datetime.now(UTC))
            async with asyncio.timeout(10):
                await receiving
            after = await s.settled(record)
        assert 3 * PACKET <= s.paid == payee.paid == after.usage.pulled_total < 100 * PACKET
        [announced] = await announcements(db, record)
        assert announced["pullAmount"] == str(after.usage.pulled_total)
        assert await sender(db, record) is None
    await assert_ledger_sound(db)


async def test_stopping_the_server_waits_for_a_pull_that_cannot_settle_yet(db: Database) -> None:
    """The pointer's row is held by another transaction when the server stops: the pull cannot settle until
    it ends, and stopping returns only after the pull has settled (not once its connection is gone)."""
    async with serving(db) as s:
        record = await pointer_with_webhook(db, 1_000_000)
        async with await s.payee(record) as payee:
            await payee.open_stream(receive_max=200_000)
            for incoming in await payee.money_worth(200_000):
                await payee.fulfill(incoming)
            await s.node.counter.paid_at_least(200_000)
            async with db.write() as session:
                assert await pointers.lock_pointer(session, models.Pointer.id == record.id) is not None
                stopping = asyncio.get_running_loop().create_task(s.server.stop())
                done, _ = await asyncio.wait([stopping], timeout=1)
                assert not done, "stop() returned before the pull settled"
                assert await reservations.open_reservations(db, record.id) != []
            await stopping
            assert await reservations.open_reservations(db, record.id) == []
            after = await pointers.find_by_id(db, record.id)
            assert after is not None and after.usage.pulled_total == 200_000 == s.paid
    await assert_ledger_sound(db)


async def test_a_pull_whose_every_grant_was_recovered_announces_nothing_and_frees_the_pointer(
    db: Database,
) -> None:
    """Recovery debited every grant in full while the payee held on: the pull settled nothing of its own, so
    it announces no pull (the ledger's recovered entries stand for it), and it releases the sender lease."""
    async with serving(db) as s:
        record = await pointer_with_webhook(db, 1_000_000)
        async with await s.payee(record) as payee:
            await held_on_two_grants(s, payee)
            later = datetime.now(UTC) + timedelta(hours=1)
            assert len(await reservations.recover_expired(db, now=later)) == 2
            await payee.close_connection()
            await s.settled(record)
            await pulls_ended(db, 1)
        assert [state for _, _, state in await stream_grants(db, record)] == ["recovered", "recovered"]
        assert await announcements(db, record) == []
        assert await sender(db, record) is None
        after = await pointers.find_by_id(db, record.id)
        assert after is not None and after.usage.pulled_total == 250_000 == s.paid
    await assert_ledger_sound(db)


# Timers the pull would otherwise fall back on, far beyond the tests' own time-outs: a pull that needs one
# to make progress hangs.
EVENTS_ONLY = PullSettings(
    chunk_packets=1,
    max_chunk_packets=8,
    lease_wait=timedelta(seconds=5),
    terms_check=timedelta(minutes=10),
    idle_check=timedelta(minutes=10),
)


async def test_a_pull_moves_on_events_alone_to_the_agreements_limit(db: Database) -> None:
    """The agreement allows less than the payee wants: the pull takes it all, chunk after chunk, and ends the
    stream saying so, without waiting for a timer."""
    async with serving(db, EVENTS_ONLY) as s:
        record = await pointer_with_webhook(db, 50 * PACKET)
        async with await s.payee(record) as payee:
            await payee.open_stream()
            assert await payee.receive_until_closed(within=timedelta(seconds=5)) == 50 * PACKET
            after = await s.settled(record)
        assert s.paid == after.usage.pulled_total == 50 * PACKET
    await assert_ledger_sound(db)


async def test_a_payee_that_wants_nothing_starts_no_pull(db: Database) -> None:
    """A stream opened with a receive max of 0 asks for nothing: no pull starts (nothing is reserved, no
    pull is counted), and the pointer is left as it was once the payee leaves."""
    async with serving(db) as s:
        record = await pointer_with_webhook(db, 1_000_000)
        async with await s.payee(record) as payee:
            await payee.open_stream(receive_max=0)
            await payee.close_connection()
            await s.server.stop()
        assert await reservations_of(db, record) == []
        assert db.metrics.registry.get_sample_value("spsp_pull_packets_count") in (None, 0)
        assert await sender(db, record) is None
    await assert_ledger_sound(db)


async def test_a_payee_in_another_asset_gets_what_its_receive_max_allows_at_the_probed_rate(
    db: Database,
) -> None:
    """The payee counts in USD cents and a thousandth of a cent arrives per server unit: the server probes
    the rate, then sends what the payee's receive max allows in its units, and no more; what left is
    debited."""
    async with serving(db) as s:
        record = await pointer_with_webhook(db, 100 * PACKET)
        async with await s.payee(record) as payee:
            payee.rate = Fraction(1, 1_000)
            payee.reports_received = True
            await payee.open_stream(receive_max=2_501, asset=("USD", 2))
            receiving = asyncio.get_running_loop().create_task(payee.receive_until_closed())
            await s.node.counter.paid_at_least(2_501_000)
            await payee.close_connection()
            receiving.cancel()
            after = await s.settled(record)
        assert payee.received == {PAYEE_STREAM: 2_501}  # its receive max, not a cent more
        # Each packet arrives rounded down to whole cents: what that lost was sent again, at most a cent's
        # worth (1,000 units) per packet of up to 100,000.
        assert s.paid == payee.paid == after.usage.pulled_total
        assert 2_501_000 <= s.paid < 2_501_000 + 26 * 1_000
        # It reserved for what the payee still had room for, not for more.
        assert sum(amount for amount, _, _ in await stream_grants(db, record)) < s.paid + 26 * 1_000
    await assert_ledger_sound(db)


SLOW_PAYEE = PullSettings(
    chunk_packets=32,
    max_chunk_packets=32,
    lease_wait=timedelta(seconds=5),
    terms_check=timedelta(milliseconds=100),
    idle_check=timedelta(minutes=10),
)


async def test_a_cancel_reaches_a_pull_whose_payee_takes_fewer_than_64_packets_per_check(
    db: Database,
) -> None:
    """The payee takes a packet every 20 ms: far fewer than TERMS_CHECK_PACKETS pass between two reads of the
    terms, so it is the time since the last read (100 ms by the pull's clock) that makes the pull see a
    cancel, while most of its 32-packet grant is still unsent."""
    clock = ManualClock(datetime.now(UTC))
    async with serving(db, SLOW_PAYEE, clock) as s:
        record = await pointer_with_webhook(db, 1_000 * PACKET)
        async with await s.payee(record) as payee:
            await payee.open_stream()
            before_cancel = 0
            while before_cancel < 4:  # every Prepare, in order (money ones are also queued apart)
                if (incoming := await payee.next_prepare()).amount:
                    await payee.fulfill(incoming)
                    before_cancel += 1
            await pointers.cancel_pointer(db, record.account_id, record.token, clock.now())
            clock.advance(SLOW_PAYEE.terms_check)
            after_cancel = 0
            for _ in range(32):
                incoming = await payee.next_prepare()
                if incoming.closes_stream(PAYEE_STREAM):
                    break
                if incoming.amount:
                    await payee.fulfill(incoming)
                    after_cancel += 1
                    await asyncio.sleep(0.02)  # the slow payee
            await payee.close_connection()
            after = await s.settled(record)
        # What was in flight when the pull read the terms (4 at most), and what it sent before its timer
        # woke it (100 ms of the payee's 20 ms packets: 5, twice that on a busy machine): not the 28 left in
        # the grant, as when only TERMS_CHECK_PACKETS would make it read them.
        assert 0 < after_cancel <= 4 + 10
        assert s.paid == payee.paid == after.usage.pulled_total == (4 + after_cancel) * PACKET
    await assert_ledger_sound(db)


async def test_a_payee_that_asks_for_one_unit_more_gets_it(db: Database) -> None:
    """The payee took the two packets it asked for, then raises its receive max by one unit: the pull
    reserves and sends that one unit too."""
    async with serving(db) as s:
        record = await pointer_with_webhook(db, 1_000_000)
        async with await s.payee(record) as payee:
            payee.reports_received = True
            await payee.open_stream(receive_max=2 * PACKET)
            receiving = asyncio.get_running_loop().create_task(payee.receive_until_closed())
            await s.node.counter.paid_at_least(2 * PACKET)
            await payee.send_frames(StreamMaxMoney(PAYEE_STREAM, 2 * PACKET + 1, 2 * PACKET))
            await s.node.counter.paid_at_least(2 * PACKET + 1)
            await payee.close_connection()
            receiving.cancel()
            after = await s.settled(record)
        assert payee.received == {PAYEE_STREAM: 2 * PACKET + 1}
        assert s.paid == payee.paid == after.usage.pulled_total == 2 * PACKET + 1
    await assert_ledger_sound(db)


async def test_a_pull_idle_between_reservations_renews_its_sender_lease_every_third_of_it(
    db: Database,
) -> None:
    """The payee has what it asked for and takes its time: the pull holds no chunk to reserve, so nothing else
    renews its sender lease; it renews it itself once a third of the lease has passed since the last time
    (not at every wake-up), so no other stream can take the pointer while it is still under way."""
    clock = ManualClock(datetime.now(UTC))
    lease = QUICK.sender_lease
    async with serving(db, QUICK, clock) as s:
        record = await pointer_with_webhook(db, 1_000_000)
        async with await s.payee(record) as payee:
            await payee.open_stream(receive_max=PACKET)
            await payee.fulfill(await payee.next_money())
            await s.node.counter.paid_at_least(PACKET)
            first = await sender_until(db, record)
            assert first == clock.now() + lease
            clock.advance(lease / 4)  # less than a third: not yet
            for _ in range(5):
                await payee.send_frames(StreamMaxMoney(PAYEE_STREAM, PACKET, PACKET))  # wakes the pull
            assert await sender_until(db, record) == first
            clock.advance(lease / 12)  # a third since the last renewal
            renewed = clock.now() + lease
            for _ in range(250):  # the ledger is the only witness: poll it (5 s)
                await payee.send_frames(StreamMaxMoney(PAYEE_STREAM, PACKET, PACKET))
                if await sender_until(db, record) == renewed:
                    break
                await asyncio.sleep(0.02)
            assert await sender_until(db, record) == renewed
            await payee.send_frames(StreamMaxMoney(PAYEE_STREAM, 2 * PACKET, PACKET))  # and the pull goes on
            await payee.fulfill(await payee.next_money())
            await payee.close_connection()
            after = await s.settled(record)
        assert s.paid == after.usage.pulled_total == 2 * PACKET
        assert await sender(db, record) is None
    await assert_ledger_sound(db)


async def test_a_pull_of_one_unit_is_announced(db: Database) -> None:
    async with serving(db) as s:
        record = await pointer_with_webhook(db, 1_000_000)
        async with await s.payee(record) as payee:
            await payee.open_stream(receive_max=1)
            await payee.fulfill(await payee.next_money())
            await payee.close_connection()
            after = await s.settled(record)
        assert s.paid == after.usage.pulled_total == 1
        [announced] = await announcements(db, record)
        assert announced["pullAmount"] == "1"
    await assert_ledger_sound(db)


async def webhook_events(db: Database, record: PointerRecord) -> list[str]:
    async with db.read() as session:
        return list(
            (
                await session.scalars(
                    select(models.WebhookMessage.event)
                    .where(models.WebhookMessage.pointer_id == record.id)
                    .order_by(models.WebhookMessage.id)
                )
            ).all()
        )


async def test_a_pull_that_leaves_the_allowance_low_warns_the_pointers_webhook_once(db: Database) -> None:
    """The first pull takes 70 % of the cycle (no warning), the second brings it to 90 %: the pull's end
    queues `allowance.low` after its announcement, once for the cycle."""
    async with serving(db) as s:
        record = await pointer_with_webhook(db, 10 * PACKET)
        for packets, name in ((7, "first"), (2, "second")):
            async with await s.payee(record, name) as payee:
                await payee.open_stream(receive_max=packets * PACKET)
                for _ in range(packets):
                    await payee.fulfill(await payee.next_money())
                await payee.close_connection()
                await s.settled(record)
            await pulls_ended(db, 1 if name == "first" else 2)
        assert await webhook_events(db, record) == ["pull.completed", "pull.completed", "allowance.low"]
        assert s.paid == 9 * PACKET
    await assert_ledger_sound(db)
