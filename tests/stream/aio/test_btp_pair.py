"""BtpClient against BtpServer over real loopback websockets."""

import asyncio
from datetime import timedelta

import pytest

from harness.js_stack import free_port
from stream import ildcp, ilp
from stream.aio.accounts import account_name
from stream.aio.btp_client import BtpAuthError, BtpClient, BtpConnectError, LinkState
from stream.aio.btp_server import BtpServer
from stream.aio.plugin import IlpLink
from tests.stream.aio.conftest import ClientFactory
from tests.stream.aio.helpers import (
    ASSET,
    SERVER_ADDRESS,
    Recorder,
    codes,
    echo,
    fulfills,
    hang,
    prepare_to,
    round_trips,
)

LOCAL = f"{SERVER_ADDRESS}.local.receiver"
HANG_GUARD = 10.0  # seconds: only stops a test that would hang; nothing is timed


# --- authentication ----------------------------------------------------------------------------------------


async def test_client_authenticates_and_gets_an_account(server: BtpServer, clients: ClientFactory) -> None:
    client = await clients(server.url("alice", "secret-a"))

    assert client.connected.is_set()
    assert client.state is LinkState.CONNECTED
    assert server.accounts() == {"alice"}


async def test_other_token_for_a_pinned_username_is_refused(
    server: BtpServer, clients: ClientFactory
) -> None:
    first = await clients(server.url("alice", "secret-a"))
    await first.close()

    with pytest.raises(BtpAuthError, match="F00 NotAcceptedError"):
        await clients(server.url("alice", "another"))
    again = await clients(server.url("alice", "secret-a"))
    assert again.connected.is_set()


async def test_custom_authenticate_chooses_the_account(clients: ClientFactory) -> None:
    async def authenticate(username: str, token: str) -> str | None:
        return f"acct-{username}" if token == "good" else None

    async with BtpServer(SERVER_ADDRESS, ASSET, authenticate=authenticate) as server:
        client = await clients(server.url("bob", "good"))
        info = await client.ildcp()
        with pytest.raises(BtpAuthError):
            await clients(server.url("bob", "bad"))

    assert info.client_address == f"{SERVER_ADDRESS}.acct-bob"


async def test_unreachable_server_raises_connect_error() -> None:
    """Without reconnects the first refusal is the answer; with them, the connect timeout ends the retries
    (HANG_GUARD only stops a client that would retry for ever)."""
    url = f"btp+ws://alice:secret@127.0.0.1:{free_port()}"

    with pytest.raises(BtpConnectError):
        await asyncio.wait_for(BtpClient(url, reconnect=False).connect(), HANG_GUARD)
    with pytest.raises(BtpConnectError):
        await asyncio.wait_for(
            BtpClient(url, connect_timeout=timedelta(milliseconds=400)).connect(), HANG_GUARD
        )


# --- IL-DCP ------------------------------------------------------------------------------------------------


async def test_ildcp_gives_the_account_address_and_asset(server: BtpServer, clients: ClientFactory) -> None:
    client = await clients(server.url("alice", "secret-a"))

    info = await client.ildcp()

    assert info == ildcp.IldcpResponse(f"{SERVER_ADDRESS}.alice", asset_scale=9, asset_code="XRP")
    assert client.address == f"{SERVER_ADDRESS}.alice"


async def test_account_without_username_is_the_token_hash(server: BtpServer, clients: ClientFactory) -> None:
    client = await clients(server.url("", "only-a-token"))

    info = await client.ildcp()

    assert info.client_address == f"{SERVER_ADDRESS}.{account_name('', 'only-a-token')}"
    assert server.accounts() == {account_name("", "only-a-token")}


# --- Prepares ----------------------------------------------------------------------------------------------


async def test_prepare_from_client_reaches_the_local_handler(
    server: BtpServer, clients: ClientFactory
) -> None:
    handler = Recorder()
    server.set_handler(handler)
    client = await clients(server.url("alice", "secret-a"))
    prepare = prepare_to(LOCAL, amount=1234, tag=b"hello")

    reply = await client.send(prepare)

    assert fulfills(prepare, reply)
    assert handler.seen == [prepare]


async def test_prepare_from_server_reaches_the_client_handler(
    server: BtpServer, clients: ClientFactory
) -> None:
    client = await clients(server.url("alice", "secret-a"))
    handler = Recorder()
    client.set_handler(handler)
    prepare = prepare_to(f"{SERVER_ADDRESS}.alice.stream-1", tag=b"x")

    reply = await server.send(prepare)

    assert fulfills(prepare, reply)
    assert handler.seen == [prepare]


async def test_prepares_are_forwarded_between_clients(server: BtpServer, clients: ClientFactory) -> None:
    alice = await clients(server.url("alice", "secret-a"))
    bob = await clients(server.url("bob", "secret-b"))
    alice.set_handler(echo)
    bob.set_handler(echo)
    to_bob = prepare_to(f"{SERVER_ADDRESS}.bob.x")
    to_alice = prepare_to(f"{SERVER_ADDRESS}.alice")

    assert fulfills(to_bob, await alice.send(to_bob))
    assert fulfills(to_alice, await bob.send(to_alice))


async def test_latest_connection_of_an_account_gets_its_prepares(
    server: BtpServer, clients: ClientFactory
) -> None:
    older, newer = Recorder(), Recorder()
    (await clients(server.url("alice", "secret-a"))).set_handler(older)
    (await clients(server.url("alice", "secret-a"))).set_handler(newer)
    prepare = prepare_to(f"{SERVER_ADDRESS}.alice")

    assert fulfills(prepare, await server.send(prepare))
    assert (older.seen, newer.seen) == ([], [prepare])


async def test_wrong_fulfillment_from_a_client_becomes_f05(server: BtpServer, clients: ClientFactory) -> None:
    async def wrong(prepare: ilp.Prepare) -> ilp.Fulfill | ilp.Reject:
        return ilp.Fulfill(bytes(32))

    alice = await clients(server.url("alice", "secret-a"))
    bob = await clients(server.url("bob", "secret-b"))
    bob.set_handler(wrong)

    reply = await alice.send(prepare_to(f"{SERVER_ADDRESS}.bob"))

    assert isinstance(reply, ilp.Reject)
    assert (reply.code, reply.triggered_by) == ("F05", SERVER_ADDRESS)


async def test_unroutable_destinations_are_rejected_f02(server: BtpServer, clients: ClientFactory) -> None:
    client = await clients(server.url("alice", "secret-a"))

    elsewhere = await client.send(prepare_to("g.elsewhere.bob"))
    no_handler = await client.send(prepare_to(LOCAL))
    no_client = await server.send(prepare_to(f"{SERVER_ADDRESS}.nobody"))

    for reply in (elsewhere, no_handler, no_client):
        assert isinstance(reply, ilp.Reject)
        assert (reply.code, reply.triggered_by) == ("F02", SERVER_ADDRESS)


async def test_client_without_handler_answers_with_a_btp_error(
    server: BtpServer, clients: ClientFactory
) -> None:
    await clients(server.url("alice", "secret-a"))

    reply = await server.send(prepare_to(f"{SERVER_ADDRESS}.alice"))

    assert isinstance(reply, ilp.Reject)
    assert reply.code == "T00"
    assert "NotAcceptedError" in reply.message


async def test_failing_handler_gives_t00(server: BtpServer, clients: ClientFactory) -> None:
    async def broken(prepare: ilp.Prepare) -> ilp.Fulfill | ilp.Reject:
        raise RuntimeError("boom")

    server.set_handler(broken)
    client = await clients(server.url("alice", "secret-a"))

    reply = await client.send(prepare_to(LOCAL))

    assert isinstance(reply, ilp.Reject)
    assert (reply.code, reply.message) == ("T00", "internal error")


# --- expiry, disconnects, reconnects -----------------------------------------------------------------------


async def test_slow_handlers_and_clients_time_out_with_r00(server: BtpServer, clients: ClientFactory) -> None:
    server.set_handler(hang)
    alice = await clients(server.url("alice", "secret-a"))
    bob = await clients(server.url("bob", "secret-b"))
    bob.set_handler(hang)

    # The handlers never answer: the R00s are the expiries (HANG_GUARD is far beyond them).
    replies = await asyncio.wait_for(
        asyncio.gather(
            alice.send(prepare_to(LOCAL, expires_in=0.3)),
            alice.send(prepare_to(f"{SERVER_ADDRESS}.bob", expires_in=0.3)),
            server.send(prepare_to(f"{SERVER_ADDRESS}.bob", expires_in=0.3)),
            alice.send(prepare_to(LOCAL, expires_in=-1)),
        ),
        HANG_GUARD,
    )

    assert codes(replies) == ["R00"] * 4


class Arrivals:
    """A handler that never answers, with an event set once `count` Prepares have reached it."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.arrived = 0
        self.all_in = asyncio.Event()

    async def __call__(self, prepare: ilp.Prepare) -> ilp.Fulfill | ilp.Reject:
        self.arrived += 1
        if self.arrived >= self.count:
            self.all_in.set()
        return await hang(prepare)


async def test_outstanding_sends_fail_fast_when_the_connection_drops(
    server: BtpServer, clients: ClientFactory
) -> None:
    arrivals = Arrivals(5)
    server.set_handler(arrivals)
    client = await clients(server.url("alice", "secret-a"), reconnect=False)
    # They expire long after HANG_GUARD: replies before it come from the dropped connection, not expiry.
    pending = asyncio.gather(*(client.send(prepare_to(LOCAL, expires_in=60)) for _ in range(5)))
    await asyncio.wait_for(arrivals.all_in.wait(), HANG_GUARD)

    await server.stop()
    replies = await asyncio.wait_for(pending, HANG_GUARD)

    assert codes(replies) == ["T01"] * 5
    assert client.state is LinkState.DISCONNECTED
    assert codes([await client.send(prepare_to(LOCAL))]) == ["T01"]


async def test_client_reconnects_after_the_server_restarts(clients: ClientFactory) -> None:
    port = free_port()
    first = BtpServer(SERVER_ADDRESS, ASSET, port=port)
    await first.start()
    client = await clients(first.url("alice", "secret-a"))
    await client.ildcp()
    client.set_handler(echo)

    await first.stop()
    await asyncio.wait_for(client.until(LinkState.RECONNECTING), HANG_GUARD)
    assert not client.connected.is_set()
    assert codes([await client.send(prepare_to(LOCAL))]) == ["T01"]

    async with BtpServer(SERVER_ADDRESS, ASSET, port=port) as second:
        second.set_handler(echo)
        await asyncio.wait_for(client.connected.wait(), HANG_GUARD)
        to_server = prepare_to(LOCAL)
        to_client = prepare_to(f"{SERVER_ADDRESS}.alice")
        assert fulfills(to_server, await client.send(to_server))
        assert fulfills(to_client, await second.send(to_client))
        assert client.address == f"{SERVER_ADDRESS}.alice"


async def test_client_stops_reconnecting_when_refused(clients: ClientFactory) -> None:
    async def refuse(username: str, token: str) -> str | None:
        return None

    port = free_port()
    async with BtpServer(SERVER_ADDRESS, ASSET, port=port) as first:
        client = await clients(first.url("alice", "secret-a"))
    async with BtpServer(SERVER_ADDRESS, ASSET, port=port, authenticate=refuse):
        refused = await asyncio.wait_for(client.until(LinkState.REFUSED, LinkState.DISCONNECTED), HANG_GUARD)

    assert refused is LinkState.REFUSED
    assert not client.connected.is_set()


async def test_reconnect_attempts_can_be_bounded(clients: ClientFactory) -> None:
    async with BtpServer(SERVER_ADDRESS, ASSET) as server:
        client = await clients(server.url("alice", "secret-a"), max_reconnect_attempts=2)
    given_up = await asyncio.wait_for(client.until(LinkState.DISCONNECTED, LinkState.REFUSED), HANG_GUARD)

    assert given_up is LinkState.DISCONNECTED


async def test_too_many_prepares_in_flight_are_rejected_busy(clients: ClientFactory) -> None:
    async with BtpServer(SERVER_ADDRESS, ASSET, max_incoming=3) as server:
        server.set_handler(hang)
        client = await clients(server.url("alice", "secret-a"))

        replies = await asyncio.gather(*(client.send(prepare_to(LOCAL, expires_in=0.5)) for _ in range(5)))

    assert sorted(codes(replies)) == ["R00", "R00", "R00", "T03", "T03"]


def test_transports_are_ilp_links(server: BtpServer) -> None:
    links: list[IlpLink] = [server, BtpClient(server.url("a", "b"))]

    assert len(links) == 2


async def test_close_leaves_no_tasks_behind() -> None:
    async with BtpServer(SERVER_ADDRESS, ASSET) as server:
        at_server, at_client = Arrivals(1), Arrivals(1)
        server.set_handler(at_server)
        client = BtpClient(server.url("alice", "secret-a"))
        await client.connect()
        client.set_handler(at_client)
        waiting = [
            asyncio.ensure_future(client.send(prepare_to(LOCAL, expires_in=30))),
            asyncio.ensure_future(server.send(prepare_to(f"{SERVER_ADDRESS}.alice", expires_in=30))),
        ]
        await asyncio.wait_for(asyncio.gather(at_server.all_in.wait(), at_client.all_in.wait()), HANG_GUARD)
        await client.close()
        replies = await asyncio.gather(*waiting)

    assert codes(replies) == ["T01", "T01"]
    assert client.state is LinkState.CLOSED
    await asyncio.sleep(0)
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


# --- many in flight (Prepares per second: bench/btp_links.py) ---------------------------------------------


@pytest.mark.parametrize("in_flight", [1, 50])
async def test_a_thousand_round_trips_each_way_are_all_fulfilled(
    server: BtpServer, clients: ClientFactory, in_flight: int
) -> None:
    server.set_handler(echo)
    client = await clients(server.url("alice", "secret-a"))
    client.set_handler(echo)

    await round_trips(client.send, LOCAL, 1000, in_flight)
    await round_trips(server.send, f"{SERVER_ADDRESS}.alice", 1000, in_flight)
