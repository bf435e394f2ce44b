"""BtpServer byte by byte, driven by a bare websocket (what any BTP client may send)."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from stream import btp, ildcp, ilp
from stream.aio.btp_server import BtpServer
from tests.stream.aio.helpers import SERVER_ADDRESS, echo, prepare_to

AUTH_ALICE = bytes.fromhex(
    "0600000001310103046175746800000d617574685f757365726e616d650105616c6963650a617574685f746f6b656e0106736563726574"
)


@pytest.fixture
async def ws(server: BtpServer) -> AsyncIterator[ClientConnection]:
    async with connect(f"ws://127.0.0.1:{server.port}", compression=None) as conn:
        yield conn


async def authenticate(ws: ClientConnection) -> None:
    await ws.send(AUTH_ALICE)
    assert await ws.recv() == bytes.fromhex("01000000010201" + "00")


async def exchange(ws: ClientConnection, packet: btp.BtpPacket) -> btp.BtpPacket:
    await ws.send(btp.encode(packet))
    answer = await ws.recv()
    assert isinstance(answer, bytes)
    return btp.decode(answer)


async def test_auth_is_accepted_with_an_empty_response(ws: ClientConnection, server: BtpServer) -> None:
    await authenticate(ws)

    assert server.accounts() == {"alice"}


async def test_first_frame_that_is_not_auth_is_refused(ws: ClientConnection) -> None:
    answer = await exchange(ws, btp.ilp_message(7, ilp.encode(prepare_to(f"{SERVER_ADDRESS}.x"))))

    assert isinstance(answer, btp.Error)
    assert (answer.request_id, answer.code, answer.name) == (7, "F00", "NotAcceptedError")
    with pytest.raises(ConnectionClosed):
        await ws.recv()


async def test_ildcp_inside_btp(ws: ClientConnection) -> None:
    await authenticate(ws)
    request = ildcp.request_prepare(datetime.now(UTC) + timedelta(seconds=60))

    answer = await exchange(ws, btp.ilp_message(42, ilp.encode(request)))

    assert isinstance(answer, btp.Response)
    assert answer.request_id == 42
    payload = btp.ilp_payload(answer)
    assert payload is not None
    assert ildcp.decode_response(payload) == ildcp.IldcpResponse(f"{SERVER_ADDRESS}.alice", 9, "XRP")


async def test_prepare_that_arrives_expired_is_rejected_r00(ws: ClientConnection, server: BtpServer) -> None:
    server.set_handler(echo)
    await authenticate(ws)

    answer = await exchange(
        ws, btp.ilp_message(5, ilp.encode(prepare_to(f"{SERVER_ADDRESS}.x", expires_in=-1)))
    )

    payload = btp.ilp_payload(answer)
    assert payload is not None
    reject = ilp.decode_reply(payload)
    assert isinstance(reject, ilp.Reject)
    assert (reject.code, reject.triggered_by) == ("R00", SERVER_ADDRESS)


async def test_invalid_ilp_packet_is_rejected_f01(ws: ClientConnection) -> None:
    await authenticate(ws)

    answer = await exchange(ws, btp.ilp_message(5, b"\x0c\x01\x00"))

    payload = btp.ilp_payload(answer)
    assert payload is not None
    assert ilp.decode_reply(payload) == ilp.Reject("F01", SERVER_ADDRESS, "invalid ILP Prepare")


@pytest.mark.parametrize(
    ("packet", "message"),
    [
        (btp.Message(9, (btp.ProtocolDataEntry("custom", 0, b"x"),)), "no ilp protocol data"),
        (btp.Transfer(9, 100), "transfers are not supported"),
    ],
)
async def test_other_requests_get_a_btp_error(
    ws: ClientConnection, packet: btp.BtpPacket, message: str
) -> None:
    await authenticate(ws)

    answer = await exchange(ws, packet)

    assert isinstance(answer, btp.Error)
    assert (answer.request_id, answer.code, answer.data) == (9, "F00", message)


async def test_unreadable_frame_closes_the_connection(ws: ClientConnection, server: BtpServer) -> None:
    await authenticate(ws)

    await ws.send(b"\x63\x00")

    with pytest.raises(ConnectionClosed):
        await ws.recv()


@pytest.mark.parametrize(
    ("username", "token", "reason"),
    [
        ("a.b", "secret", "account name is not an ILP address segment"),
        ("alice", "", "auth_token is required"),
    ],
)
async def test_unusable_credentials_are_refused(
    ws: ClientConnection, server: BtpServer, username: str, token: str, reason: str
) -> None:
    answer = await exchange(ws, btp.auth_message(3, username, token))

    assert isinstance(answer, btp.Error)
    assert (answer.code, answer.name, answer.data) == ("F00", "NotAcceptedError", reason)
    assert server.accounts() == frozenset()
