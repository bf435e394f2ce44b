"""An attacker's read of the pull path: payees (and a second instance) trying to get value that is not
debited, or more than the pointer allows. Each scenario runs the real server in-process over loopback
(embedded BTP endpoint, STREAM server, SQLite or PostgreSQL ledger) against `HostilePayee`, and ends with
the ledger audit. What the payee was paid is what the server's link handed back as Fulfills."""

from __future__ import annotations

import asyncio
import functools
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spsp_pull.ilp.pull_budget import GrantShare, PullBudget
from spsp_pull.ilp.pull_session import PullSettings
from spsp_pull.rates import Conversion
from spsp_pull.store import reservations
from spsp_pull.store.database import Database
from stream.frames import (
    ConnectionAssetDetails,
    ConnectionNewAddress,
    StreamMaxMoney,
)
from stream.oer import U64_MAX
from tests.ilp import test_in_flight_settlement as in_flight
from tests.ilp.hostile.payee import PAYEE_STREAM, HostilePayee, IncomingPrepare
from tests.ilp.test_in_flight_settlement import assert_ledger_sound, served

HOLDABLE = timedelta(seconds=30)  # Prepares a payee holds for a few seconds outlive the hold


async def _no_money_prepare(payee: HostilePayee, within: float) -> list[IncomingPrepare]:
    """The server's money Prepares over `within` seconds (control-only ones the payee answers itself)."""
    money: list[IncomingPrepare] = []
    loop = asyncio.get_running_loop()
    until = loop.time() + within
    while (left := until - loop.time()) > 0:
        try:
            money.append(await payee.next_money(timedelta(seconds=left)))
        except TimeoutError:
            break
    return money


async def test_a_rate_probe_carries_no_value_a_payee_can_take(db: Database) -> None:
    """The payee names another asset, so the server probes the rate before sending. Probes carry amounts (here
    more than the pointer holds) but an unfulfillable condition: a payee fulfilling every Prepare it gets,
    probes included, is paid nothing that is not debited."""
    async with served(db) as s:
        record = await s.pointer(1_000_000)
        async with await s.payee(record) as payee:
            await payee.send_frames(
                ConnectionNewAddress(payee.address),
                ConnectionAssetDetails("USD", 2),
                StreamMaxMoney(PAYEE_STREAM, 1_000_000, 0),
            )
            offered = 0
            for _ in range(50):  # fulfil whatever comes, probes included, until the server goes quiet
                try:
                    incoming = await payee.next_money(timedelta(seconds=3))
                except TimeoutError:
                    break
                offered += incoming.prepare.amount
                await payee.fulfill(incoming)
            assert offered > 1_000_000  # the probes offered more than the pointer holds
            after = await s.settled(record)
        assert s.paid == after.usage.pulled_total == await s.ledger_total(record) <= 1_000_000
    await assert_ledger_sound(db)


async def test_a_payee_cannot_reopen_its_closed_stream_or_pull_on_a_second_one(db: Database) -> None:
    """After the payee closes its stream, raising that stream's receiveMax, or opening a new stream on the
    same connection, brings no more money: only the pulled stream sends, once."""
    async with served(db, max_packet_amount=100_000, packet_timeout=HOLDABLE) as s:
        record = await s.pointer(1_000_000)
        async with await s.payee(record) as payee:
            await payee.open_stream(receive_max=300_000)
            held = await payee.money_worth(300_000)
            await payee.fulfill(held[0])
            await payee.close_stream()
            for incoming in held[1:]:
                await payee.fulfill(incoming)
            await payee.send_frames(StreamMaxMoney(PAYEE_STREAM, 1_000_000, 300_000))
            await payee.send_frames(StreamMaxMoney(PAYEE_STREAM + 2, 1_000_000, 0))
            assert await _no_money_prepare(payee, 2) == []
            after = await s.settled(record)
        assert s.paid == after.usage.pulled_total == 300_000
        assert await s.honest_pull(record) == 700_000
        assert s.paid == (await s.settled(record)).usage.pulled_total == 1_000_000
    await assert_ledger_sound(db)


async def test_a_second_instance_sending_after_the_sender_lease_lapsed_mid_drain_stays_covered(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Instance A's payee closes its stream holding four Prepares; A drains (it renews no sender lease then),
    so after the lease another instance B sends on the pointer while A's Prepares are still out. Each pull
    sends only what its own reservations cover: A's late Fulfills and B's together are the allowance, all
    debited."""
    short_lease = functools.partial(PullSettings, sender_lease=timedelta(seconds=1))
    monkeypatch.setattr(in_flight, "PullSettings", short_lease)
    async with served(db, max_packet_amount=250_000, packet_timeout=HOLDABLE) as a, served(db) as b:
        record = await a.pointer(1_500_000)
        async with await a.payee(record) as payee:
            await payee.open_stream(receive_max=1_000_000)
            held = await payee.money_worth(1_000_000)
            await payee.close_stream()
            await asyncio.sleep(1.5)  # the scenario: A's sender lease runs out while it drains
            assert await b.honest_pull(record, "other") == 500_000
            for incoming in held:
                await payee.fulfill(incoming)
            after = await a.settled(record)
        assert a.paid + b.paid == after.usage.pulled_total == 1_500_000 == await a.ledger_total(record)
    await assert_ledger_sound(db)


async def test_recovery_by_an_instance_whose_clock_runs_ahead_debits_a_live_pull_in_full(
    db: Database,
) -> None:
    """Another instance, its clock an hour ahead, recovers a live pull's reservation while its Prepares are in
    flight. Recovery debits it in full, the pull's late Fulfills find it closed: nothing is paid undebited,
    and the pull sends nothing more on the recovered grant."""
    async with served(db, max_packet_amount=250_000, packet_timeout=HOLDABLE) as s:
        record = await s.pointer(1_000_000)
        async with await s.payee(record) as payee:
            await payee.open_stream(receive_max=1_000_000)
            held = await payee.money_worth(500_000)
            recovered = await reservations.recover_expired(db, now=datetime.now(UTC) + timedelta(hours=1))
            assert recovered
            for incoming in held:
                await payee.fulfill(incoming)
            while (more := await _no_money_prepare(payee, 1.5)) != []:
                for incoming in more:
                    await payee.fulfill(incoming)
            after = await s.settled(record)
        assert s.paid <= after.usage.pulled_total == await s.ledger_total(record) <= 1_000_000
    await assert_ledger_sound(db)


async def test_a_pointer_in_a_coarser_asset_larger_than_a_u64_of_server_units_is_pulled(db: Database) -> None:
    """20,000,000,000 XRP at scale 0 is 2 * 10^19 server units (scale 9): more than a u64. A payee asking
    for everything on one stream gets a u64 of server units at most, debited rounded up; the pull does not
    fail on a sendMax beyond u64."""
    async with served(db) as s:
        record = await s.pointer(20_000_000_000, scale=0)
        async with await s.payee(record) as payee:
            await payee.open_stream(receive_max=U64_MAX)
            received = 0
            for incoming in await payee.money_worth(1):
                await payee.fulfill(incoming)
                received += incoming.prepare.amount
            while (more := await _no_money_prepare(payee, 1.5)) != []:
                for incoming in more:
                    await payee.fulfill(incoming)
                    received += incoming.prepare.amount
            await payee.close_stream()
            after = await s.settled(record)
        assert received == s.paid == U64_MAX
        assert after.usage.pulled_total == -(-U64_MAX // 10**9) == await s.ledger_total(record)
    await assert_ledger_sound(db)


async def test_a_wrong_fulfillment_that_fails_the_connection_leaves_the_other_fulfills_debited(
    db: Database,
) -> None:
    """The payee answers the first of four Prepares with a fulfillment that does not match (the link turns it
    into F05, which fails the server's connection), then fulfils the other three: the failing connection
    still hears of them, and they are debited."""
    async with served(db, max_packet_amount=250_000, packet_timeout=HOLDABLE) as s:
        record = await s.pointer(1_000_000)
        async with await s.payee(record) as payee:
            await payee.open_stream(receive_max=1_000_000)
            first, *others = await payee.money_worth(1_000_000)
            await payee.fulfill_wrongly(first)
            await asyncio.sleep(0.5)  # the scenario: the connection has failed before the others are answered
            for incoming in others:
                await payee.fulfill(incoming)
            after = await s.settled(record)
        assert s.paid == after.usage.pulled_total == 750_000 == await s.ledger_total(record)
    await assert_ledger_sound(db)


RATIOS = st.sampled_from(
    [Fraction(1), Fraction(5, 2), Fraction(2, 5), Fraction(10**9), Fraction(1, 10**9), Fraction(7, 3)]
)
STEPS = st.lists(
    st.tuples(st.sampled_from(["reserve", "deliver", "used_up", "rechunk"]), st.integers(0, 10**12))
)


@given(ratio=RATIOS, allowance=st.integers(1, 10**15), steps=STEPS)
def test_rechunked_pulls_debit_exactly_the_cumulative_delivery_rounded_up(
    ratio: Fraction, allowance: int, steps: list[tuple[str, int]]
) -> None:
    """Any interleaving of reservations (possibly cut short by the allowance), deliveries up to the stream's
    sendMax, settlements of used-up grants and re-chunks: nothing delivered beyond what the grants cover, each
    grant settled once within itself, and what all settlements debit is the cumulative delivery converted
    back and rounded up once — never per packet or per chunk."""
    budget = PullBudget(Conversion(ratio))
    granted, next_id = 0, 0
    settled: list[GrantShare] = []
    for action, n in steps:
        if action == "reserve" and n:
            amount = min(budget.pointer_units_for(n), allowance - granted)
            if amount >= 1:
                budget.add_grant(next_id, amount)
                granted, next_id = granted + amount, next_id + 1
        elif action == "deliver":
            budget.record_fulfilled(min(n, min(budget.send_limit, U64_MAX) - budget.fulfilled))
        elif action == "used_up":
            settled += budget.used_up(keep=1)
        elif action == "rechunk":
            settled += budget.close_all()
            granted = budget.covered  # what was given back can be reserved again
        assert budget.fulfilled <= budget.send_limit
    settled += budget.close_all()
    assert sorted(share.reservation_id for share in settled) == list(range(next_id))
    assert all(0 <= share.sent <= share.amount for share in settled)
    debited = sum(share.sent for share in settled)
    assert debited == -(-budget.fulfilled // ratio) == budget.covered <= allowance
    assert budget.uncovered == 0
