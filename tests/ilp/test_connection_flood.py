"""Connection floods against a server in this process, over real loopback sockets (HTTP and BTP): push
connections (free to open) never starve pulls, one pointer's pull connections never use up another pointer's
(however many BTP accounts open them: any token makes a new one), and idle connections give their places back.

Limits are small (20 pull, 20 push, 5 per account and per pointer) so the attack fits in a test: before the
budgets, 20 push connections from anyone made every pull fail with F02.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from spsp_pull.config import Config
from spsp_pull.ilp.connection_budget import ConnectionLimits, Kind
from spsp_pull.ilp.node import EmbeddedNode
from spsp_pull.ilp.stream_server import StreamServer
from spsp_pull.payee import pull, query
from spsp_pull.server import Server, running
from spsp_pull.store import pointers
from spsp_pull.store.audit import audit_ledger
from spsp_pull.store.database import Database
from stream import ilp
from stream.aio.btp_client import BtpClient
from stream.aio.btp_server import BtpServer
from stream.aio.connection_runner import ConnectionRunner
from stream.connection import (
    AssetDetails,
    ConnectionClosed,
    Event,
    MoneyReceived,
    StreamClosed,
    StreamConnection,
)
from stream.crypto import StreamKeys, random_condition
from stream.frames import ConnectionNewAddress
from stream.packet import StreamPacket, encrypt_packet

ADMIN = "flood-admin"
LIMITS = ConnectionLimits(
    pull=20, push=20, per_account=5, per_pointer=5, evict_idle_after=timedelta(seconds=5)
)
WAIT = 15.0  # seconds any awaited event may take at most
IN_FLIGHT = 4  # the server's window of Prepares awaiting replies (SPSP_MAX_IN_FLIGHT's default)


class AheadClock:
    """The system clock, plus however far the test has moved it on (Prepare expiries stay in the future)."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.ahead


@dataclass
class Account:
    """One BTP account at the server's embedded endpoint, opening STREAM connections with one Prepare each."""

    link: BtpClient
    address: str
    replies: Counter[str] = field(default_factory=Counter)
    last_message: str = ""

    async def open(self, http: aiohttp.ClientSession, url: str) -> str:
        """Query `url` (SPSP) and open a connection to what it names; the reply's code ("F99": open)."""
        details = await query(url, session=http)
        frames = (ConnectionNewAddress(self.address),)
        packet = StreamPacket(
            sequence=1, ilp_packet_type=ilp.IlpPacketType.PREPARE, prepare_amount=0, frames=frames
        )
        prepare = ilp.Prepare(
            amount=0,
            expires_at=datetime.now(UTC) + timedelta(seconds=10),
            execution_condition=random_condition(),
            destination=details.destination_account,
            data=encrypt_packet(StreamKeys(details.shared_secret), packet),
        )
        reply = await self.link.send(prepare)
        code = reply.code if isinstance(reply, ilp.Reject) else "fulfilled"
        self.last_message = reply.message if isinstance(reply, ilp.Reject) else ""
        self.replies[code] += 1
        return code


async def refuse_all(prepare: ilp.Prepare) -> ilp.Reject:
    """What our raw clients answer to the server's Prepares (its ConnectionClose when it closes one)."""
    return ilp.Reject(ilp.ErrorCode.F99_APPLICATION_ERROR, "", "", b"")


@dataclass
class Setup:
    server: Server
    http: aiohttp.ClientSession
    clock: AheadClock
    stack: AsyncExitStack

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    @property
    def btp_port(self) -> int:
        node = self.server.node
        assert isinstance(node, EmbeddedNode)
        return node.btp_port

    def btp_url(self, name: str) -> str:
        return f"btp+ws://{name}:secret-{name}@127.0.0.1:{self.btp_port}"

    async def account(self, name: str) -> Account:
        link = await self.stack.enter_async_context(BtpClient(self.btp_url(name), reconnect=False))
        link.set_handler(refuse_all)
        info = await link.ildcp()
        return Account(link, info.client_address)

    async def pointer(self, amount: str = "5000") -> str:
        body = {
            "amount": amount,
            "assetCode": "XRP",
            "assetScale": 9,
            "interval": "P1D",
            "cycles": 1,
            "cap": False,
        }
        headers = {"Authorization": f"Bearer {ADMIN}"}
        async with self.http.post(f"{self.url}/", json=body, headers=headers) as response:
            assert response.status == 201, await response.text()
            return f"{self.url}/{(await response.json())['token']}"

    def counter(self, name: str, kind: Kind) -> int:
        return self.server.context.metrics.value(name, kind=kind.value)

    def held(self) -> tuple[int, int, int]:
        """What the `spsp_pull_stream_connections` gauge shows: (all, pull, push)."""
        metrics = self.server.context.metrics

        def gauge(held: str) -> int:
            return metrics.value("spsp_pull_stream_connections", held=held)

        return gauge("all"), gauge("pull"), gauge("push")

    @property
    def stream_server(self) -> StreamServer:
        assert self.server.stream_server is not None
        return self.server.stream_server


@asynccontextmanager
async def serving(tmp_path: Path, limits: ConnectionLimits = LIMITS) -> AsyncIterator[Setup]:
    config = Config(port=0, btp_port=0, data_dir=tmp_path, auth_token=ADMIN, connection_limits=limits)
    clock = AheadClock()
    async with (
        running(config, clock=clock, announce=lambda _line: None) as server,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT)) as http,
        AsyncExitStack() as stack,
    ):
        # Clients (on the stack) leave before the server stops.
        yield Setup(server, http, clock, stack)


async def test_a_push_flood_leaves_every_pull_place_to_pulls(tmp_path: Path) -> None:
    async with serving(tmp_path) as s:
        pointer = await s.pointer()
        flooders = [await s.account(f"flood{i}") for i in range(5)]
        for flooder in flooders:
            for _ in range(5):  # 25 push connections in all
                await flooder.open(s.http, f"{s.url}/.well-known/pay")
        # Four accounts filled the 20 places; the fifth took four (fairness: 4 each), then was refused.
        assert s.stream_server.budgeted(Kind.PUSH) == 20
        assert sum(f.replies["F99"] for f in flooders) == 24
        assert [f.replies["T03"] for f in flooders] == [0, 0, 0, 0, 1]
        assert s.counter("spsp_pull_stream_connections_evicted_total", Kind.PUSH) == 4
        assert s.counter("spsp_pull_stream_connections_refused_total", Kind.PUSH) == 1

        outcome = await pull(pointer, 1000, btp_url=s.btp_url("payee"))
        assert outcome.complete, outcome
        assert outcome.amount == 1000
        assert s.stream_server.budgeted(Kind.PUSH) == 20


async def test_the_refusal_says_why_and_is_temporary(tmp_path: Path) -> None:
    async with serving(tmp_path) as s:
        flooder = await s.account("flood")
        for _ in range(5):
            assert await flooder.open(s.http, f"{s.url}/.well-known/pay") == "F99"
        details = await query(f"{s.url}/.well-known/pay", session=s.http)
        packet = StreamPacket(sequence=1, ilp_packet_type=ilp.IlpPacketType.PREPARE, prepare_amount=0)
        reply = await flooder.link.send(
            ilp.Prepare(
                0,
                datetime.now(UTC) + timedelta(seconds=10),
                random_condition(),
                details.destination_account,
                encrypt_packet(StreamKeys(details.shared_secret), packet),
            )
        )
        assert isinstance(reply, ilp.Reject)
        assert (reply.code, reply.message) == (
            "T03",
            "this account holds 5 push connections, the most allowed",
        )
        assert s.server.node is not None and reply.triggered_by == s.server.node.address


async def test_one_account_flooding_pull_connections_cannot_stop_another_accounts_pull(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path) as s:
        flood_pointer = await s.pointer()
        payee_pointer = await s.pointer()
        flooder = await s.account("flood")
        for _ in range(12):
            await flooder.open(s.http, flood_pointer)
        assert (flooder.replies["F99"], flooder.replies["T03"]) == (5, 7)
        assert s.stream_server.budgeted(Kind.PULL) == 5

        outcome = await pull(payee_pointer, 2500, btp_url=s.btp_url("payee"))
        assert outcome.complete and outcome.amount == 2500


async def test_pull_places_filled_through_several_pointers_still_admit_a_new_payee(tmp_path: Path) -> None:
    async with serving(tmp_path) as s:
        flood_pointers = [await s.pointer() for _ in range(4)]
        payee_pointer = await s.pointer()
        flooders = [await s.account(f"flood{i}") for i in range(4)]
        for flooder, flood_pointer in zip(flooders, flood_pointers, strict=True):
            for _ in range(6):
                await flooder.open(s.http, flood_pointer)
        assert [(f.replies["F99"], f.replies["T03"]) for f in flooders] == [(5, 1)] * 4
        assert s.stream_server.budgeted(Kind.PULL) == 20

        outcome = await pull(payee_pointer, 2500, btp_url=s.btp_url("payee"))
        assert outcome.complete and outcome.amount == 2500
        assert s.counter("spsp_pull_stream_connections_evicted_total", Kind.PULL) == 1


async def test_accounts_minted_by_the_dozen_hold_one_pointers_places_only(tmp_path: Path) -> None:
    """Any BTP token makes a new account at the embedded endpoint: twenty accounts, one connection each to one
    pointer, took all 20 pull places, and no account held more than a newcomer plus one, so no pull of
    another pointer found a place (T03). A pointer's pulls now hold 5 places at most."""
    async with serving(tmp_path) as s:
        flood_pointer = await s.pointer()
        payee_pointer = await s.pointer()
        flooders = [await s.account(f"mint{i}") for i in range(20)]
        for flooder in flooders:
            await flooder.open(s.http, flood_pointer)
        assert sum(f.replies["F99"] for f in flooders) == 5
        assert flooders[-1].last_message == "this pointer holds 5 pull connections, the most allowed"
        assert s.stream_server.budgeted(Kind.PULL) == 5

        outcome = await pull(payee_pointer, 2500, btp_url=s.btp_url("payee"))
        assert outcome.complete and outcome.amount == 2500


async def test_a_full_budget_gives_an_idle_connections_place_to_a_new_one(tmp_path: Path) -> None:
    async with serving(tmp_path) as s:
        flooders = [await s.account(f"flood{i}") for i in range(4)]
        for flooder in flooders:
            for _ in range(5):
                await flooder.open(s.http, f"{s.url}/.well-known/pay")
        assert await flooders[0].open(s.http, f"{s.url}/.well-known/pay") == "T03"
        s.clock.ahead = LIMITS.evict_idle_after
        assert await flooders[0].open(s.http, f"{s.url}/.well-known/pay") == "F99"
        assert s.counter("spsp_pull_stream_connections_evicted_total", Kind.PUSH) == 1
        assert s.stream_server.budgeted(Kind.PUSH) == 20


@pytest.mark.parametrize("idle_ms", [400])
async def test_idle_connections_are_closed_after_the_idle_timeout_and_free_their_places(
    tmp_path: Path, idle_ms: int
) -> None:
    idle = timedelta(milliseconds=idle_ms)
    limits = ConnectionLimits(
        pull=20, push=20, per_account=5, idle_timeout=idle, evict_idle_after=timedelta(hours=1)
    )
    async with serving(tmp_path, limits) as s:
        pointer = await s.pointer()
        flooder = await s.account("flood")
        opened_at = datetime.now(UTC)
        for _ in range(5):
            assert await flooder.open(s.http, f"{s.url}/.well-known/pay") == "F99"
            assert await flooder.open(s.http, pointer) == "F99"
        assert await flooder.open(s.http, f"{s.url}/.well-known/pay") == "T03"
        assert s.stream_server.open_connections() == 10
        assert s.held() == (10, 5, 5)

        async with asyncio.timeout(WAIT):
            await s.stream_server.wait_until_open_at_most(0)
        assert datetime.now(UTC) - opened_at >= idle
        assert (s.stream_server.budgeted(Kind.PUSH), s.stream_server.budgeted(Kind.PULL)) == (0, 0)
        assert s.held() == (0, 0, 0)
        assert await flooder.open(s.http, f"{s.url}/.well-known/pay") == "F99"


async def test_evicted_connections_still_closing_count_against_twice_the_budget(tmp_path: Path) -> None:
    """A peer that never answers the server's ConnectionClose keeps its evicted connection closing (until that
    Prepare expires): the table holds at most twice a kind's budget, so such peers cannot grow it further."""
    limits = ConnectionLimits(pull=20, push=2, per_account=5, evict_idle_after=timedelta(seconds=5))
    async with serving(tmp_path, limits) as s:
        silent = await s.account("silent")
        never = asyncio.Event()

        async def never_answer(prepare: ilp.Prepare) -> ilp.Reject:
            await never.wait()
            raise AssertionError("unreachable")

        silent.link.set_handler(never_answer)
        pay = f"{s.url}/.well-known/pay"
        assert [await silent.open(s.http, pay) for _ in range(2)] == ["F99", "F99"]
        other = await s.account("other")
        s.clock.ahead = limits.evict_idle_after
        assert [await other.open(s.http, pay) for _ in range(2)] == ["F99", "F99"]  # both silent ones evicted
        assert (s.stream_server.budgeted(Kind.PUSH), s.stream_server.open_connections()) == (2, 4)
        assert s.held() == (4, 0, 2)  # the two evicted ones, still closing, hold no place
        s.clock.ahead = 2 * limits.evict_idle_after
        third = await s.account("third")
        assert await third.open(s.http, pay) == "T03"
        assert third.last_message == "too many push connections are still closing"
        assert s.counter("spsp_pull_stream_connections_refused_total", Kind.PUSH) == 1


async def test_through_an_uplink_pull_places_count_per_pointer_and_pushes_only_against_the_push_budget(
    tmp_path: Path,
) -> None:
    """Behind a connector every Prepare comes from it: a pull connection counts against its pointer, a push
    connection against the push budget only (all 20 places, then refused, whoever asks)."""
    connector = BtpServer("test.connector", ("XRP", 9))
    await connector.start()
    joined = asyncio.Event()

    def announce(line: str) -> None:
        if line.startswith("joined the ILP network"):
            joined.set()

    uplink = f"btp+ws://pullsrv:secret@127.0.0.1:{connector.port}"
    config = Config(port=0, data_dir=tmp_path, auth_token=ADMIN, ilp_uplink=uplink, connection_limits=LIMITS)
    try:
        async with (
            running(config, clock=AheadClock(), announce=announce) as server,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT)) as http,
            AsyncExitStack() as stack,
        ):
            async with asyncio.timeout(WAIT):
                await joined.wait()
            s = Setup(server, http, AheadClock(), stack)

            def at_connector(name: str) -> str:
                return f"btp+ws://{name}:secret-{name}@127.0.0.1:{connector.port}"

            async def account(name: str) -> Account:
                link = await stack.enter_async_context(BtpClient(at_connector(name), reconnect=False))
                link.set_handler(refuse_all)
                return Account(link, (await link.ildcp()).client_address)

            flood_pointer, payee_pointer = await s.pointer(), await s.pointer()
            flooders = [await account(f"flood{i}") for i in range(3)]
            for flooder in flooders:
                for _ in range(3):
                    await flooder.open(http, flood_pointer)
                for _ in range(8):
                    await flooder.open(http, f"{s.url}/.well-known/pay")
            assert sum(f.replies["F99"] for f in flooders) == 5 + 20
            assert sum(f.replies["T03"] for f in flooders) == 4 + 4
            assert (s.stream_server.budgeted(Kind.PULL), s.stream_server.budgeted(Kind.PUSH)) == (5, 20)

            outcome = await pull(payee_pointer, 2500, btp_url=at_connector("payee"))
            assert outcome.complete and outcome.amount == 2500
    finally:
        await connector.stop()


class SharedLinkPulls:
    """Pulls over STREAM connections of their own on one BTP link (one account): each connection's address is
    the link's plus a suffix, so the endpoint routes the server's Prepares to this link, and here to it."""

    def __init__(self, link: BtpClient, address: str) -> None:
        self._link = link
        self._address = address
        self._runners: dict[str, ConnectionRunner] = {}
        self._gates: dict[str, asyncio.Event] = {}
        self.held = Counter[str]()  # Prepares waiting at a gate, per connection address
        self._held_changed = asyncio.Condition()
        link.set_handler(self._route)

    async def _route(self, prepare: ilp.Prepare) -> ilp.Fulfill | ilp.Reject:
        runner = self._runners.get(prepare.destination)
        if runner is None:
            return ilp.Reject(ilp.ErrorCode.F02_UNREACHABLE, self._address, "", b"")
        gate = self._gates.get(prepare.destination)
        if gate is not None and not gate.is_set():
            async with self._held_changed:
                self.held[prepare.destination] += 1
                self._held_changed.notify_all()
            await gate.wait()
        return runner.handle_prepare(prepare)

    def hold(self, index: int) -> str:
        """Hold the server's Prepares to connection `index` unanswered until `release`; its address."""
        local = list(self._runners)[index]
        self._gates[local] = asyncio.Event()
        return local

    def release(self, local: str) -> None:
        self._gates[local].set()

    async def wait_held(self, local: str, count: int) -> None:
        async with self._held_changed:
            await self._held_changed.wait_for(lambda: self.held[local] >= count)

    async def start(self, http: aiohttp.ClientSession, url: str, amount: int) -> Received:
        details = await query(url, session=http)
        local = f"{self._address}.c{len(self._runners)}"
        connection = StreamConnection(
            keys=StreamKeys(details.shared_secret),
            is_server=False,
            local_address=local,
            remote_address=details.destination_account,
            asset=AssetDetails("XRP", 9),
            now=datetime.now(UTC),
        )
        received = Received(amount)
        runner = ConnectionRunner(connection, self._link, on_events=received.on_events)
        self._runners[local] = runner
        connection.set_receive_max(connection.open_stream(), amount)
        runner.start()
        return received

    async def close(self) -> None:
        for runner in self._runners.values():
            runner.connection.close()
            runner.kick()
        for runner in self._runners.values():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(WAIT):
                    await runner.wait_closed()
            await runner.stop()


@dataclass
class Received:
    """What one pull received; `ended` once it has all it asked for, or the stream or connection closed."""

    wanted: int
    amount: int = 0
    detail: str = ""
    flowing: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def changed(self) -> None:
        """Until more money arrives."""
        self._arrived.clear()
        await self._arrived.wait()

    def on_events(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, MoneyReceived):
                self.amount += event.amount
                self._arrived.set()
                if self.amount >= 100_000:
                    self.flowing.set()
                if self.amount >= self.wanted:
                    self.ended.set()
            elif isinstance(event, StreamClosed | ConnectionClosed):
                self.detail = self.detail or event.message
                self.ended.set()


async def test_a_pull_evicted_mid_flight_is_debited_exactly_what_it_delivered(tmp_path: Path) -> None:
    """Two pulls fill the pull places; the payee holds one's Prepares, so that one falls idle, and a newcomer
    takes its place while its Prepares are in flight. That pull ends early; everything it delivered is
    debited, nothing more, and the ledger audits clean."""
    limits = ConnectionLimits(pull=2, push=20, per_account=5, evict_idle_after=timedelta(seconds=5))
    amount = 5_000_000
    config = Config(
        port=0,
        btp_port=0,
        data_dir=tmp_path,
        auth_token=ADMIN,
        connection_limits=limits,
        max_packet_amount=1000,
    )
    clock = AheadClock()
    async with (
        running(config, clock=clock, announce=lambda _line: None) as server,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT)) as http,
        AsyncExitStack() as stack,
    ):
        s = Setup(server, http, clock, stack)
        urls = [await s.pointer(str(amount)) for _ in range(3)]
        link = await stack.enter_async_context(BtpClient(s.btp_url("payee"), reconnect=False))
        address = (await link.ildcp()).client_address
        payee = SharedLinkPulls(link, address)
        stack.push_async_callback(payee.close)
        pulls = [await payee.start(http, urls[i], amount) for i in range(2)]
        async with asyncio.timeout(WAIT):
            await asyncio.gather(*(p.flowing.wait() for p in pulls))
            held = payee.hold(0)
            await payee.wait_held(held, IN_FLIGHT)  # the server's window is full: nothing more from it
            other_had = pulls[1].amount
            while pulls[1].amount < other_had + 10 * 1000:  # the other pull is active since
                await pulls[1].changed()
        clock.ahead = limits.evict_idle_after
        newcomer = await s.account("newcomer")
        assert await newcomer.open(http, urls[2]) == "F99"
        payee.release(held)
        async with asyncio.timeout(4 * WAIT):
            await asyncio.gather(*(p.ended.wait() for p in pulls))
        assert s.counter("spsp_pull_stream_connections_evicted_total", Kind.PULL) == 1
        cut = pulls[0]
        assert 100_000 <= cut.amount < amount and "room for another connection" in cut.detail, cut
        assert pulls[1].amount == amount
        delivered = {urls[i]: pulls[i].amount for i in range(2)}
    # The server has stopped, which waits for every pull to settle.
    db = Database(config.resolved_database_url())
    try:
        assert (await audit_ledger(db, now=datetime.now(UTC))).clean
        for url, amount_delivered in delivered.items():
            record = await pointers.find_by_token(db, url.rsplit("/", 1)[1])
            assert record is not None
            assert (record.usage.pulled_total, record.reserved_total) == (amount_delivered, 0)
    finally:
        await db.close()
