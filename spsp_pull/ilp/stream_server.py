"""Incoming Prepares for the server's address: find (or open) the STREAM connection they belong to.

Addresses and secrets are derived statelessly (`ReceiverAddresses`), so any instance can take a connection
whose SPSP query another instance answered. A connection to a pull pointer's tag becomes a `PullSession`; one
to the push tag receives money and records it.

Places in the connection table are budgeted (`ConnectionBudget`): pull and push connections separately, and
per holder. A pull connection counts against its pointer (only whoever holds the pointer can open connections
to it; a BTP account at the embedded endpoint is anyone's for a new token, so it bounds nothing). A push
connection counts against the embedded endpoint's BTP client account the opening Prepare came from; through an
uplink every Prepare comes from the connector and an ILP Prepare names no sender (the payer's address is only
inside the encrypted STREAM data, and unproven), so there it counts against no account (the push budget alone
bounds them). A refused connection gets T03 (busy: STREAM senders retry); an evicted one is closed with
EndpointBusy once its Prepares in flight are answered.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta

from spsp_pull.domain.clock import Clock
from spsp_pull.domain.pull_refusal import Refusal, no_rate
from spsp_pull.ilp.connection_budget import ConnectionBudget, ConnectionLimits, Kind, Refused
from spsp_pull.ilp.node import IlpNode
from spsp_pull.ilp.pull_session import PullSession, PullSettings
from spsp_pull.ilp.receiver_address import PUSH_TAG, ConnectionId, ReceiverAddresses
from spsp_pull.metrics import Metrics
from spsp_pull.rates import Asset, Conversion, RateSource, RateUnavailable
from spsp_pull.store import pointers, push_payments
from spsp_pull.store.database import Database
from spsp_pull.store.records import PointerRecord
from spsp_pull.store.reservations import WebhookBody
from stream import ilp
from stream.aio.btp_server import CLIENT_ACCOUNT
from stream.aio.connection_runner import ConnectionRunner
from stream.aio.plugin import IlpHandler, IlpLink
from stream.connection import (
    AssetDetails,
    ConnectionClosed,
    ConnectionOptions,
    Event,
    MoneyReceived,
    StreamConnection,
    StreamOpened,
)
from stream.crypto import StreamKeys
from stream.errors import DecodeError, DecryptionError
from stream.frames import ConnectionClose, StreamErrorCode
from stream.oer import U64_MAX
from stream.packet import StreamPacket, decrypt_packet, encrypt_packet

log = logging.getLogger(__name__)
STOP_CLOSE_WAIT = 10.0  # seconds a shutdown lets connections close themselves (telling their peers)
STOP_SETTLE_WAIT = 10.0  # seconds it then waits for the pulls to settle (nothing is in flight any more)


@dataclass(frozen=True, slots=True)
class StreamServerSettings:
    pull: PullSettings = field(default_factory=PullSettings)
    max_in_flight: int = 4
    packet_timeout: timedelta = timedelta(seconds=30)  # how long each Prepare the server sends lives
    max_packet_amount: int | None = None  # a STREAM-side cap on what one Prepare carries
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)


# The table holds at most this many times a kind's budget: the budget's connections, and evicted ones still
# closing (each within the expiry of its Prepares in flight).
TABLE_PER_BUDGET = 2


class StreamServer:
    def __init__(
        self,
        *,
        node: IlpNode,
        db: Database,
        clock: Clock,
        addresses: ReceiverAddresses,
        rates: RateSource,
        notify: WebhookBody,
        metrics: Metrics,
        settings: StreamServerSettings | None = None,
    ) -> None:
        self._node = node
        self._db = db
        self._clock = clock
        self._addresses = addresses
        self._rates = rates
        self._notify = notify
        self._metrics = metrics
        self._settings = settings or StreamServerSettings()
        self._runners: dict[str, ConnectionRunner] = {}
        self._opening: dict[str, asyncio.Future[ConnectionRunner | ilp.Reject]] = {}
        self._budget = ConnectionBudget(self._settings.limits)
        self._table: Counter[Kind] = Counter()
        self._table_changed = asyncio.Condition()
        self._pulls: set[PullSession] = set()
        self._background: set[asyncio.Task[None]] = set()
        metrics.watch_stream_connections("all", self.open_connections)
        for kind in Kind:
            metrics.watch_stream_connections(kind.value, functools.partial(self.budgeted, kind))

    async def handle(self, prepare: ilp.Prepare) -> ilp.Fulfill | ilp.Reject:
        address = self._node.address
        assert address is not None
        connection_id = ReceiverAddresses.parse(address, prepare.destination)
        if connection_id is None:
            return self._unreachable(address)
        runner = self._runners.get(connection_id.segment)
        if runner is None:
            opened = await self._open(connection_id, prepare, address)
            if isinstance(opened, ilp.Reject):
                return opened
            runner = opened
        else:
            self._budget.touch(connection_id.segment, self._clock.now())
        return runner.handle_prepare(prepare)

    async def stop(self) -> None:
        """Close every connection (for a while, politely), then stop the runners: each waits for the Prepares
        still in flight (bounded by their expiry), so every Fulfill reaches its pull, which settles then."""
        runners = list(self._runners.values())
        for runner in runners:
            runner.connection.close()
            runner.kick()
        if runners:
            closing = [asyncio.ensure_future(runner.wait_closed()) for runner in runners]
            await asyncio.wait(closing, timeout=STOP_CLOSE_WAIT)
        await asyncio.gather(*(runner.stop() for runner in runners))
        pending = [asyncio.ensure_future(p.wait()) for p in self._pulls]
        if pending:
            await asyncio.wait(pending, timeout=STOP_SETTLE_WAIT)

    def open_connections(self) -> int:
        """Connections in the table, open or closing."""
        return len(self._runners)

    def budgeted(self, kind: Kind) -> int:
        """Connections of `kind` holding a place in the budget (evicted ones still closing do not)."""
        return self._budget.count(kind)

    async def wait_until_open_at_most(self, count: int) -> None:
        async with self._table_changed:
            await self._table_changed.wait_for(lambda: len(self._runners) <= count)

    def _unreachable(self, address: str) -> ilp.Reject:
        return ilp.Reject(ilp.ErrorCode.F02_UNREACHABLE, address, "", b"")

    async def _open(
        self, connection_id: ConnectionId, prepare: ilp.Prepare, address: str
    ) -> ConnectionRunner | ilp.Reject:
        """Open the connection on its first decryptable Prepare (concurrent first Prepares share one)."""
        opening = self._opening.get(connection_id.segment)
        if opening is not None:
            return await asyncio.shield(opening)
        future: asyncio.Future[ConnectionRunner | ilp.Reject] = asyncio.get_running_loop().create_future()
        self._opening[connection_id.segment] = future
        try:
            runner = await self._create(connection_id, prepare, address)
            future.set_result(runner)
            return runner
        except BaseException as exc:
            future.set_exception(exc)
            raise
        finally:
            del self._opening[connection_id.segment]

    async def _create(
        self, connection_id: ConnectionId, prepare: ilp.Prepare, address: str
    ) -> ConnectionRunner | ilp.Reject:
        keys = StreamKeys(self._addresses.secret_for(connection_id.segment))
        try:
            keys.decrypt(prepare.data)
        except DecryptionError:
            return self._unreachable(address)
        asset = self._node.asset
        assert asset is not None
        pull: tuple[PointerRecord, Conversion] | None = None
        if connection_id.tag != PUSH_TAG:
            terms = await self._pull_terms(connection_id.tag, asset)
            if terms is None:
                return self._unreachable(address)
            if isinstance(terms, Refusal):
                self._metrics.pull_refused(terms.code)
                return self._refuse(keys, address, prepare, terms)
            pull = terms
        options = ConnectionOptions(
            max_in_flight=self._settings.max_in_flight,
            max_packet_amount=self._settings.max_packet_amount,
            packet_timeout=self._settings.packet_timeout,
            idle_timeout=self._settings.limits.idle_timeout,
        )
        connection = StreamConnection(
            keys=keys,
            is_server=True,
            local_address=address,
            now=self._clock.now(),
            asset=AssetDetails(asset.code, asset.scale),
            options=options,
        )
        # From here to the table entry nothing awaits: the place admitted is the place taken.
        segment = connection_id.segment
        kind = Kind.PUSH if pull is None else Kind.PULL
        holder = CLIENT_ACCOUNT.get() if pull is None else f"pointer:{pull[0].id}"
        refusal = self._admit(segment, kind, holder)
        if refusal is not None:
            self._metrics.connection_refused(kind.value)
            return ilp.Reject(ilp.ErrorCode.T03_CONNECTOR_BUSY, address, refusal, b"")
        link = _ActivityLink(self._node.link, lambda: self._budget.touch(segment, self._clock.now()))
        if pull is None:
            receiver = PushReceiver(self._db, self._clock, connection, asset, self._spawn)
            runner = ConnectionRunner(connection, link, on_events=receiver.on_events, now=self._clock.now)
        else:
            record, conversion = pull
            runner_box: list[ConnectionRunner] = []
            session = PullSession(
                db=self._db,
                clock=self._clock,
                pointer=record,
                connection=connection,
                conversion=conversion,
                settings=self._settings.pull,
                notify=self._notify,
                kick=lambda: runner_box[0].kick(),
            )
            self._pulls.add(session)
            runner = ConnectionRunner(connection, link, on_events=session.on_events, now=self._clock.now)
            runner_box.append(runner)
            self._metrics.pull_connection()
        self._runners[segment] = runner
        self._table[kind] += 1
        runner.start()
        self._spawn(self._forget_when_closed(segment, kind, runner))
        return runner

    @staticmethod
    def _refuse(keys: StreamKeys, address: str, prepare: ilp.Prepare, refusal: Refusal) -> ilp.Reject:
        """Answer the opening Prepare of a connection that cannot pull: a Reject whose STREAM reply closes the
        connection (ConnectionClose ApplicationError) and whose ILP message says why, for clients that read
        only that. No connection is kept: a retry is refused the same way."""
        try:
            request = decrypt_packet(keys, prepare.data)
        except DecodeError:
            return ilp.Reject(ilp.ErrorCode.F99_APPLICATION_ERROR, address, refusal.message, b"")
        close = ConnectionClose(StreamErrorCode.APPLICATION_ERROR, refusal.message)
        reply = StreamPacket(request.sequence, ilp.IlpPacketType.REJECT, prepare.amount, (close,))
        return ilp.Reject(
            ilp.ErrorCode.F99_APPLICATION_ERROR, address, refusal.message, encrypt_packet(keys, reply)
        )

    async def _pull_terms(self, tag: str, asset: Asset) -> tuple[PointerRecord, Conversion] | Refusal | None:
        """The pointer of `tag` and the conversion its pulls use; why not, when there is no rate."""
        record = await pointers.find_by_tag(self._db, tag)
        if record is None:
            return None
        try:
            conversion = await self._conversion(
                Asset(record.terms.asset_code, record.terms.asset_scale), asset
            )
        except RateUnavailable:
            refusal = no_rate(record.terms.asset_code, asset.code)
            log.warning("pointer %d: %s: pull refused", record.id, refusal.message)
            return refusal
        return record, conversion

    def _admit(self, segment: str, kind: Kind, account: str | None) -> str | None:
        """Take a place for a new connection, evicting one if the budget says so; why not, if refused."""
        if self._table[kind] >= TABLE_PER_BUDGET * self._settings.limits.of(kind):
            return f"too many {kind.value} connections are still closing"
        decision = self._budget.admit(segment, kind, account, self._clock.now())
        if isinstance(decision, Refused):
            return decision.reason
        if decision.evicted is not None:
            self._metrics.connection_evicted(kind.value)
            evicted = self._runners.get(decision.evicted)
            if evicted is not None:
                evicted.connection.close(
                    StreamErrorCode.ENDPOINT_BUSY, "closed to make room for another connection"
                )
                evicted.kick()
        return None

    def _spawn(self, work: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def rate_refusal(self, asset_code: str) -> Refusal | None:
        """Why pulls of a pointer in `asset_code` would be refused for want of a rate; None when they would
        not, or while the server's asset is unknown (an uplink before IL-DCP)."""
        asset = self._node.asset
        if asset is None:
            return None
        try:
            await self._rates.rate(asset_code, asset.code)
        except RateUnavailable:
            return no_rate(asset_code, asset.code)
        return None

    async def _conversion(self, pointer_asset: Asset, server_asset: Asset) -> Conversion:
        rate = await self._rates.rate(pointer_asset.code, server_asset.code)
        return Conversion.between(pointer_asset, server_asset, rate)

    async def _forget_when_closed(self, segment: str, kind: Kind, runner: ConnectionRunner) -> None:
        await runner.wait_closed()
        self._runners.pop(segment, None)
        self._budget.release(segment)
        self._table[kind] -= 1
        self._pulls = {p for p in self._pulls if not p.done}
        async with self._table_changed:
            self._table_changed.notify_all()


class _ActivityLink:
    """The node's link as one connection uses it: every Prepare it sends and every answer is activity, which
    keeps the connection from counting as idle in the budget."""

    def __init__(self, link: IlpLink, on_activity: Callable[[], None]) -> None:
        self._link = link
        self._on_activity = on_activity

    async def send(self, prepare: ilp.Prepare) -> ilp.Fulfill | ilp.Reject:
        self._on_activity()
        reply = await self._link.send(prepare)
        self._on_activity()
        return reply

    def set_handler(self, handler: IlpHandler) -> None:
        raise TypeError("a connection's link takes no handler: the node's handler answers its Prepares")


class PushReceiver:
    """A plain SPSP (push) connection: accepts any amount and records what arrived when it closes."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        connection: StreamConnection,
        asset: Asset,
        spawn: Callable[[Coroutine[object, object, None]], None],
    ) -> None:
        self._spawn = spawn
        self._db = db
        self._clock = clock
        self._connection = connection
        self._asset = asset
        self.received = 0

    def on_events(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, StreamOpened) and event.by_remote:
                # The peer may have closed it in the very packet that opened it.
                if self._connection.stream(event.stream_id).is_open:
                    self._connection.set_receive_max(event.stream_id, U64_MAX)
            elif isinstance(event, MoneyReceived):
                self.received += event.amount
            elif isinstance(event, ConnectionClosed) and self.received:
                self._spawn(self._record())

    async def _record(self) -> None:
        await push_payments.record_push(
            self._db,
            amount=self.received,
            asset_code=self._asset.code,
            asset_scale=self._asset.scale,
            source=self._connection.remote_address,
            now=self._clock.now(),
        )
