"""ILP over HTTP between two links, each behind a real aiohttp server on loopback."""

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from stream import ilp
from stream.aio.ilp_over_http import IlpOverHttp
from tests.interop.harness import free_port
from tests.stream.aio.helpers import Recorder, codes, fulfills, hang, prepare_to, round_trips

ALICE, BOB = "private.alice", "private.bob"


async def serve(link: IlpOverHttp) -> TestServer:
    app = web.Application()
    app.router.add_post("/ilp", link.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.fixture
async def bob() -> AsyncIterator[tuple[IlpOverHttp, str]]:
    """Bob's link (it accepts the token "to-bob") and the URL of its route."""
    link = IlpOverHttp("http://127.0.0.1:1/unused", address=BOB, incoming_token="to-bob")
    server = await serve(link)
    yield link, str(server.make_url("/ilp"))
    await server.close()
    await link.close()


@pytest.fixture
async def alice(bob: tuple[IlpOverHttp, str]) -> AsyncIterator[IlpOverHttp]:
    async with IlpOverHttp(bob[1], address=ALICE, outgoing_token="to-bob") as link:
        yield link


async def test_prepare_round_trip(alice: IlpOverHttp, bob: tuple[IlpOverHttp, str]) -> None:
    handler = Recorder()
    bob[0].set_handler(handler)
    prepare = prepare_to(f"{BOB}.x", amount=77, tag=b"over http")

    reply = await alice.send(prepare)

    assert fulfills(prepare, reply)
    assert handler.seen == [prepare]


async def test_thousand_round_trips(alice: IlpOverHttp, bob: tuple[IlpOverHttp, str]) -> None:
    bob[0].set_handler(Recorder())

    await round_trips(alice.send, f"{BOB}.x", 1000, 20, "ILP over HTTP")


async def test_failures_become_rejects(bob: tuple[IlpOverHttp, str]) -> None:
    bob[0].set_handler(hang)
    async with (
        IlpOverHttp(bob[1], address=ALICE, outgoing_token="to-bob") as good,
        IlpOverHttp(bob[1], address=ALICE, outgoing_token="wrong") as bad_token,
        IlpOverHttp(f"http://127.0.0.1:{free_port()}/ilp", address=ALICE) as nowhere,
    ):
        replies = [
            await good.send(prepare_to(f"{BOB}.x", expires_in=0.3)),
            await good.send(prepare_to(f"{BOB}.x", expires_in=-1)),
            await bad_token.send(prepare_to(f"{BOB}.x")),
            await nowhere.send(prepare_to(f"{BOB}.x")),
        ]

    assert codes(replies) == ["R00", "R00", "F00", "T01"]
    # Bob's handler runs out of time first and answers R00 himself, just before the Prepare expires.
    assert [r.triggered_by for r in replies if isinstance(r, ilp.Reject)] == [BOB, ALICE, ALICE, ALICE]


async def test_route_refuses_what_is_not_a_prepare(bob: tuple[IlpOverHttp, str]) -> None:
    headers = {"Authorization": "Bearer to-bob"}
    async with aiohttp.ClientSession() as session:
        async with session.post(bob[1], data=b"\x0d\x00", headers=headers) as response:
            assert response.status == 400
        async with session.post(bob[1], data=b"x" * 50_000, headers=headers) as response:
            assert response.status == 413
        async with session.post(bob[1], data=ilp.encode(prepare_to(f"{BOB}.x")), headers=headers) as response:
            assert response.status == 200
            reply = ilp.decode_reply(await response.read())
    assert isinstance(reply, ilp.Reject)
    assert (reply.code, reply.triggered_by) == ("F02", BOB)
