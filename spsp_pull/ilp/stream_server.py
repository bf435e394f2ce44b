"""Incoming Prepares for the server's address: find (or open) the STREAM connection they belong to.

Addresses and secrets are derived statelessly (`ReceiverAddresses`), so any instance can take a connection
whose SPSP query another instance answered. A connection to a pull pointer's tag becomes a `PullSession`; one
to the push tag receives money and records it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field

from spsp_pull.domain.clock import Clock
from spsp_pull.ilp.node import IlpNode
from spsp_pull.ilp.pull_session import PullSession, PullSettings
from spsp_pull.ilp.receiver_address import PUSH_TAG, ConnectionId, ReceiverAddresses
from spsp_pull.metrics import Metrics
from spsp_pull.rates import Asset, Conversion, RateSource, RateUnavailable
from spsp_pull.store import pointers, push_payments
from spsp_pull.store.database import Database
from spsp_pull.store.reservations import WebhookBody
from stream import ilp
from stream.aio.connection_runner import ConnectionRunner
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
from stream.errors import DecryptionError
from stream.oer import U64_MAX

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StreamServerSettings:
    pull: PullSettings = field(default_factory=PullSettings)
    max_in_flight: int = 4
    max_packet_amount: int | None = None  # a STREAM-side cap on what one Prepare carries
    max_connections: int = 10_000


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
        self._opening: dict[str, asyncio.Future[ConnectionRunner | None]] = {}
        self._pulls: set[PullSession] = set()
        self._background: set[asyncio.Task[None]] = set()

    async def handle(self, prepare: ilp.Prepare) -> ilp.Fulfill | ilp.Reject:
        address = self._node.address
        assert address is not None
        connection_id = ReceiverAddresses.parse(address, prepare.destination)
        if connection_id is None:
            return self._unreachable(address)
        runner = self._runners.get(connection_id.segment)
        if runner is None:
            runner = await self._open(connection_id, prepare, address)
            if runner is None:
                return self._unreachable(address)
        return runner.handle_prepare(prepare)

    async def stop(self) -> None:
        for runner in list(self._runners.values()):
            runner.connection.close()
            runner.kick()
        pending = [p.wait() for p in self._pulls]
        if pending:
            await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), 10)
        for runner in list(self._runners.values()):
            await runner.stop()

    @property
    def open_connections(self) -> int:
        return len(self._runners)

    def _unreachable(self, address: str) -> ilp.Reject:
        return ilp.Reject(ilp.ErrorCode.F02_UNREACHABLE, address, "", b"")

    async def _open(
        self, connection_id: ConnectionId, prepare: ilp.Prepare, address: str
    ) -> ConnectionRunner | None:
        """Open the connection on its first decryptable Prepare (concurrent first Prepares share one)."""
        opening = self._opening.get(connection_id.segment)
        if opening is not None:
            return await asyncio.shield(opening)
        future: asyncio.Future[ConnectionRunner | None] = asyncio.get_running_loop().create_future()
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
    ) -> ConnectionRunner | None:
        if len(self._runners) >= self._settings.max_connections:
            return None
        keys = StreamKeys(self._addresses.secret_for(connection_id.segment))
        try:
            keys.decrypt(prepare.data)
        except DecryptionError:
            return None
        asset = self._node.asset
        assert asset is not None
        options = ConnectionOptions(
            max_in_flight=self._settings.max_in_flight, max_packet_amount=self._settings.max_packet_amount
        )
        connection = StreamConnection(
            keys=keys,
            is_server=True,
            local_address=address,
            now=self._clock.now(),
            asset=AssetDetails(asset.code, asset.scale),
            options=options,
        )
        segment = connection_id.segment
        if connection_id.tag == PUSH_TAG:
            receiver = PushReceiver(self._db, self._clock, connection, asset, self._spawn)
            runner = ConnectionRunner(
                connection, self._node.link, on_events=receiver.on_events, now=self._clock.now
            )
        else:
            record = await pointers.find_by_tag(self._db, connection_id.tag)
            if record is None:
                return None
            try:
                conversion = await self._conversion(
                    Asset(record.terms.asset_code, record.terms.asset_scale), asset
                )
            except RateUnavailable:
                log.warning("no rate from %s to %s: pull refused", record.terms.asset_code, asset.code)
                return None
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
            runner = ConnectionRunner(
                connection, self._node.link, on_events=session.on_events, now=self._clock.now
            )
            runner_box.append(runner)
            self._metrics.inc("spsp_pull_connections_total", help_text="STREAM connections to pull pointers")
        self._runners[segment] = runner
        runner.start()
        self._spawn(self._forget_when_closed(segment, runner))
        return runner

    def _spawn(self, work: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _conversion(self, pointer_asset: Asset, server_asset: Asset) -> Conversion:
        rate = await self._rates.rate(pointer_asset.code, server_asset.code)
        return Conversion.between(pointer_asset, server_asset, rate)

    async def _forget_when_closed(self, segment: str, runner: ConnectionRunner) -> None:
        await runner.wait_closed()
        self._runners.pop(segment, None)
        self._pulls = {p for p in self._pulls if not p.done}


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
