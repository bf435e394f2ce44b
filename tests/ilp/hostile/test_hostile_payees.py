"""Hostile payees against a real server and database: whatever the payee does, every Fulfill the server
accepted is debited, and nothing beyond the agreement is. Each scenario ends with `Harness.check`: the
ledger audit is clean and, per pointer, paid (Fulfills returned before expiry) <= debited <= authorised.

The server's Prepares live PACKET_TIMEOUT (a few seconds, rather than the default 30 s, so the scenarios that
wait for Prepares to expire stay short); pointers are a few packets of PACKET units."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pytest

from stream import ilp
from stream.frames import StreamMaxMoney, StreamMoney
from stream.oer import U64_MAX
from tests.ilp.hostile.harness import (
    PACKET,
    PACKET_TIMEOUT,
    SERVER_SCALE,
    Harness,
    Ledger,
    Pointer,
    hostile_server,
)
from tests.ilp.hostile.payee import HostilePayee, IncomingPrepare

IN_FLIGHT = 4  # the server's default window of Prepares awaiting replies
HOLD = timedelta(seconds=1.5)  # how long a hostile payee sits on Fulfills it owes
QUIET = timedelta(seconds=3)  # no money for this long: the server has stopped sending
USD = ("USD", 0)
USD_RATES = '{"USD/XRP": "0.0000000025"}'  # 1 USD (scale 0) buys 2.5 server units (XRP, scale 9)
USD_RATE = Fraction(5, 2)


async def hold(span: timedelta = HOLD) -> None:
    """The payee's own delay before it answers (part of the attack, not a wait for the server)."""
    await asyncio.sleep(span.total_seconds())


async def take_rest(payee: HostilePayee) -> None:
    """Fulfil whatever else the server sends until it goes quiet."""
    while True:
        try:
            incoming = await payee.next_money(QUIET)
        except TimeoutError:
            return
        await payee.fulfill(incoming)


async def fulfil_late(payee: HostilePayee, in_flight: list[IncomingPrepare]) -> None:
    """The attack of issue 8: close the stream with `in_flight` unanswered, sit on them, then fulfil them
    (in this order), late but before they expire."""
    await payee.close_stream()
    await hold()
    for incoming in in_flight:
        await payee.fulfill(incoming)


@dataclass(frozen=True, slots=True)
class Scenario:
    """One payee pulling one pointer on a hostile server."""

    harness: Harness
    pointer: Pointer
    payee: HostilePayee

    async def check(self) -> Ledger:
        return await self.harness.check(self.pointer, [self.payee])

    async def end(self) -> Ledger:
        """The payee closes its connection; then the check every scenario ends with."""
        await self.payee.close_connection()
        return await self.check()


@asynccontextmanager
async def one_payee(
    backend: str,
    tmp_path: Path,
    amount: int,
    *,
    receive_max: int | None = None,
    asset: tuple[str, int] = ("XRP", SERVER_SCALE),
    rate: Fraction = Fraction(1),
    **env: str,
) -> AsyncIterator[Scenario]:
    """A server (`env` on top of the harness's settings), a pointer of `amount`, and a payee that has opened
    its stream for `receive_max` (default: `amount`)."""
    async with hostile_server(backend, tmp_path, **env) as harness:
        pointer = await harness.pointer(amount, asset=asset, rate=rate)
        payee = await harness.payee(pointer)
        await payee.open_stream(receive_max=amount if receive_max is None else receive_max)
        yield Scenario(harness, pointer, payee)


async def test_a_well_behaved_payee_is_paid_exactly_what_is_debited(backend: str, tmp_path: Path) -> None:
    async with one_payee(backend, tmp_path, 3 * PACKET) as scenario:
        payee = scenario.payee
        while payee.paid < 3 * PACKET:
            await payee.fulfill(await payee.next_money())
        ledger = await scenario.end()
        assert (payee.paid, ledger.debited) == (3 * PACKET, 3 * PACKET)


async def test_close_the_stream_with_prepares_in_flight_then_fulfil(backend: str, tmp_path: Path) -> None:
    """The attack of issue 8: StreamClose in a packet of its own, then the Fulfills, late but in time."""
    async with one_payee(backend, tmp_path, 10 * PACKET) as scenario:
        payee = scenario.payee
        await fulfil_late(payee, await payee.money(IN_FLIGHT))
        await take_rest(payee)
        ledger = await scenario.end()
        assert payee.paid == IN_FLIGHT * PACKET and ledger.debited == payee.paid


async def test_close_the_connection_with_prepares_in_flight_then_fulfil(backend: str, tmp_path: Path) -> None:
    async with one_payee(backend, tmp_path, 10 * PACKET) as scenario:
        payee = scenario.payee
        in_flight = await payee.money(IN_FLIGHT)
        await payee.close_connection()
        await hold()
        for incoming in in_flight:
            await payee.fulfill(incoming)
        ledger = await scenario.check()
        assert payee.paid == IN_FLIGHT * PACKET and ledger.debited == payee.paid


async def test_fulfil_after_expiry_is_refused_and_not_debited(backend: str, tmp_path: Path) -> None:
    async with one_payee(backend, tmp_path, 10 * PACKET) as scenario:
        payee = scenario.payee
        in_flight = await payee.money(IN_FLIGHT)
        # The server's Prepares live SPSP_PACKET_TIMEOUT, not the default 30 s.
        assert all(i.prepare.expires_at <= datetime.now(UTC) + PACKET_TIMEOUT for i in in_flight)
        await payee.close_stream()
        last_expiry = max(incoming.prepare.expires_at for incoming in in_flight)
        while not in_flight[-1].expired(margin=-timedelta(milliseconds=500)):
            await hold(timedelta(milliseconds=200))
        assert all(incoming.prepare.expires_at <= last_expiry for incoming in in_flight)
        for incoming in in_flight:
            await payee.fulfill(incoming)
        ledger = await scenario.end()
        assert (payee.paid, payee.fulfilled_late) == (0, IN_FLIGHT * PACKET)
        assert ledger.debited == 0


async def fulfil_again(payee: HostilePayee, incoming: IncomingPrepare) -> None:
    await payee.fulfill(incoming)


async def reject_after_fulfilling(payee: HostilePayee, incoming: IncomingPrepare) -> None:
    await payee.reject(incoming, ilp.ErrorCode.T00_INTERNAL_ERROR)


@pytest.mark.parametrize("second_answer", [fulfil_again, reject_after_fulfilling])
async def test_answer_each_prepare_twice(
    backend: str,
    tmp_path: Path,
    second_answer: Callable[[HostilePayee, IncomingPrepare], Awaitable[None]],
) -> None:
    """Each Prepare is fulfilled, then answered again (fulfilled twice, or rejected after the Fulfill)."""
    async with one_payee(backend, tmp_path, 5 * PACKET) as scenario:
        payee = scenario.payee
        while payee.paid < 5 * PACKET:
            incoming = await payee.next_money()
            await payee.fulfill(incoming)
            await second_answer(payee, incoming)
        ledger = await scenario.end()
        assert ledger.debited == payee.paid == 5 * PACKET


async def test_never_answer(backend: str, tmp_path: Path) -> None:
    """Prepares nobody answers expire (R00 at the server's link): nothing left, nothing debited."""
    async with one_payee(backend, tmp_path, 10 * PACKET) as scenario:
        payee = scenario.payee
        await payee.money(IN_FLIGHT)
        ledger = await scenario.end()
        assert (payee.paid, ledger.debited) == (0, 0)


async def test_answer_out_of_order(backend: str, tmp_path: Path) -> None:
    async with one_payee(backend, tmp_path, 8 * PACKET) as scenario:
        payee = scenario.payee
        while payee.paid < 8 * PACKET:
            window = await payee.money(min(IN_FLIGHT, (8 * PACKET - payee.paid) // PACKET))
            for incoming in reversed(window):
                await payee.fulfill(incoming)
        ledger = await scenario.end()
        assert ledger.debited == payee.paid == 8 * PACKET


async def test_drop_the_link_mid_flight_and_reconnect(backend: str, tmp_path: Path) -> None:
    """The link drops with Prepares in flight (they fail at the server); on a new link the payee answers
    the old request ids with Fulfills, then takes what the connection still sends."""
    async with one_payee(backend, tmp_path, 6 * PACKET) as scenario:
        payee = scenario.payee
        lost = await payee.money(IN_FLIGHT)
        await payee.drop_link()
        await payee.connect()
        for incoming in lost:
            await payee.link.respond(incoming.request_id, payee.fulfillment(incoming))
        await take_rest(payee)
        ledger = await scenario.end()
        assert ledger.debited == payee.paid


async def test_many_streams_on_one_connection(backend: str, tmp_path: Path) -> None:
    """Streams 1, 3, 5, 7 each ask for the whole pointer: one stream sends (RFC 0036), never more."""
    async with one_payee(backend, tmp_path, 4 * PACKET) as scenario:
        payee = scenario.payee
        await payee.send_frames(*(StreamMaxMoney(stream_id, 4 * PACKET, 0) for stream_id in (3, 5, 7)))
        await take_rest(payee)
        ledger = await scenario.end()
        assert ledger.debited == payee.paid == 4 * PACKET


async def test_send_money_back_on_the_pull_connection(backend: str, tmp_path: Path) -> None:
    """The payee pushes to the server on its pull connection: refused, and the allowance unchanged."""
    async with one_payee(backend, tmp_path, 4 * PACKET) as scenario:
        payee = scenario.payee
        for incoming in await payee.money(2):
            await payee.fulfill(incoming)
        reply = await payee.send_frames(StreamMoney(1, 1), amount=PACKET // 2)
        assert isinstance(reply, ilp.Reject)
        await take_rest(payee)
        ledger = await scenario.end()
        assert ledger.debited == payee.paid == 4 * PACKET


async def test_amounts_at_the_u64_edge(backend: str, tmp_path: Path) -> None:
    """A pointer of 2^64-1, receiveMax 2^64-1, no packet cap: one Prepare can carry all of it."""
    async with one_payee(backend, tmp_path, U64_MAX, SPSP_MAX_PACKET_AMOUNT=str(U64_MAX)) as scenario:
        payee = scenario.payee
        await fulfil_late(payee, [await payee.next_money()])
        await take_rest(payee)
        ledger = await scenario.end()
        assert payee.paid > 0 and ledger.debited == payee.paid


async def test_exchange_rate_rounding_edges(backend: str, tmp_path: Path) -> None:
    """7 USD (scale 0) at 2.5 server units each is 17.5: at most 17 may leave (floor), here in packets of 3.
    17 sent is 6.8 USD: 7 debited (ceil, on the total; per packet it would be 5 x 2 + 1 = 11). The payee
    closes the stream with packets in flight and fulfils them late."""
    usd = {"SPSP_RATES": USD_RATES, "SPSP_MAX_PACKET_AMOUNT": "3"}
    async with one_payee(
        backend, tmp_path, 7, asset=USD, rate=USD_RATE, receive_max=U64_MAX, **usd
    ) as scenario:
        payee = scenario.payee
        for incoming in await payee.money(2):
            await payee.fulfill(incoming)
        in_flight = await payee.money(IN_FLIGHT)  # 3, 3, 3 and the last 2 units
        await fulfil_late(payee, in_flight)
        ledger = await scenario.end()
        assert [incoming.amount for incoming in in_flight] == [3, 3, 3, 2]
        assert (payee.paid, ledger.debited) == (17, 7)


async def test_u64_edge_through_an_exchange_rate(backend: str, tmp_path: Path) -> None:
    """2^64-1 USD at 2.5 server units each is more than a u64 of server units: no Prepare, stream total or
    debit may overflow, and the payee still gets no more than the debit covers."""
    usd = {"SPSP_RATES": USD_RATES, "SPSP_MAX_PACKET_AMOUNT": str(U64_MAX)}
    async with one_payee(
        backend, tmp_path, U64_MAX, asset=USD, rate=USD_RATE, receive_max=U64_MAX, **usd
    ) as scenario:
        payee = scenario.payee
        in_flight = [await payee.next_money()]
        assert in_flight[0].amount <= U64_MAX
        await fulfil_late(payee, in_flight)
        await take_rest(payee)
        ledger = await scenario.end()
        assert payee.paid > 0 and ledger.debited == -(-Fraction(payee.paid) // USD_RATE)


async def test_two_payees_racing_the_same_pointer_with_tricks(backend: str, tmp_path: Path) -> None:
    """Both open a stream at once; each closes it with what it holds in flight, fulfils late, takes what
    else comes, answering out of order, and closes. Together they never get more than the pointer."""
    async with hostile_server(backend, tmp_path) as harness:
        pointer = await harness.pointer(6 * PACKET)
        payees = [await harness.payee(pointer), await harness.payee(pointer)]

        async def trick(payee: HostilePayee) -> None:
            await payee.open_stream(receive_max=6 * PACKET)
            held: list[IncomingPrepare] = []
            try:
                while len(held) < IN_FLIGHT:
                    held.append(await payee.next_money(QUIET))
            except TimeoutError:
                pass  # the other payee holds the sender lease
            await fulfil_late(payee, held[::-1])
            await take_rest(payee)
            await payee.close_connection()

        await asyncio.gather(*(trick(payee) for payee in payees))
        ledger = await harness.check(pointer, payees)
        assert ledger.debited == sum(payee.paid for payee in payees)
