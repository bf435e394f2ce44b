"""On-chain dispatch: one transaction per window for every queued on-chain payout.

`prepare` takes the queued payouts into a batch, has the wallet build and sign one transaction (outputs
summed per script) and stores its txid and hex while moving the payouts to IN_FLIGHT, all before
anything is broadcast. `broadcast` sends the stored hex: accepted -> SENT (debits settled); refused and
provably not broadcast -> back to the queue (or FAILED after the last attempt); no verdict -> the
payouts stay IN_FLIGHT and the reconciler broadcasts the same hex again. A crash between the two steps
therefore re-broadcasts the recorded transaction; it never builds a second one for the same payouts.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

from spsp_pull.bridge.backends.bitcoind import InsufficientFunds
from spsp_pull.bridge.backends.errors import BackendError
from spsp_pull.bridge.backends.onchain import OnchainWallet, Outpoint, SignedTransaction
from spsp_pull.bridge.backends.outcomes import Failed, Succeeded
from spsp_pull.bridge.batching import Output, group_outputs, output_indexes
from spsp_pull.bridge.ledger import PayoutLedger
from spsp_pull.bridge.settings import BridgeSettings
from spsp_pull.domain.clock import Clock
from spsp_pull.domain.states import PayoutBatchState
from spsp_pull.store import payouts as store
from spsp_pull.store.database import Database

log = logging.getLogger(__name__)


class Batcher:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        ledger: PayoutLedger,
        wallet: OnchainWallet,
        settings: BridgeSettings,
    ) -> None:
        self._db = db
        self._clock = clock
        self._ledger = ledger
        self._wallet = wallet
        self._settings = settings

    async def run_once(self) -> int | None:
        """Prepare and broadcast this window's batch; its id, or None when there was nothing to pay."""
        batch_id = await self.prepare()
        if batch_id is not None:
            await self.broadcast(batch_id, first=True)
        return batch_id

    async def prepare(self) -> int | None:
        """Build, sign and record this window's transaction (not broadcast); the batch id or None."""
        now = self._clock.now()
        claimed = await self._ledger.claim_batch(
            now=now, claim_until=now + self._settings.batch_claim, limit=self._settings.max_batch
        )
        if claimed is None:
            return None
        batch_id, payouts = claimed
        outputs = group_outputs(payouts)
        try:
            tx, paid = await self._sign(outputs)
        except (BackendError, ValueError) as exc:
            log.warning("payout batch %d not built: %s", batch_id, exc)
            await self._ledger.abandon_batch(batch_id, now=self._clock.now(), reason=str(exc))
            return None
        left_out = [pid for output in outputs[len(paid) :] for pid in output.payout_ids]
        if left_out:
            await self._ledger.abandon_batch(
                batch_id, now=self._clock.now(), reason="insufficient funds", payout_ids=left_out
            )
        try:
            vouts = output_indexes(tx.hex, paid)
        except ValueError as exc:
            await self._release(tx.inputs)
            await self._ledger.abandon_batch(batch_id, now=self._clock.now(), reason=str(exc))
            return None
        recorded = await self._ledger.record_signed(
            batch_id,
            txid=tx.txid,
            tx_hex=tx.hex,
            fee_sat=tx.fee_sat,
            inputs=[(i.txid, i.vout) for i in tx.inputs],
            vouts=vouts,
            now=self._clock.now(),
        )
        if not recorded:  # abandoned meanwhile by a reconciler: this transaction must never leave
            await self._release(tx.inputs)
            return None
        log.info("payout batch %d signed: %s (%d outputs)", batch_id, tx.txid, len(paid))
        return batch_id

    async def _sign(self, outputs: Sequence[Output]) -> tuple[SignedTransaction, Sequence[Output]]:
        """A signed transaction for the longest prefix of `outputs` the wallet can fund (halving)."""
        count = len(outputs)
        while True:
            chosen = outputs[:count]
            try:
                tx = await self._wallet.create_transaction(
                    [o.pay_to for o in chosen],
                    conf_target=self._settings.conf_target,
                    fallback_fee_rate=self._settings.fallback_fee_rate,
                )
            except InsufficientFunds:
                if count == 1:
                    raise
                count //= 2
                continue
            return tx, chosen

    async def broadcast(self, batch_id: int, *, first: bool = False) -> None:
        """Send the stored transaction (again); safe any number of times."""
        batch = await store.find_batch(self._db, batch_id)
        if batch is None or batch.state != PayoutBatchState.SIGNED or batch.tx_hex is None:
            return
        outcome = await self._wallet.broadcast(batch.tx_hex)
        now = self._clock.now()
        if isinstance(outcome, Succeeded):
            await self._ledger.batch_sent(batch_id, now=now)
            log.info("payout batch %d broadcast: %s", batch_id, batch.txid)
        elif isinstance(outcome, Failed):
            await self._release([Outpoint(txid, vout) for txid, vout in batch.inputs])
            reason = f"{outcome.reason}: {outcome.detail}"
            await self._ledger.batch_rejected(
                batch_id, now=now, reason=reason, max_attempts=self._settings.max_attempts
            )
            log.warning("payout batch %d refused by the node: %s", batch_id, reason)
        elif first:
            for payout_id in await self._payout_ids(batch_id):
                detail: dict[str, object] = {"txid": batch.txid, "detail": outcome.detail}
                await self._ledger.note(payout_id, now=now, kind="broadcast-unknown", detail=detail)
            log.warning("payout batch %d: no verdict on the broadcast (%s)", batch_id, outcome.detail)

    async def watch(self, batch: store.BatchRecord) -> None:
        """Follow a broadcast batch's confirmations."""
        if batch.txid is None:
            return
        status = await self._wallet.transaction_status(batch.txid)
        if status is None:
            log.error("payout batch %d: the wallet does not know its transaction %s", batch.id, batch.txid)
            return
        await self._ledger.batch_confirmations(
            batch.id, status.confirmations, now=self._clock.now(), needed=self._settings.confirmations
        )

    async def _payout_ids(self, batch_id: int) -> list[int]:
        return await store.batch_payout_ids(self._db, batch_id)

    async def _release(self, inputs: Sequence[Outpoint]) -> None:
        with contextlib.suppress(BackendError):
            await self._wallet.release_inputs(inputs)
