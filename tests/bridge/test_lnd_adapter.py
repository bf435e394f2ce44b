from __future__ import annotations

import asyncio
import base64
import hashlib
import ssl
from datetime import timedelta
from urllib.parse import quote

import aiohttp
import pytest
import trustme

from spsp_pull.bridge.backends.errors import BackendAuthError, BackendUnavailable
from spsp_pull.bridge.backends.lightning import LightningNode, NodeInvoice, PaymentProof
from spsp_pull.bridge.backends.lnd import NOT_INITIATED, Lnd, LndConfig, LndError
from spsp_pull.bridge.backends.outcomes import Failed, Succeeded, Unknown
from spsp_pull.bridge.destinations import LightningDestination, parse_destination
from spsp_pull.bridge.network import Network
from tests.bridge import factories
from tests.bridge.fakes.fake_lnd import FakeLnd, Script

ISSUED = int(factories.NOW.timestamp()) - 60
LIMIT = timedelta(seconds=30)
FEE_LIMIT = 5_000


def node(session: aiohttp.ClientSession, lnd: FakeLnd, *, timeout: timedelta = timedelta(seconds=2)) -> Lnd:
    return Lnd(session, LndConfig(lnd.base_url, lnd.state.macaroon_hex, timeout=timeout))


def invoice(
    lnd: FakeLnd, seed: str, script: Script | None = None, amount_msat: int | None = 10_000
) -> tuple[str, bytes]:
    preimage = factories.preimage(seed)
    payment_hash = lnd.expect(preimage, script)
    text = factories.invoice(
        Network.REGTEST, timestamp=ISSUED, amount_msat=amount_msat, payment_preimage=preimage
    )
    return text, payment_hash


def proof(seed: str, value_msat: int = 10_000, fee_msat: int = 1_000) -> Succeeded[PaymentProof]:
    return Succeeded(PaymentProof(factories.preimage(seed), value_msat, fee_msat))


@pytest.mark.parametrize(
    ("currency", "network"), [("bcrt", Network.REGTEST), ("tb", Network.TEST), ("bc", Network.MAIN)]
)
async def test_the_network_comes_from_getinfo(
    session: aiohttp.ClientSession, currency: str, network: Network
) -> None:
    fake = FakeLnd(currency=currency)
    await fake.start()
    try:
        backend: LightningNode = node(session, fake)
        assert await backend.network() is network
    finally:
        await fake.stop()


async def test_a_wrong_macaroon_is_an_auth_error(session: aiohttp.ClientSession, lnd: FakeLnd) -> None:
    wrong = Lnd(session, LndConfig(lnd.base_url, "0201ff"))
    with pytest.raises(BackendAuthError):
        await wrong.network()
    text, payment_hash = invoice(lnd, "auth")
    with pytest.raises(BackendAuthError):
        await wrong.pay(text, payment_hash, fee_limit_msat=FEE_LIMIT, time_limit=LIMIT)
    assert lnd.state.payments == {}


def test_the_config_checks_the_macaroon_and_hides_secrets() -> None:
    with pytest.raises(ValueError, match="hex"):
        LndConfig("https://127.0.0.1:8080", "not hex")
    config = LndConfig("https://127.0.0.1:8080", "0201036c6e64", b"-----BEGIN CERTIFICATE-----")
    assert "0201036c6e64" not in repr(config)
    assert "CERTIFICATE" not in repr(config)


async def test_the_node_decodes_invoices_as_we_do(session: aiohttp.ClientSession, lnd: FakeLnd) -> None:
    text, payment_hash = invoice(lnd, "decode", amount_msat=123_000)
    ours = parse_destination(text, Network.REGTEST, now=factories.NOW)
    assert isinstance(ours, LightningDestination)
    decoded = await node(session, lnd).decode_invoice(text)
    assert decoded == NodeInvoice(payment_hash, 123_000, ours.expires_at, factories.payee_pubkey())
    with pytest.raises(LndError) as refused:
        await node(session, lnd).decode_invoice(factories.invoice(Network.MAIN, timestamp=ISSUED))
    assert (refused.value.http_status, refused.value.code) == (500, 2)


async def test_a_payment_succeeds_with_a_matching_preimage(
    session: aiohttp.ClientSession, lnd: FakeLnd
) -> None:
    adapter = node(session, lnd)
    text, payment_hash = invoice(lnd, "paid")
    before = await adapter.outbound_msat()
    assert await adapter.pay(text, payment_hash, fee_limit_msat=FEE_LIMIT, time_limit=LIMIT) == proof("paid")
    assert lnd.state.send_requests[-1] == {
        "payment_request": text,
        "fee_limit_msat": "5000",
        "timeout_seconds": 30,
        "no_inflight_updates": True,
    }
    assert await adapter.outbound_msat() == before - 11_000
    assert lnd.settled(payment_hash) == 1


async def test_an_amountless_invoice_is_paid_with_the_given_amount(
    session: aiohttp.ClientSession, lnd: FakeLnd
) -> None:
    text, payment_hash = invoice(lnd, "open", amount_msat=None)
    outcome = await node(session, lnd).pay(
        text, payment_hash, fee_limit_msat=FEE_LIMIT, time_limit=LIMIT, amount_msat=7_000
    )
    assert outcome == proof("open", value_msat=7_000)
    assert lnd.state.send_requests[-1]["amt_msat"] == "7000"


@pytest.mark.parametrize(
    "reason",
    [
        "FAILURE_REASON_TIMEOUT",
        "FAILURE_REASON_NO_ROUTE",
        "FAILURE_REASON_ERROR",
        "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS",
        "FAILURE_REASON_INSUFFICIENT_BALANCE",
        "FAILURE_REASON_CANCELED",
    ],
)
async def test_a_failed_payment_carries_its_reason(
    session: aiohttp.ClientSession, lnd: FakeLnd, reason: str
) -> None:
    text, payment_hash = invoice(lnd, reason, Script(result="fail", failure_reason=reason))
    assert await node(session, lnd).pay(
        text, payment_hash, fee_limit_msat=FEE_LIMIT, time_limit=LIMIT
    ) == Failed(reason)
    assert lnd.settled(payment_hash) == 0


async def test_the_fee_limit_is_never_zero(session: aiohttp.ClientSession, lnd: FakeLnd) -> None:
    adapter = node(session, lnd)
    text, payment_hash = invoice(lnd, "fees", Script(fee_msat=2_000))
    with pytest.raises(ValueError, match="fee limit"):
        await adapter.pay(text, payment_hash, fee_limit_msat=0, time_limit=LIMIT)
    assert lnd.state.send_requests == []
    too_low = await adapter.pay(text, payment_hash, fee_limit_msat=1_999, time_limit=LIMIT)
    assert too_low == Failed("FAILURE_REASON_NO_ROUTE")


async def test_paying_a_hash_twice_pays_once_and_returns_the_proof(
    session: aiohttp.ClientSession, lnd: FakeLnd
) -> None:
    adapter = node(session, lnd)
    text, payment_hash = invoice(lnd, "twice")
    for _ in range(3):
        assert await adapter.pay(text, payment_hash, fee_limit_msat=FEE_LIMIT, time_limit=LIMIT) == proof(
            "twice"
        )
    assert lnd.settled(payment_hash) == 1
    assert len(lnd.state.send_requests) == 3


async def test_a_failed_payment_may_be_tried_again(session: aiohttp.ClientSession, lnd: FakeLnd) -> None:
    adapter = node(session, lnd)
    text, payment_hash = invoice(lnd, "retry", Script(result="fail"))
    assert isinstance(
        await adapter.pay(text, payment_hash, fee_limit_msat=FEE_LIMIT, time_limit=LIMIT), Failed
    )
    lnd.state.scripts[payment_hash.hex()] = Script()
    assert await adapter.pay(text, payment_hash, fee_limit_msat=FEE_LIMIT, time_limit=LIMIT) == proof("retry")


async def test_a_stream_that_ends_in_flight_is_unknown_until_tracked(
    session: aiohttp.ClientSession, lnd: FakeLnd
) -> None:
    adapter = node(session, lnd)
    text, payment_hash = invoice(lnd, "hang", Script(result="in_flight"))
    assert isinstance(
        await adapter.pay(text, payment_hash, fee_limit_msat=FEE_LIMIT, time_limit=LIMIT), Unknown
    )
    assert isinstance(await adapter.track(payment_hash, wait=timedelta(0)), Unknown)
    again = await adapter.pay(text, payment_hash, fee_limit_msat=FEE_LIMIT, time_limit=LIMIT)
    assert isinstance(again, Unknown)  # "payment is in transition"
    follows = lnd.follows(payment_hash)
    waiting = asyncio.ensure_future(adapter.track(payment_hash, wait=timedelta(seconds=5)))
    await asyncio.wait_for(lnd.followed(payment_hash, follows + 1), 5)
    assert not waiting.done()
    lnd.settle(payment_hash)
    assert await asyncio.wait_for(waiting, 5) == proof("hang")
    assert lnd.settled(payment_hash) == 1


async def test_a_dropped_stream_is_unknown_and_tracking_finds_the_payment(
    session: aiohttp.ClientSession, lnd: FakeLnd
) -> None:
    adapter = node(session, lnd)
    text, payment_hash = invoice(lnd, "drop", Script(delivery="drop"))
    outcome = await adapter.pay(text, payment_hash, fee_limit_msat=FEE_LIMIT, time_limit=LIMIT)
    assert isinstance(outcome, Unknown) and "lost" in outcome.detail
    assert await adapter.track(payment_hash, wait=timedelta(seconds=1)) == proof("drop")
    assert lnd.settled(payment_hash) == 1


async def test_a_time_out_after_the_payment_is_unknown_and_tracking_finds_it(
    session: aiohttp.ClientSession, lnd: FakeLnd
) -> None:
    adapter = node(session, lnd, timeout=timedelta(seconds=0.3))
    text, payment_hash = invoice(lnd, "stall", Script(delivery="stall"))
    outcome = await adapter.pay(text, payment_hash, fee_limit_msat=FEE_LIMIT, time_limit=timedelta(seconds=1))
    assert isinstance(outcome, Unknown)
    assert await adapter.track(payment_hash, wait=timedelta(seconds=1)) == proof("stall")


async def test_an_unknown_hash_was_never_paid(session: aiohttp.ClientSession, lnd: FakeLnd) -> None:
    outcome = await node(session, lnd).track(hashlib.sha256(b"never").digest(), wait=timedelta(seconds=1))
    assert outcome == Failed(NOT_INITIATED, "payment isn't initiated")


async def test_a_refused_payment_is_a_failure(session: aiohttp.ClientSession, lnd: FakeLnd) -> None:
    mainnet = factories.invoice(Network.MAIN, timestamp=ISSUED, amount_msat=10_000)
    outcome = await node(session, lnd).pay(
        mainnet,
        hashlib.sha256(factories.preimage("default")).digest(),
        fee_limit_msat=FEE_LIMIT,
        time_limit=LIMIT,
    )
    assert isinstance(outcome, Failed) and outcome.reason == "refused"
    assert "network" in outcome.detail


async def test_payments_survive_a_node_restart(session: aiohttp.ClientSession, lnd: FakeLnd) -> None:
    adapter = node(session, lnd)
    text, payment_hash = invoice(lnd, "restart", Script(result="in_flight"))
    assert isinstance(
        await adapter.pay(text, payment_hash, fee_limit_msat=FEE_LIMIT, time_limit=LIMIT), Unknown
    )
    await lnd.restart()
    assert isinstance(await adapter.track(payment_hash, wait=timedelta(0)), Unknown)
    lnd.settle(payment_hash)
    assert await adapter.track(payment_hash, wait=timedelta(seconds=1)) == proof("restart")
    assert await adapter.pay(text, payment_hash, fee_limit_msat=FEE_LIMIT, time_limit=LIMIT) == proof(
        "restart"
    )
    assert lnd.settled(payment_hash) == 1


async def test_the_node_is_unreachable(session: aiohttp.ClientSession, lnd: FakeLnd) -> None:
    adapter = node(session, lnd)
    text, payment_hash = invoice(lnd, "down")
    await lnd.stop()
    with pytest.raises(BackendUnavailable):
        await adapter.network()
    assert isinstance(
        await adapter.pay(text, payment_hash, fee_limit_msat=FEE_LIMIT, time_limit=LIMIT), Unknown
    )


async def test_the_tls_certificate_is_pinned(session: aiohttp.ClientSession) -> None:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    fake = FakeLnd(ssl_context=server_context)
    await fake.start()
    try:
        pinned = LndConfig(fake.base_url, fake.state.macaroon_hex, authority.cert_pem.bytes())
        assert await Lnd(session, pinned).network() is Network.REGTEST
        unpinned = LndConfig(fake.base_url, fake.state.macaroon_hex, timeout=timedelta(seconds=2))
        with pytest.raises(BackendUnavailable):
            await Lnd(session, unpinned).network()
    finally:
        await fake.stop()


async def test_the_fake_tracks_by_either_base64_alphabet(
    session: aiohttp.ClientSession, lnd: FakeLnd
) -> None:
    seed = next(
        s
        for s in map(str, range(100))
        if set("+/") & set(base64.b64encode(lnd.expect(factories.preimage(s))).decode())
    )
    text, payment_hash = invoice(lnd, seed)
    assert await node(session, lnd).pay(
        text, payment_hash, fee_limit_msat=FEE_LIMIT, time_limit=LIMIT
    ) == proof(seed)
    headers = {"Grpc-Metadata-macaroon": lnd.state.macaroon_hex}
    for encoded in (
        base64.urlsafe_b64encode(payment_hash).decode(),
        quote(base64.b64encode(payment_hash).decode(), safe=""),
    ):
        async with session.get(f"{lnd.base_url}/v2/router/track/{encoded}", headers=headers) as response:
            assert response.status == 200
            assert (await response.json())["result"]["status"] == "SUCCEEDED"
