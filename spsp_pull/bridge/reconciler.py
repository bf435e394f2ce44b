"""The reconciler: learns the truth about everything left open, on start and periodically.

- offers past their `expirationTime` become EXPIRED;
- reservations that lag behind their payout (SENT but still open, FAILED but still held) are closed, and
  payout reservations no payout holds (an approval that died half way) are released;
- queued payouts of a pointer the payer has cancelled since are cancelled;
- on-chain: a recorded transaction whose broadcast has no verdict is broadcast again (the same hex), a
  batch left half built is given back to the queue, broadcast batches are followed to CONFIRMED;
- Lightning: an in-flight payment whose dispatcher has given up is tracked by its payment hash.

A timer never turns an unknown outcome into FAILED: only the backend's verdict does.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from spsp_pull.bridge.backends.errors import BackendError
from spsp_pull.bridge.batcher import Batcher
from spsp_pull.bridge.ledger import PayoutLedger, unbatched
from spsp_pull.bridge.lightning_dispatch import LightningDispatcher
from spsp_pull.bridge.settings import BridgeSettings
from spsp_pull.bridge.states import Trigger
from spsp_pull.domain.clock import Clock
from spsp_pull.domain.states import PayoutBatchState, PayoutStatus
from spsp_pull.store import payouts as store
from spsp_pull.store.database import Database

log = logging.getLogger(__name__)


class Reconciler:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        ledger: PayoutLedger,
        settings: BridgeSettings,
        *,
        batcher: Batcher | None,
        dispatcher: LightningDispatcher | None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._ledger = ledger
        self._settings = settings
        self._batcher = batcher
        self._dispatcher = dispatcher

    async def expire_offers(self) -> int:
        now = self._clock.now()
        expired = 0
        for payout_id in await store.payout_ids(self._db, status=PayoutStatus.NEW, expired_before=now):
            if await self._ledger.transition(payout_id, Trigger.EXPIRE, now=now) is not None:
                expired += 1
        return expired

    async def run_once(self) -> None:
        steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("expiry", self.expire_offers),
            ("reservations", self._reservations),
            ("cancelled pointers", self._cancelled_pointers),
        ]
        if self._batcher is not None:
            steps.append(("on-chain", self._onchain))
        if self._dispatcher is not None:
            steps.append(("lightning", self._lightning))
        for name, step in steps:
            try:
                await step()
            except BackendError as exc:
                log.warning("reconciler: %s step could not reach the backend: %s", name, exc)

    async def _reservations(self) -> None:
        now = self._clock.now()
        await self._ledger.close_lagging_reservations(now=now)
        await self._ledger.release_orphans(now=now, created_before=now - self._settings.orphan_grace)

    async def _cancelled_pointers(self) -> None:
        for payout_id in await store.queued_on_cancelled_pointers(self._db):
            await self._ledger.transition(
                payout_id,
                Trigger.CANCEL,
                now=self._clock.now(),
                detail={"reason": "pointer-cancelled"},
                guard=unbatched,
            )

    async def _onchain(self) -> None:
        assert self._batcher is not None
        now = self._clock.now()
        for batch in await store.batches(self._db, states=[PayoutBatchState.BUILDING], claim_over_at=now):
            await self._ledger.abandon_batch(batch.id, now=now, reason="left half built")
        for batch in await store.batches(self._db, states=[PayoutBatchState.SIGNED]):
            await self._batcher.broadcast(batch.id)
        for batch in await store.batches_awaiting_confirmation(self._db):
            await self._batcher.watch(batch)

    async def _lightning(self) -> None:
        assert self._dispatcher is not None
        ids = await store.payout_ids(
            self._db, status=PayoutStatus.IN_FLIGHT, rail="lightning", claim_over_at=self._clock.now()
        )
        for payout_id in ids:
            record = await store.find_payout(self._db, payout_id=payout_id)
            if record is None or record.status != PayoutStatus.IN_FLIGHT:
                continue
            if record.claimed_until is not None and record.claimed_until > self._clock.now():
                continue  # dispatched again meanwhile
            await self._dispatcher.track(record)
