"""Lightning dispatch: one invoice at a time, tracked by its payment hash.

A queued payout is checked (the invoice must still have life left), moved to IN_FLIGHT with a claim
(so no other worker asks about it meanwhile) and paid with a fee limit that is never zero: the fee the
offer charged. The node's verdict decides: SUCCEEDED -> SENT with the preimage, FAILED -> FAILED and the
reservation released, anything else -> still IN_FLIGHT, for the reconciler to `track` once the claim is
over. LND pays a hash at most once, so paying a requeued payout again can never pay twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from spsp_pull.bridge.backends.errors import BackendError
from spsp_pull.bridge.backends.lightning import LightningNode, PaymentProof
from spsp_pull.bridge.backends.lnd import NOT_INITIATED
from spsp_pull.bridge.backends.outcomes import Failed, Outcome, Succeeded, Unknown
from spsp_pull.bridge.invoice import parse_invoice
from spsp_pull.bridge.ledger import PayoutLedger, seen
from spsp_pull.bridge.network import Network
from spsp_pull.bridge.settings import BridgeSettings
from spsp_pull.bridge.states import Trigger, after_not_sent
from spsp_pull.domain.clock import Clock
from spsp_pull.domain.errors import InputError
from spsp_pull.domain.states import PayoutStatus
from spsp_pull.store import models
from spsp_pull.store import payouts as store
from spsp_pull.store.database import Database
from spsp_pull.store.payouts import PayoutRecord

log = logging.getLogger(__name__)
_NO_WAIT = timedelta(0)


class LightningDispatcher:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        ledger: PayoutLedger,
        node: LightningNode,
        settings: BridgeSettings,
        network: Network,
    ) -> None:
        self._db = db
        self._clock = clock
        self._ledger = ledger
        self._node = node
        self._settings = settings
        self._network = network

    async def run_once(self) -> int:
        """Pay every queued Lightning payout, one after the other; how many were attempted."""
        ids = await store.payout_ids(
            self._db, status=PayoutStatus.QUEUED, rail="lightning", claim_over_at=self._clock.now()
        )
        for payout_id in ids:
            await self.pay(payout_id)
        return len(ids)

    async def pay(self, payout_id: int) -> None:
        now = self._clock.now()
        record = await store.find_payout(self._db, payout_id=payout_id)
        if record is None or record.status != PayoutStatus.QUEUED or record.invoice is None:
            return
        try:
            invoice = parse_invoice(
                record.invoice, self._network, now=now, policy=self._settings.invoice_policy
            )
        except InputError as exc:
            await self._ledger.transition(
                payout_id,
                Trigger.FAIL,
                now=now,
                detail={"reason": exc.code},
                changes=_failure(f"{exc.code}: {exc.detail}"),
                guard=seen(record),
            )
            return
        claim_until = now + self._settings.pay_claim

        def claim(row: models.Payout) -> None:
            row.claimed_until = claim_until
            row.attempts += 1

        claimed = await self._ledger.transition(
            payout_id,
            Trigger.DISPATCH,
            now=now,
            kind="dispatched",
            changes=claim,
            detail={"hash": invoice.payment_hash.hex()},
            guard=seen(record),
        )
        if claimed is None:
            return
        amount = None if invoice.amount_msat is not None else record.transfer_msat
        try:
            outcome: Outcome[PaymentProof] = await self._node.pay(
                invoice.text,
                invoice.payment_hash,
                fee_limit_msat=record.fee_msat,
                time_limit=self._settings.pay_time_limit,
                amount_msat=amount,
            )
        except BackendError as exc:
            outcome = Unknown(f"the node could not be asked: {exc}")
        await self.apply(claimed, outcome, first=True)

    async def track(self, record: PayoutRecord) -> None:
        """Ask the node what became of an in-flight payment whose claim is over."""
        if record.payment_hash is None:
            return
        try:
            outcome = await self._node.track(bytes.fromhex(record.payment_hash), wait=_NO_WAIT)
        except BackendError as exc:
            log.warning("payout %s: tracking failed: %s", record.public_id, exc)
            return
        await self.apply(record, outcome, first=False)

    async def apply(self, record: PayoutRecord, outcome: Outcome[PaymentProof], *, first: bool) -> None:
        """Act on the node's verdict about the dispatch `record` shows; a verdict about an attempt that
        is no longer current (the payout moved meanwhile) is dropped, the next reconcile asks again."""
        now = self._clock.now()
        if isinstance(outcome, Succeeded):
            proof = outcome.proof

            def sent(row: models.Payout) -> None:
                row.preimage = proof.preimage.hex()
                row.routing_fee_msat = proof.fee_msat
                row.sent_at = now
                row.claimed_until = None

            detail: dict[str, object] = {
                "preimage": proof.preimage.hex(),
                "routingFeeMsat": str(proof.fee_msat),
            }
            await self._ledger.transition(
                record.id, Trigger.SEND, now=now, kind="sent", changes=sent, detail=detail, guard=seen(record)
            )
        elif isinstance(outcome, Failed) and outcome.reason == NOT_INITIATED:
            # The node never started this payment (it was dispatched but the request never arrived).
            trigger = after_not_sent(record.attempts, self._settings.max_attempts)
            await self._ledger.transition(
                record.id,
                trigger,
                now=now,
                kind="not-initiated",
                detail={"reason": outcome.reason},
                changes=_failure("the node never started the payment") if trigger is Trigger.FAIL else None,
                guard=seen(record),
            )
        elif isinstance(outcome, Failed):
            reason = f"{outcome.reason} {outcome.detail}".strip()
            await self._ledger.transition(
                record.id,
                Trigger.FAIL,
                now=now,
                detail={"reason": outcome.reason},
                changes=_failure(reason),
                guard=seen(record),
            )
        elif first:
            await self._ledger.note(
                record.id, now=now, kind="outcome-unknown", detail={"detail": outcome.detail}
            )


def _failure(reason: str) -> Callable[[models.Payout], None]:
    def change(row: models.Payout) -> None:
        row.failure_reason = reason
        row.claimed_until = None

    return change
