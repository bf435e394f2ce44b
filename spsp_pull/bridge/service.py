"""The running bridge: its backends, the chain they are on, the payout operations the API calls, and
the background workers (on-chain batcher, Lightning dispatcher, reconciler, offer expiry).

`start_bridge` learns the network from the backends (both must agree), reconciles what a previous run
left open, and starts the workers; until the network is known the payout API answers 503. Every
worker step is serialised per rail inside one process; across processes the database decides (row locks
and state-conditional transitions), and money still leaves at most once (stored transactions are
re-broadcast, never rebuilt; LND pays a payment hash once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal

import aiohttp

from spsp_pull.bridge.amounts import Msats, Rail
from spsp_pull.bridge.backends.bitcoind import Bitcoind
from spsp_pull.bridge.backends.errors import BackendError
from spsp_pull.bridge.backends.lightning import LightningNode
from spsp_pull.bridge.backends.lnd import Lnd
from spsp_pull.bridge.backends.onchain import OnchainWallet
from spsp_pull.bridge.batcher import Batcher
from spsp_pull.bridge.destinations import LightningDestination, parse_destination
from spsp_pull.bridge.inputs import OfferRequest
from spsp_pull.bridge.ledger import PayoutConflict, PayoutLedger, refuse_if_paused
from spsp_pull.bridge.lightning_dispatch import LightningDispatcher
from spsp_pull.bridge.limits import payout_limits
from spsp_pull.bridge.lnurl import (
    LnurlError,
    issue_k1,
    link_payout,
    redeem_k1,
    withdraw_bounds,
    withdraw_request,
)
from spsp_pull.bridge.network import Network
from spsp_pull.bridge.offers import OfferTerms, make_offer, rate_for
from spsp_pull.bridge.reconciler import Reconciler
from spsp_pull.bridge.settings import BridgeSettings
from spsp_pull.domain.agreement import balance
from spsp_pull.domain.clock import Clock
from spsp_pull.domain.errors import InputError
from spsp_pull.store.database import Database
from spsp_pull.store.payouts import PayoutRecord
from spsp_pull.store.records import PointerRecord

log = logging.getLogger(__name__)
LIGHTNING_POLL = timedelta(seconds=5)
STOP_GRACE = timedelta(seconds=30)


class BridgeNotReady(RuntimeError):
    """The backends have not told their network yet."""


class NetworkMismatch(ValueError):
    """The configured backends are on different chains: a configuration error."""


class Bridge:
    def __init__(
        self,
        settings: BridgeSettings,
        db: Database,
        clock: Clock,
        *,
        session: aiohttp.ClientSession | None = None,
        wallet: OnchainWallet | None = None,
        node: LightningNode | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.wallet = wallet
        self.node = node
        self.ledger = PayoutLedger(db)
        self.network: Network | None = None
        self.batcher: Batcher | None = None
        self.dispatcher: LightningDispatcher | None = None
        self.reconciler: Reconciler | None = None
        self._session = session
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._lightning_due = asyncio.Event()
        self._onchain_lock = asyncio.Lock()
        self._lightning_lock = asyncio.Lock()

    # -- state -------------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.network is not None

    @property
    def rails(self) -> frozenset[Rail]:
        rails = set()
        if self.wallet is not None:
            rails.add(Rail.ONCHAIN)
        if self.node is not None:
            rails.add(Rail.LIGHTNING)
        return frozenset(rails)

    def terms(self) -> OfferTerms:
        if self.network is None:
            raise BridgeNotReady("the payout backends have not answered yet")
        return OfferTerms(
            network=self.network,
            fees={Rail.ONCHAIN: self.settings.onchain_fees, Rail.LIGHTNING: self.settings.lightning_fees},
            invoice_policy=self.settings.invoice_policy,
            ttl=self.settings.offer_ttl,
            rails=self.rails,
        )

    async def learn_network(self) -> bool:
        """Ask the backends which chain they are on; True once known (both must agree)."""
        if self.network is not None:
            return True
        found: set[Network] = set()
        try:
            if self.wallet is not None:
                found.add(await self.wallet.network())
            if self.node is not None:
                found.add(await self.node.network())
        except BackendError as exc:
            log.warning("payout bridge: a backend did not tell its network yet: %s", exc)
            return False
        if len(found) != 1:
            raise NetworkMismatch(f"the payout backends are on different networks: {sorted(found)}")
        network = found.pop()
        ledger, settings = self.ledger, self.settings
        if self.wallet is not None:
            self.batcher = Batcher(self.db, self.clock, ledger, self.wallet, settings)
        if self.node is not None:
            self.dispatcher = LightningDispatcher(self.db, self.clock, ledger, self.node, settings, network)
        self.reconciler = Reconciler(
            self.db, self.clock, ledger, settings, batcher=self.batcher, dispatcher=self.dispatcher
        )
        self.network = network
        log.info("payout bridge ready on %s (%s)", network, ", ".join(sorted(self.rails)))
        return True

    # -- payouts -----------------------------------------------------------------------------------

    async def create(self, pointer: PointerRecord, request: OfferRequest, *, created_by: str) -> PayoutRecord:
        """An offer (NEW); with `autoApprove` also approved (QUEUED) or, if that fails, cancelled."""
        terms = self.terms()
        now = self.clock.now()
        rate = await rate_for(self.settings.rates, pointer.terms.asset_code)
        spec = make_offer(pointer, request, terms=terms, rate=rate, now=now, created_by=created_by)
        self._check_covered(pointer, spec.debit)
        record = await self.ledger.create(spec, now=now)
        if not request.auto_approve:
            return record
        try:
            return await self.approve(record, by=created_by)
        except PayoutConflict:
            await self.ledger.cancel(record.id, by="auto-approve", now=self.clock.now())
            raise

    async def approve(self, payout: PayoutRecord, *, by: str) -> PayoutRecord:
        approved = await self.ledger.approve(payout.id, by=by, now=self.clock.now())
        if approved.rail == Rail.LIGHTNING:
            self._lightning_due.set()
        return approved

    async def cancel(self, payout: PayoutRecord, *, by: str) -> PayoutRecord:
        return await self.ledger.cancel(payout.id, by=by, now=self.clock.now())

    async def limits(self, pointer: PointerRecord, currency: str | None) -> dict[str, object]:
        terms = self.terms()
        rate = await rate_for(self.settings.rates, pointer.terms.asset_code)
        return payout_limits(pointer, terms=terms, rate=rate, now=self.clock.now(), currency=currency)

    def _check_covered(self, pointer: PointerRecord, debit: int) -> None:
        now = self.clock.now()
        refuse_if_paused(pointer.version, now)
        available = balance(pointer.version, pointer.usage, now, pointer.cancelled_at).available
        if debit > available:
            raise PayoutConflict(
                "overdraft", f"The payout costs {debit} but only {available} is available now."
            )

    # -- LNURL-withdraw ----------------------------------------------------------------------------

    async def lnurl_request(self, pointer: PointerRecord, *, callback: str) -> dict[str, object]:
        if self.node is None:
            raise LnurlError("this server pays no Lightning invoices")
        terms = self.terms()
        now = self.clock.now()
        refuse_if_paused(pointer.version, now)
        try:
            rate = await rate_for(self.settings.rates, pointer.terms.asset_code)
        except InputError as exc:
            raise LnurlError(exc.detail) from None
        try:
            outbound: int | None = await self.node.outbound_msat()
        except BackendError:
            outbound = None
        bounds = withdraw_bounds(pointer, terms=terms, rate=rate, now=now, outbound_msat=outbound)
        k1 = await issue_k1(self.db, pointer, rate=rate, bounds=bounds, now=now, terms=terms)
        description = pointer.description or "spsp-pull withdrawal"
        return withdraw_request(callback=callback, k1=k1, bounds=bounds, description=description)

    async def lnurl_callback(self, pointer: PointerRecord, *, k1: object, pr: object) -> PayoutRecord:
        if self.node is None:
            raise LnurlError("this server pays no Lightning invoices")
        terms = self.terms()
        now = self.clock.now()
        if not isinstance(pr, str) or not pr:
            raise LnurlError("pr (a BOLT 11 invoice) is missing")
        link = await redeem_k1(self.db, pointer, k1, now=now)
        try:
            destination = parse_destination(
                pr, terms.network, now=now, rail=Rail.LIGHTNING, policy=terms.invoice_policy
            )
            assert isinstance(destination, LightningDestination)
            amount = destination.amount_msat
            if amount is None:
                raise LnurlError("the invoice must carry an amount")
            if not link.min_msat <= amount <= link.max_msat:
                raise LnurlError(f"the amount must be between {link.min_msat} and {link.max_msat} msat")
            request = OfferRequest(
                destination=pr, amount=Msats(amount), rail=Rail.LIGHTNING, auto_approve=True
            )
            spec = make_offer(
                pointer, request, terms=terms, rate=Decimal(link.rate), now=now, created_by="lnurl"
            )
            record = await self.ledger.create(spec, now=now)
            await link_payout(self.db, link.id, record.id)
            try:
                return await self.approve(record, by="lnurl")
            except PayoutConflict:
                await self.ledger.cancel(record.id, by="lnurl", now=self.clock.now())
                raise
        except InputError as exc:
            raise LnurlError(exc.detail) from None

    # -- workers -----------------------------------------------------------------------------------

    async def run_batch(self) -> int | None:
        """One on-chain window: the batch id paid, or None."""
        if self.batcher is None:
            return None
        async with self._onchain_lock:
            return await self.batcher.run_once()

    async def dispatch_lightning(self) -> int:
        if self.dispatcher is None:
            return 0
        async with self._lightning_lock:
            return await self.dispatcher.run_once()

    async def reconcile(self) -> None:
        if not await self.learn_network():
            return
        assert self.reconciler is not None
        async with self._onchain_lock, self._lightning_lock:
            await self.reconciler.run_once()

    async def expire_offers(self) -> int:
        if self.reconciler is None:
            return 0
        return await self.reconciler.expire_offers()

    def wake(self) -> None:
        """Pay queued Lightning payouts now rather than at the next poll."""
        self._lightning_due.set()

    def start_workers(self) -> None:
        interval = self.settings
        stopping = self._stopping
        self._tasks = [
            asyncio.create_task(_every(interval.batch_interval, self.run_batch, "payout batcher", stopping)),
            asyncio.create_task(
                _every(interval.reconcile_interval, self.reconcile, "payout reconciler", stopping)
            ),
            asyncio.create_task(
                _every(interval.expiry_interval, self.expire_offers, "offer expiry", stopping)
            ),
            asyncio.create_task(self._lightning_worker()),
        ]

    async def _lightning_worker(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lightning_due.wait(), LIGHTNING_POLL.total_seconds())
            self._lightning_due.clear()
            if self._stopping.is_set():
                return
            await _guarded(self.dispatch_lightning, "Lightning dispatcher")

    async def stop(self) -> None:
        """Let every worker finish the step it is in (a dispatch is never cut in half), then stop; a step
        still running after STOP_GRACE is cancelled and left to the reconciler of the next start."""
        self._stopping.set()
        self._lightning_due.set()
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=STOP_GRACE.total_seconds())
            for task in stuck:
                task.cancel()
            for task in stuck:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tasks = []
        if self._session is not None:
            await self._session.close()


async def start_bridge(settings: BridgeSettings, db: Database, clock: Clock) -> Bridge:
    """Connect the configured backends, learn the network, reconcile once, start the workers."""
    session = aiohttp.ClientSession()
    wallet = None if settings.bitcoind is None else Bitcoind(session, settings.bitcoind)
    node = None if settings.lnd is None else Lnd(session, settings.lnd)
    bridge = Bridge(settings, db, clock, session=session, wallet=wallet, node=node)
    try:
        await bridge.learn_network()
    except BaseException:
        await session.close()
        raise
    await _guarded(bridge.reconcile, "payout reconciler (start)")
    if settings.background:
        bridge.start_workers()
    return bridge


async def _guarded(step: Callable[[], Awaitable[object]], name: str) -> None:
    """Run a worker step; a failure is logged and the step simply runs again next time."""
    try:
        await step()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("%s failed; it runs again later", name)


async def _every(
    interval: timedelta, step: Callable[[], Awaitable[object]], name: str, stopping: asyncio.Event
) -> None:
    while not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval.total_seconds())
        if stopping.is_set():
            return
        await _guarded(step, name)
