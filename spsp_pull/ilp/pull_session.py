"""One payee's STREAM connection to a pull pointer: the server sends on the payee's stream, within the
agreement, every unit covered by a reservation made before the Prepare carrying it goes out.

The session keeps the stream's `sendMax` equal to what its reservations cover (`PullBudget.send_limit`).
When the payee wants more than that, it reserves another chunk; when nothing more can be reserved, the
stream closes as soon as what was reserved has been sent (RFC 0036: the server ends the stream at sendMax,
so a JS puller's `receiveTotal` settles at once with a partial amount). Grants the deliveries have used up
are settled in the transaction that reserves the next chunk (one write per chunk; chunks double from
`chunk_packets` up to `max_chunk_packets`); the rest when it ends. Only one stream per pointer sends at a
time, across instances (a lease).

A grant is closed only while nothing the pull sent is in flight: the payee may close its stream or the
connection, or the connection fail, with Prepares out, and answer them later; every Fulfill the link accepts
(until the Prepare's expiry) is debited. So the pull first stops the stream from sending more (`sendMax` =
what is sent and in flight), waits until each Prepare is fulfilled, rejected or answered R00 at its expiry
by the link, and only then settles.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

from spsp_pull.domain.clock import Clock
from spsp_pull.domain.pull_refusal import SENDER_BUSY, refusal
from spsp_pull.domain.states import ReservationKind
from spsp_pull.ilp.pull_budget import GrantShare, PullBudget
from spsp_pull.rates import Conversion
from spsp_pull.store import allowance_low, pointers, reservations, sender_lease
from spsp_pull.store.database import Database
from spsp_pull.store.records import PointerRecord
from spsp_pull.store.reservations import ReservationClosed, SenderBusy, WebhookBody
from stream.connection import (
    ConnectionClosed,
    Event,
    MoneySent,
    RemoteReceiveMax,
    StreamClosed,
    StreamConnection,
    StreamOpened,
    StreamView,
)
from stream.frames import StreamErrorCode
from stream.oer import U64_MAX

log = logging.getLogger(__name__)
LEASE_POLL = timedelta(milliseconds=50)  # waiting for another stream's sender lease
DRAIN_POLL = timedelta(milliseconds=20)  # waiting for in-flight packets before re-chunking
# A cancel or change of the agreement (in any process) reaches a pull already under way when it next reads
# its pointer: every `PullSettings.terms_check` while it holds grants, and after this many fulfilled packets.
TERMS_CHECK_PACKETS = 64
PULL_LIMIT_REACHED = "Pull limit reached: nothing more is available on this pointer now."


@dataclass(frozen=True, slots=True)
class PullSettings:
    reservation_lease: timedelta = timedelta(seconds=60)
    sender_lease: timedelta = timedelta(seconds=15)
    chunk_packets: int = 64  # the first reservation covers this many packets of the current size
    max_chunk_packets: int = 512  # each further one twice the last, up to this: what a crash can strand
    lease_wait: timedelta = timedelta(seconds=55)
    # How often the pull re-reads its pointer while its grants cover something unsent (and after
    # TERMS_CHECK_PACKETS), and re-checks its stream when nothing was reported (a safety net: the pull moves
    # on events).
    terms_check: timedelta = timedelta(milliseconds=100)
    idle_check: timedelta = timedelta(seconds=1)


def delivery_needs_turn(
    *,
    exhausted: bool,
    packet: int | None,
    packet_seen: int | None,
    packets_since_check: int,
    unused: int,
    low_water: int,
    in_flight: int,
) -> bool:
    """After a delivery: whether the send loop has anything to decide now. It runs once per packet, so a
    delivery that leaves plenty reserved and more in flight lets the loop sleep on. It has something to
    decide when the pull is exhausted (it may end the stream), the packet size is unknown or changed since it
    planned (its chunks are sized in packets), `TERMS_CHECK_PACKETS` were fulfilled since it last read the
    terms, less than `low_water` is left unsent (reserve the next chunk), or nothing is in flight."""
    if exhausted or packet is None or packet != packet_seen:
        return True
    if packets_since_check >= TERMS_CHECK_PACKETS:
        return True
    return unused < low_water or in_flight == 0


class PullSession:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        pointer: PointerRecord,
        connection: StreamConnection,
        conversion: Conversion,
        settings: PullSettings,
        notify: WebhookBody,
        kick: Callable[[], None],
    ) -> None:
        self._db = db
        self._clock = clock
        self._pointer = pointer
        self._conn = connection
        self._budget = PullBudget(conversion)
        self._settings = settings
        self._notify = notify
        self._kick = kick
        self._holder = secrets.token_hex(8)
        self._stream_id: int | None = None
        self._exhausted = False
        self._has_lease = False
        self._lease_renewed = clock.now()
        self._grant_times: list[datetime] = []
        self._kept_at = clock.now()  # when `_keep_grants` last extended every open grant's lease
        self._packet_seen: int | None = None  # the packet size the send loop last planned with
        self._chunk_packets = settings.chunk_packets
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.delivered = 0
        self.packets = 0  # fulfilled
        self._refused: str | None = None  # why nothing was sent (a refusal code), once known
        self._pull_id: int | None = None  # the reservation of the pull's first ledger entry: names the pull
        self._settled = 0  # pointer units this pull's settled grants debited
        self._version = pointer.version.number  # the agreement version the pull last read
        self._terms_changed = False  # a newer version (or a cancel) seen while grants were open
        self._checked_at = clock.now()
        self._packets_at_check = 0

    def on_events(self, events: list[Event]) -> None:
        turn = False
        for event in events:
            if isinstance(event, MoneySent) and event.stream_id == self._stream_id:
                # Counted whatever state the stream or connection is in: the link accepted it, so it is paid.
                self._budget.record_fulfilled(event.amount)
                self.delivered += event.amount
                self.packets += 1
                turn = turn or self._turn_due(event.stream_id)
                continue
            turn = True
            log.debug("pointer %d: %s", self._pointer.id, event)  # pragma: no mutate
            if isinstance(event, StreamOpened) and event.by_remote and self._stream_id is None:
                self._stream_id = event.stream_id
                self._conn.keep_stream(event.stream_id)  # read after it closes (drain, settle)
            elif isinstance(event, StreamOpened) and event.by_remote:
                # RFC 0036: one sending stream at a time. Further streams get nothing.
                self._conn.close_stream(event.stream_id)
            elif isinstance(event, RemoteReceiveMax) and event.stream_id == self._stream_id:
                if event.receive_max > event.total_received and self._task is None:
                    self._task = asyncio.get_running_loop().create_task(self._run())
            elif isinstance(event, StreamClosed) and event.stream_id == self._stream_id:
                self._exhausted = True  # not the close of a further stream: that one never pulled
            elif isinstance(event, ConnectionClosed):
                self._exhausted = True
        if turn:
            self._changed.set()

    def _turn_due(self, stream_id: int) -> bool:
        """After a delivery on the pulled stream: `delivery_needs_turn` with what the stream shows now."""
        view = self._conn.stream(stream_id)
        packet = self._conn.max_packet_amount
        return delivery_needs_turn(
            exhausted=self._exhausted,
            packet=packet,
            packet_seen=self._packet_seen,
            packets_since_check=self.packets - self._packets_at_check,
            unused=self._budget.send_limit - view.total_sent - view.in_flight,
            low_water=self._low_water(
                0
            ),  # a chunk counts only while the packet size is unknown: then it turns
            in_flight=view.in_flight,
        )

    def _local_units(self, receive_max: int, total_received: int) -> int:
        if receive_max >= U64_MAX:
            return U64_MAX
        room = max(0, receive_max - total_received)
        rate = self._conn.exchange_rate
        return room if rate == 1 else int(-(-Fraction(room) // rate))

    @property
    def done(self) -> bool:
        return self._conn.is_closed and (self._task is None or self._task.done())

    async def wait(self) -> None:
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        started, failed = self._clock.now(), False
        try:
            await self._send_loop()
        except Exception:
            failed = True
            log.exception("pull on pointer %d failed", self._pointer.id)  # pragma: no mutate
            self._conn.close(StreamErrorCode.INTERNAL_ERROR, "internal error")
            self._kick()
        finally:
            await self._drain()
            try:
                await self._close_grants(final=True)
            except Exception:
                # The grants stay open; recovery debits them in full once their lease runs out.
                log.exception("pull on pointer %d: settling failed", self._pointer.id)  # pragma: no mutate
            self._db.metrics.pull_ended(
                failed=failed,
                wanted_more=self._wanted_more(),
                delivered=self.delivered,
                refused=self._refused,
                took=self._clock.now() - started,
                packets=self.packets,
            )

    def _wanted_more(self) -> bool:
        """Whether the payee asked for more than it received on the pulled stream."""
        view = self._conn.stream(self._stream_id) if self._stream_id is not None else None
        return view is not None and view.remote_receive_max > view.remote_total_received

    async def _send_loop(self) -> None:
        sid = self._stream_id
        assert sid is not None
        while not self._conn.is_closed:
            # Cleared before the state is read: a change while this iteration awaits is not lost.
            self._changed.clear()
            await self._renew_sender_lease()
            view = self._conn.stream(sid)
            if not view.is_open:
                break  # closed by the payee, or with the connection: `_run` drains what is in flight
            if self._terms_check_due(view):
                await self._check_terms()
            unused = self._budget.send_limit - view.total_sent - view.in_flight
            remote_room = self._local_units(view.remote_receive_max, view.remote_total_received)
            wanted = remote_room - unused - view.in_flight
            if self._rechunk_due(unused):
                if self._stop_sending():
                    # Let what is in flight settle before re-chunking; send nothing new meanwhile.
                    await self._keep_grants()
                    await self._wait_change(DRAIN_POLL)
                    continue
                await self._close_grants(final=False)
                self._terms_changed = False
                self._allow_sending(self._budget.send_limit)
                continue
            self._packet_seen = self._conn.max_packet_amount
            chunk = self._chunk_target(wanted)
            if wanted > 0 and not self._exhausted and unused < self._low_water(chunk):
                # Reserve ahead by one chunk at most: what a crash can strand stays small.
                await self._reserve(min(wanted, chunk))
                self._allow_sending(self._budget.send_limit)
                self._kick()
                continue
            if self._exhausted and unused <= 0 and view.in_flight == 0:
                # Everything the agreement allows has gone: end the stream (RFC 0036). The message
                # makes both JS client generations end their receiveTotal at once (without one,
                # ilp-protocol-stream 1.8.9 waits for its time-out); the client then closes the connection
                # (1.8.9's end() never returns if the server closes it at the same moment). The idle
                # timeout covers a client that never does.
                self._conn.close_stream(sid, message=await self._end_message())
                self._kick()
                break
            await self._wait_change(
                self._settings.terms_check if self._holds_unsent(view) else self._settings.idle_check
            )

    def _holds_unsent(self, view: StreamView) -> bool:
        """Whether open grants cover something not yet sent: what a cancel or a change could still stop."""
        return bool(self._budget.open_grants) and self._budget.send_limit > view.total_sent + view.in_flight

    def _terms_check_due(self, view: StreamView) -> bool:
        """Whether to re-read the pointer now: only while grants cover something not yet sent (a reservation
        reads the terms itself; what was sent or is in flight cannot be called back), every `terms_check`
        and every `TERMS_CHECK_PACKETS` fulfilled packets."""
        if not self._holds_unsent(view):
            return False
        return (
            self.packets - self._packets_at_check >= TERMS_CHECK_PACKETS
            or self._clock.now() - self._checked_at >= self._settings.terms_check
        )

    async def _check_terms(self) -> None:
        """Read the pointer (one indexed read): a cancel or a change of its terms since the pull last read
        them makes the pull re-chunk (`_rechunk_due`): it stops sending, settles once nothing is in flight,
        and reserves afresh under the terms as they now stand (nothing, after a cancel)."""
        self._checked_at = self._clock.now()
        self._packets_at_check = self.packets
        record = await pointers.find_by_id(self._db, self._pointer.id)  # never None: pointers stay
        if record is not None and record.version.number != self._version:
            log.info("pointer %d: the agreement changed mid-pull", self._pointer.id)  # pragma: no mutate
            self._terms_changed = True
            self._version = record.version.number

    async def _end_message(self) -> str:
        """What the stream's close says: why nothing was sent, when nothing was (from the agreement as it
        stands now); else that the pull took what there was."""
        if self.delivered:
            return PULL_LIMIT_REACHED
        record = await pointers.find_by_id(self._db, self._pointer.id)
        if record is None:
            return PULL_LIMIT_REACHED
        why = refusal(record.version, record.usage, self._clock.now(), record.cancelled_at)
        self._refused = None if why is None else why.code
        return PULL_LIMIT_REACHED if why is None else why.message

    def _stop_sending(self) -> int:
        """Let the stream send nothing beyond what is in flight (its sendMax = sent + in flight); what is in
        flight on it now (0: the grants may be closed)."""
        sid = self._stream_id
        assert sid is not None
        view = self._conn.stream(sid)
        if view.is_open:
            self._conn.set_send_max(sid, view.total_sent + view.in_flight)
        return view.in_flight

    def _allow_sending(self, limit: int) -> None:
        """Raise the stream's sendMax to what the grants cover (a stream closed meanwhile sends nothing). A
        stream carries at most a u64 in all: grants in a coarser asset may cover more server units."""
        sid = self._stream_id
        assert sid is not None
        view = self._conn.stream(sid)
        if view.is_open:
            self._conn.set_send_max(sid, max(min(limit, U64_MAX), view.total_sent + view.in_flight))

    async def _drain(self) -> None:
        """Until nothing this pull sent is in flight. Bounded by the Prepares' expiry: the link answers each
        (Fulfill, Reject, or R00 at its expiry; it refuses a later Fulfill), and the runner hands every
        answer to the connection even after it closed or stopped. A Fulfill wakes it; a Reject (no event)
        is noticed by polling, less often the longer the payee holds on (many may be draining at once)."""
        poll = DRAIN_POLL
        while True:
            self._changed.clear()
            if not self._stop_sending():
                return
            await self._keep_grants()
            await self._wait_change(poll)
            poll = min(2 * poll, self._settings.idle_check)

    async def _keep_grants(self) -> None:
        """While Prepares are in flight, keep the grants' leases from running out: recovery would debit them
        in full, though the payee may yet reject what is in flight. Once half a lease has passed since the
        oldest open grant was made or all were kept, all are kept for another lease (one write per half
        lease)."""
        now = self._clock.now()
        lease = self._settings.reservation_lease
        if not self._grant_times or now - max(self._grant_times[0], self._kept_at) < lease / 2:
            return
        try:
            await reservations.extend_leases(self._db, self._budget.open_reservation_ids, until=now + lease)
        except ReservationClosed:
            log.warning("pointer %d: a grant was recovered in use", self._pointer.id)  # pragma: no mutate
            self._exhausted = True
        except Exception:
            # Covered either way: recovery debits a grant in full.
            log.exception("pointer %d: keeping the grants failed", self._pointer.id)  # pragma: no mutate
        self._kept_at = now

    def _low_water(self, chunk: int) -> int:
        """Reserve the next chunk when less than this is left unsent: half the first chunk, enough to cover
        the time the reservation takes (not half the current chunk: that would hold twice what is needed)."""
        packet = self._conn.max_packet_amount
        return max(1, (chunk if packet is None else packet * self._settings.chunk_packets) // 2)

    def _chunk_target(self, wanted: int) -> int:
        packet = self._conn.max_packet_amount
        return wanted if packet is None else max(packet * self._chunk_packets, 1)

    def _rechunk_due(self, unused: int) -> bool:
        """Holding much more than the next chunks need (the packet size turned out small), or grants near
        the end of their lease: settle what was delivered and reserve afresh."""
        if not self._budget.open_grants:
            return False
        packet = self._conn.max_packet_amount
        oversized = packet is not None and unused > 2 * packet * self._chunk_packets
        stale = bool(self._grant_times) and (
            self._clock.now() - self._grant_times[0] > self._settings.reservation_lease / 2
        )
        return oversized or stale or self._terms_changed

    async def _reserve(self, server_units: int) -> None:
        """Hold the next chunk, settling the grants already used up and taking (or extending) the sender
        lease in the same transaction. The first one waits while another stream holds the lease."""
        want = self._budget.pointer_units_for(server_units)
        used_up = self._take_used_up()
        self._terms_changed = False  # this reservation reads the terms as they stand
        deadline = self._clock.now() + self._settings.lease_wait
        while True:
            self._changed.clear()
            now = self._clock.now()
            try:
                _, grant = await reservations.settle_and_reserve(
                    self._db,
                    [(share.reservation_id, share.sent) for share in used_up],
                    self._pointer.id,
                    want,
                    kind=ReservationKind.STREAM,
                    now=now,
                    lease=self._settings.reservation_lease,
                    sender=(self._holder, self._settings.sender_lease),
                )
                break
            except ReservationClosed:
                # One of them was recovered (its lease ran out): settle the others one by one, and stop.
                self._exhausted = True
                for share in used_up:
                    await self._settle(share)
                return
            except SenderBusy:
                if self._has_lease:
                    for share in used_up:
                        await self._settle(share)
                    raise RuntimeError("lost the sender lease") from None  # pragma: no mutate
                if now >= deadline or not self._conn.is_open:
                    self._exhausted = True
                    self._conn.close(StreamErrorCode.APPLICATION_ERROR, SENDER_BUSY.message)
                    self._refused = SENDER_BUSY.code
                    self._kick()
                    return
                await self._wait_change(LEASE_POLL)
        self._has_lease = True
        self._lease_renewed = now
        self._count(used_up)
        log.debug("pointer %d: reserved %s of %d", self._pointer.id, grant, want)  # pragma: no mutate
        if grant is not None:
            self._budget.add_grant(grant.reservation_id, grant.amount)
            self._grant_times.append(now)
            self._chunk_packets = min(2 * self._chunk_packets, self._settings.max_chunk_packets)
        if grant is None or grant.amount < want:
            self._exhausted = True  # that was all that is available
            if self._budget.open_grants:
                await self._check_terms()  # because the agreement changed? Then stop sending at once

    def _take_used_up(self) -> list[GrantShare]:
        """The grants the deliveries have wholly used (settled with the next reservation). The newest stays
        open until the pull ends: its settlement announces the pull (webhook) in the same transaction."""
        shares = self._budget.used_up(keep=1)
        del self._grant_times[: len(shares)]
        return shares

    async def _close_grants(self, *, final: bool) -> None:
        """Settle every open grant in one transaction; at the end of the pull (`final`) it announces the
        pull and releases the sender lease too (in a transaction of their own when nothing is left to settle
        with them). Only with nothing in flight (`_stop_sending() == 0`)."""
        if self._stop_sending():
            raise AssertionError("grants closed with Prepares in flight")  # pragma: no mutate
        if self._budget.uncovered:  # pragma: no mutate block
            log.error(
                "pointer %d: %d delivered beyond the reservations", self._pointer.id, self._budget.uncovered
            )
        shares = self._budget.close_all()
        self._grant_times.clear()
        announce = final and self.delivered > 0
        release = (self._pointer.id, self._holder) if final and self._has_lease else None
        if shares:
            try:
                await reservations.settle_all(
                    self._db,
                    [(share.reservation_id, share.sent) for share in shares],
                    now=self._clock.now(),
                    notify=self._announcement(shares) if announce else None,
                    release_sender=release,
                )
                self._count(shares)
            except ReservationClosed:
                # One was recovered (its lease ran out): settle the others one by one, then announce.
                for share in shares:
                    await self._settle(share)
            else:
                announce, release = False, None  # both went with the settlement
        if announce and self._pull_id is not None:
            # Also when the pull's last grant was settled on the way (it re-chunked, then found nothing more);
            # not when recovery debited every grant it had: it settled nothing to announce.
            notify = self._announcement([])
            now = self._clock.now()
            await reservations.announce_pull(
                self._db, self._pointer.id, notify, now=now, release_sender=release
            )
        elif release is not None:
            await sender_lease.release(self._db, *release)
        if final and self.delivered > 0 and self._pointer.webhook:
            await allowance_low.warn_if_low(self._db, self._pointer.id, now=self._clock.now())

    async def _settle(self, share: GrantShare) -> None:
        try:
            await reservations.settle(self._db, share.reservation_id, share.sent, now=self._clock.now())
            self._count([share])
        except ReservationClosed:
            # The lease ran out and recovery debited the whole reservation: covered, but stop sending.
            log.warning("grant %d was recovered while in use", share.reservation_id)  # pragma: no mutate
            self._exhausted = True

    def _count(self, settled: list[GrantShare]) -> None:
        """Settled shares (in settlement order, so in ledger order): add them to the pull's amount; the first
        that debited anything wrote the pull's first ledger entry, and names the pull."""
        for share in settled:
            if share.sent and self._pull_id is None:
                self._pull_id = share.reservation_id
            self._settled += share.sent

    def _announcement(self, settling: list[GrantShare]) -> WebhookBody:
        """The pointer's webhook body with the pull's own `pullId` (the `reservationId` of its first entry in
        the ledger of `GET /pointers/<token>`) and `pullAmount` (what all its grants debited), counting
        `settling`, the settlement that announces it."""
        first = next((share.reservation_id for share in settling if share.sent), None)
        pull_id = self._pull_id if self._pull_id is not None else first
        amount = self._settled + sum(share.sent for share in settling)
        pull = {"pullId": str(pull_id), "pullAmount": str(amount)}
        body = self._notify
        return lambda record, now: {**body(record, now), **pull}

    async def _renew_sender_lease(self) -> None:
        """Between reservations (each of which extends it), while the payee takes its time."""
        now = self._clock.now()
        if self._has_lease and now - self._lease_renewed >= self._settings.sender_lease / 3:
            if not await sender_lease.acquire(
                self._db, self._pointer.id, self._holder, now=now, ttl=self._settings.sender_lease
            ):
                raise RuntimeError("lost the sender lease")  # pragma: no mutate
            self._lease_renewed = now

    async def _wait_change(self, at_most: timedelta) -> None:
        """Until something changed since `_changed` was last cleared (at most `at_most`).

        A timer sets the event: `asyncio.wait_for` would make a task per wait, and this runs per packet."""
        changed = self._changed
        if changed.is_set():
            return
        timer = asyncio.get_running_loop().call_later(at_most.total_seconds(), changed.set)
        try:
            await changed.wait()
        finally:
            timer.cancel()
