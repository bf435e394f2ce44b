"""Lightning payouts end to end against the fake LND over HTTP: one invoice at a time, tracked by payment
hash, with dropped streams, restarts while in flight and definite failures."""

from __future__ import annotations

from datetime import timedelta

import pytest

from spsp_pull.bridge.amounts import DebitUnits, Msats
from spsp_pull.bridge.backends.outcomes import Failed
from spsp_pull.bridge.ledger import PayoutConflict
from spsp_pull.bridge.network import Network
from spsp_pull.bridge.states import Trigger
from spsp_pull.domain.clock import ManualClock
from spsp_pull.store import payouts as store
from spsp_pull.store.database import Database
from tests.bridge import factories, harness
from tests.bridge.fakes.fake_lnd import FakeLnd, Script

ISSUED = int(factories.NOW.timestamp()) - 60


def invoice(
    lnd: FakeLnd,
    seed: str,
    script: Script | None = None,
    *,
    amount_msat: int | None = 10_000_000,
    expiry: int = 3600,
) -> tuple[str, bytes]:
    preimage = factories.preimage(seed)
    payment_hash = lnd.expect(preimage, script)
    text = factories.invoice(
        Network.REGTEST, timestamp=ISSUED, amount_msat=amount_msat, expiry=expiry, payment_preimage=preimage
    )
    return text, payment_hash


async def test_pay_an_invoice_for_its_own_amount(
    db: Database, bridge_clock: ManualClock, ln_node: FakeLnd
) -> None:
    now = bridge_clock.now()
    pointer = await harness.pointer(db, now)
    text, payment_hash = invoice(ln_node, "own amount")
    async with harness.running(harness.settings(lnd=ln_node), db, bridge_clock) as bridge:
        offer = await harness.offer(bridge, pointer, text, auto_approve=True)
        assert offer.status == "QUEUED" and offer.transfer_msat == 10_000_000
        assert offer.fee_msat == 51_000 and offer.debit == 503
        assert await bridge.dispatch_lightning() == 1
        sent = await harness.payout(db, offer)
        assert sent.status == "SENT" and sent.preimage == factories.preimage("own amount").hex()
        assert sent.routing_fee_msat == 1_000
        request = ln_node.state.send_requests[-1]
        assert int(request["fee_limit_msat"]) == 51_000 and "amt_msat" not in request
        assert ln_node.settled(payment_hash) == 1
        assert await harness.available(db, pointer, now) == 100_000 - 503
        await harness.assert_reservations_closed(db)
        assert await bridge.dispatch_lightning() == 0


async def test_an_amountless_invoice_is_paid_what_the_price_buys(
    db: Database, bridge_clock: ManualClock, ln_node: FakeLnd
) -> None:
    now = bridge_clock.now()
    pointer = await harness.pointer(db, now)
    text, payment_hash = invoice(ln_node, "amountless", amount_msat=None)
    async with harness.running(harness.settings(lnd=ln_node), db, bridge_clock) as bridge:
        offer = await harness.offer(bridge, pointer, text, amount=DebitUnits(1_000), auto_approve=True)
        assert offer.debit <= 1_000
        await bridge.dispatch_lightning()
        assert int(ln_node.state.send_requests[-1]["amt_msat"]) == offer.transfer_msat
        assert ln_node.settled(payment_hash) == 1
        await harness.assert_reservations_closed(db)


async def test_a_definite_failure_releases_the_allowance(
    db: Database, bridge_clock: ManualClock, ln_node: FakeLnd
) -> None:
    now = bridge_clock.now()
    pointer = await harness.pointer(db, now)
    text, _ = invoice(ln_node, "no route", Script(result="fail", failure_reason="FAILURE_REASON_NO_ROUTE"))
    async with harness.running(harness.settings(lnd=ln_node), db, bridge_clock) as bridge:
        offer = await harness.offer(bridge, pointer, text, auto_approve=True)
        await bridge.dispatch_lightning()
        failed = await harness.payout(db, offer)
        assert failed.status == "FAILED" and "NO_ROUTE" in (failed.failure_reason or "")
        assert await harness.available(db, pointer, now) == 100_000
        await harness.assert_reservations_closed(db)
        # The invoice is free again for a new payout (the seeds' "retry a payout later").
        retry = await harness.offer(bridge, pointer, text)
        assert retry.status == "NEW"


async def test_a_dropped_stream_stays_in_flight_until_tracked(
    db: Database, bridge_clock: ManualClock, ln_node: FakeLnd
) -> None:
    now = bridge_clock.now()
    pointer = await harness.pointer(db, now)
    text, payment_hash = invoice(ln_node, "dropped", Script(delivery="drop"))
    async with harness.running(harness.settings(lnd=ln_node), db, bridge_clock) as bridge:
        offer = await harness.offer(bridge, pointer, text, auto_approve=True)
        await bridge.dispatch_lightning()
        assert (await harness.payout(db, offer)).status == "IN_FLIGHT"
        await bridge.reconcile()  # the dispatcher's claim still runs: nobody asks yet
        assert (await harness.payout(db, offer)).status == "IN_FLIGHT"
        assert len(await harness.open_reservations(db)) == 1
        bridge_clock.advance(bridge.settings.pay_claim)
        await bridge.reconcile()
        sent = await harness.payout(db, offer)
        assert sent.status == "SENT" and sent.preimage == factories.preimage("dropped").hex()
        assert ln_node.settled(payment_hash) == 1
        assert len(ln_node.state.send_requests) == 1
        kinds = [e.kind for e in await store.payout_events(db, offer.id)]
        assert "outcome-unknown" in kinds and kinds[-2:] == ["sent", "reservation-settled"]
        await harness.assert_reservations_closed(db)


@pytest.mark.parametrize("verdict", ["settle", "fail"])
async def test_a_restart_while_in_flight_learns_the_outcome(
    db: Database, bridge_clock: ManualClock, ln_node: FakeLnd, verdict: str
) -> None:
    now = bridge_clock.now()
    pointer = await harness.pointer(db, now)
    text, payment_hash = invoice(ln_node, f"restart {verdict}", Script(result="in_flight"))
    config = harness.settings(lnd=ln_node)
    async with harness.running(config, db, bridge_clock) as first:
        offer = await harness.offer(first, pointer, text, auto_approve=True)
        await first.dispatch_lightning()
        assert (await harness.payout(db, offer)).status == "IN_FLIGHT"
    if verdict == "settle":
        ln_node.settle(payment_hash)
    else:
        ln_node.fail(payment_hash, "FAILURE_REASON_TIMEOUT")
    bridge_clock.advance(config.pay_claim)
    async with harness.running(config, db, bridge_clock) as second:
        after = await harness.payout(db, offer)
        assert after.status == ("SENT" if verdict == "settle" else "FAILED")
        await second.dispatch_lightning()
    assert ln_node.settled(payment_hash) == (1 if verdict == "settle" else 0)
    assert len(ln_node.state.send_requests) == 1
    assert await harness.available(db, pointer, now) == (
        100_000 - offer.debit if verdict == "settle" else 100_000
    )
    await harness.assert_reservations_closed(db)


async def test_a_payment_the_node_never_started_is_paid_again(
    db: Database, bridge_clock: ManualClock, ln_node: FakeLnd
) -> None:
    """A crash after IN_FLIGHT was written but before the node was asked: tracking finds nothing, the
    payout goes back to the queue and is paid (once)."""
    now = bridge_clock.now()
    pointer = await harness.pointer(db, now)
    text, payment_hash = invoice(ln_node, "never started")
    async with harness.running(harness.settings(lnd=ln_node), db, bridge_clock) as bridge:
        offer = await harness.offer(bridge, pointer, text, auto_approve=True)
        await bridge.ledger.transition(offer.id, Trigger.DISPATCH, now=now)
        await bridge.reconcile()
        requeued = await harness.payout(db, offer)
        assert requeued.status == "QUEUED"
        await bridge.dispatch_lightning()
        assert (await harness.payout(db, offer)).status == "SENT"
        assert ln_node.settled(payment_hash) == 1
        await harness.assert_reservations_closed(db)


async def test_one_live_payout_per_invoice(db: Database, bridge_clock: ManualClock, ln_node: FakeLnd) -> None:
    now = bridge_clock.now()
    pointer = await harness.pointer(db, now)
    text, _ = invoice(ln_node, "twice")
    async with harness.running(harness.settings(lnd=ln_node), db, bridge_clock) as bridge:
        await harness.offer(bridge, pointer, text)
        with pytest.raises(PayoutConflict) as duplicate:
            await harness.offer(bridge, pointer, text)
        assert duplicate.value.code == "duplicate-destination"


async def test_an_invoice_too_close_to_expiry_fails_before_dispatch(
    db: Database, bridge_clock: ManualClock, ln_node: FakeLnd
) -> None:
    now = bridge_clock.now()
    pointer = await harness.pointer(db, now)
    text, payment_hash = invoice(ln_node, "expiring", expiry=1_200)
    async with harness.running(harness.settings(lnd=ln_node), db, bridge_clock) as bridge:
        offer = await harness.offer(bridge, pointer, text, amount=Msats(10_000_000), auto_approve=True)
        bridge_clock.advance(timedelta(minutes=10))  # 9 minutes of life left: below the margin
        await bridge.dispatch_lightning()
        failed = await harness.payout(db, offer)
        assert failed.status == "FAILED" and "invoice-expiring" in (failed.failure_reason or "")
        assert ln_node.state.send_requests == [] and ln_node.settled(payment_hash) == 0
        await harness.assert_reservations_closed(db)


async def test_a_stale_verdict_never_fails_a_newer_dispatch(
    db: Database, bridge_clock: ManualClock, ln_node: FakeLnd
) -> None:
    """A reconciler that asked about attempt 1 must not fail (and release) attempt 2, which may pay."""
    now = bridge_clock.now()
    pointer = await harness.pointer(db, now)
    text, payment_hash = invoice(ln_node, "stale", Script(result="in_flight"))
    async with harness.running(harness.settings(lnd=ln_node, max_attempts=1), db, bridge_clock) as bridge:
        offer = await harness.offer(bridge, pointer, text, auto_approve=True)
        first = await bridge.ledger.transition(offer.id, Trigger.DISPATCH, now=now)
        assert first is not None
        await bridge.ledger.transition(offer.id, Trigger.REQUEUE, now=now)
        await bridge.dispatch_lightning()  # attempt 2: really in flight now
        assert bridge.dispatcher is not None
        await bridge.dispatcher.apply(first, Failed("not-initiated"), first=False)
        await bridge.dispatcher.apply(first, Failed("FAILURE_REASON_TIMEOUT"), first=False)
        current = await harness.payout(db, offer)
        assert current.status == "IN_FLIGHT" and current.attempts == 1
        assert len(await harness.open_reservations(db)) == 1
        ln_node.settle(payment_hash)
        bridge_clock.advance(bridge.settings.pay_claim)
        await bridge.reconcile()
        assert (await harness.payout(db, offer)).status == "SENT"
        await harness.assert_reservations_closed(db)
