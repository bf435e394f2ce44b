"""What a sender accepts as the answer to its Prepare: a Fulfill only in time and with the right
fulfillment. Every link (BTP client, BTP server, ILP over HTTP) refuses the others, so a sender never counts
them as paid."""

from datetime import timedelta

import pytest

from stream import ilp
from stream.aio.btp_server import BtpServer
from stream.aio.plugin import accept_reply
from tests.stream.aio.conftest import ClientFactory
from tests.stream.aio.helpers import SERVER_ADDRESS, echo, prepare_to

SENDER = "private.sender"


async def wrong_fulfillment(prepare: ilp.Prepare) -> ilp.Fulfill | ilp.Reject:
    return ilp.Fulfill(bytes(32), prepare.data)


def test_a_matching_fulfill_before_expiry_is_accepted() -> None:
    prepare = prepare_to("private.peer")
    fulfill = ilp.Fulfill(prepare.data[:32], b"")
    assert accept_reply(prepare, fulfill, SENDER, prepare.expires_at - timedelta(milliseconds=1)) is fulfill


@pytest.mark.parametrize("after", [timedelta(0), timedelta(milliseconds=1), timedelta(hours=1)])
def test_a_fulfill_at_or_after_expiry_is_refused_r00(after: timedelta) -> None:
    prepare = prepare_to("private.peer")
    reply = accept_reply(prepare, ilp.Fulfill(prepare.data[:32], b""), SENDER, prepare.expires_at + after)
    assert isinstance(reply, ilp.Reject)
    assert (reply.code, reply.triggered_by) == ("R00", SENDER)


def test_a_fulfill_not_matching_the_condition_is_refused_f05() -> None:
    prepare = prepare_to("private.peer")
    reply = accept_reply(prepare, ilp.Fulfill(bytes(32), b""), SENDER)
    assert isinstance(reply, ilp.Reject) and reply.code == "F05"


def test_rejects_pass_unchanged() -> None:
    prepare = prepare_to("private.peer")
    rejected = ilp.Reject("F99", "private.peer", "no", b"data")
    assert accept_reply(prepare, rejected, SENDER, prepare.expires_at + timedelta(hours=1)) is rejected


async def test_btp_client_refuses_a_wrong_fulfillment_from_the_server(
    server: BtpServer, clients: ClientFactory
) -> None:
    server.set_handler(wrong_fulfillment)
    client = await clients(server.url("alice", "secret-a"))

    reply = await client.send(prepare_to(f"{SERVER_ADDRESS}.local"))

    assert isinstance(reply, ilp.Reject) and reply.code == "F05"


async def test_btp_server_refuses_a_wrong_fulfillment_from_a_client(
    server: BtpServer, clients: ClientFactory
) -> None:
    client = await clients(server.url("alice", "secret-a"))
    client.set_handler(wrong_fulfillment)

    reply = await server.send(prepare_to(f"{SERVER_ADDRESS}.alice"))

    assert isinstance(reply, ilp.Reject)
    assert (reply.code, reply.triggered_by) == ("F05", SERVER_ADDRESS)
    client.set_handler(echo)
    assert isinstance(await server.send(prepare_to(f"{SERVER_ADDRESS}.alice")), ilp.Fulfill)
