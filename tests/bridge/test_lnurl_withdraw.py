"""LNURL-withdraw (LUD-03) per pointer over HTTP: the withdrawRequest, then the callback paying the
wallet's invoice through the ordinary payout flow."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from embit import bech32

from spsp_pull.bridge.lnurl import encode_lnurl
from spsp_pull.bridge.network import Network
from spsp_pull.bridge.service import Bridge
from spsp_pull.domain.clock import ManualClock
from spsp_pull.store import payouts as store
from spsp_pull.store.database import Database
from tests.bridge import factories, harness
from tests.bridge.api_harness import PayoutApi, serve
from tests.bridge.fakes.fake_lnd import FakeLnd


@pytest.fixture
async def bridge(db: Database, bridge_clock: ManualClock, ln_node: FakeLnd) -> AsyncIterator[Bridge]:
    async with harness.running(harness.settings(lnd=ln_node), db, bridge_clock) as running:
        yield running


@pytest.fixture
async def api(db: Database, bridge_clock: ManualClock, bridge: Bridge) -> AsyncIterator[PayoutApi]:
    async with serve(db, bridge_clock, bridge) as served:
        yield served


def wallet_invoice(lnd: FakeLnd, seed: str, amount_msat: int | None) -> tuple[str, bytes]:
    preimage = factories.preimage(seed)
    payment_hash = lnd.expect(preimage)
    text = factories.invoice(
        Network.REGTEST,
        timestamp=int(factories.NOW.timestamp()),
        amount_msat=amount_msat,
        payment_preimage=preimage,
    )
    return text, payment_hash


async def withdraw_request(api: PayoutApi, token: str) -> dict[str, Any]:
    response = await api.client.get(f"/{token}/lnurlw")
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def callback(api: PayoutApi, request: dict[str, Any], **query: str) -> tuple[int, dict[str, Any]]:
    path = urlsplit(request["callback"]).path
    response = await api.client.get(path, params=query)
    return response.status, await response.json()


async def test_withdraw_request_then_callback_pays_the_invoice(
    api: PayoutApi, bridge: Bridge, ln_node: FakeLnd
) -> None:
    token = await api.pointer(amount="10000", description="Patronage")
    request = await withdraw_request(api, token)
    assert request["tag"] == "withdrawRequest" and request["defaultDescription"] == "Patronage"
    assert request["callback"] == f"https://pull.example/{token}/lnurlw/callback"
    assert len(request["k1"]) == 64 and request["minWithdrawable"] == 1_000
    # 100 USD = 200 000 sat; less the Lightning fee (1 000 msat + 0.5 %).
    assert request["maxWithdrawable"] == (200_000_000 - 1_000) * 1_000_000 // 1_005_000 == 199_003_980

    text, payment_hash = wallet_invoice(ln_node, "lnurl", 50_000_000)
    status, answer = await callback(api, request, k1=request["k1"], pr=text)
    assert (status, answer) == (200, {"status": "OK"})
    listed = await (await api.client.get(f"/{token}/payouts")).json()
    (payout,) = listed["items"]
    assert (
        payout["status"] == "QUEUED"
        and payout["createdBy"] == "lnurl"
        and payout["transferAmountMsat"] == "50000000"
    )
    await bridge.dispatch_lightning()
    assert ln_node.settled(payment_hash) == 1
    shown = await (await api.client.get(f"/{token}/payouts/{payout['payoutId']}")).json()
    assert shown["status"] == "SENT" and shown["proof"]["preimage"] == factories.preimage("lnurl").hex()

    again, _ = wallet_invoice(ln_node, "lnurl again", 1_000_000)
    status, refused = await callback(api, request, k1=request["k1"], pr=again)
    assert status == 400 and refused["status"] == "ERROR" and "already used" in refused["reason"]
    await harness.assert_reservations_closed(api.context.db)


async def test_callback_refusals(api: PayoutApi, bridge: Bridge, ln_node: FakeLnd) -> None:
    token = await api.pointer(amount="10000")
    request = await withdraw_request(api, token)
    too_much, _ = wallet_invoice(ln_node, "too much", request["maxWithdrawable"] + 1)
    amountless, _ = wallet_invoice(ln_node, "amountless", None)
    fine, _ = wallet_invoice(ln_node, "fine", 1_000_000)
    for query, reason in (
        ({"k1": request["k1"], "pr": too_much}, "between"),
        ({"k1": "00" * 32, "pr": fine}, "unknown k1"),
        ({"k1": request["k1"]}, "missing"),
    ):
        status, body = await callback(api, request, **query)
        assert status == 400 and body["status"] == "ERROR" and reason in body["reason"], body
    second = await withdraw_request(api, token)
    status, body = await callback(api, second, k1=second["k1"], pr=amountless)
    assert status == 400 and "amount" in body["reason"]
    third = await withdraw_request(api, token)
    api.clock.advance(bridge.settings.offer_ttl)
    status, body = await callback(api, third, k1=third["k1"], pr=fine)
    assert status == 400 and "expired" in body["reason"]
    other = await api.pointer(amount="10000")
    fourth = await withdraw_request(api, other)
    status, body = await callback(api, request, k1=fourth["k1"], pr=fine)  # another pointer's k1
    assert status == 400 and "unknown k1" in body["reason"]
    assert (await (await api.client.get(f"/{token}/payouts")).json())["items"] == []
    unknown = await api.client.get("/no-such-pointer/lnurlw")
    assert unknown.status == 400 and (await unknown.json())["status"] == "ERROR"


async def test_nothing_available_answers_zero_bounds(api: PayoutApi, bridge: Bridge) -> None:
    token = await api.pointer(amount="10000")
    response = await api.client.post(
        f"/{token}/payouts",
        json={
            "destination": factories.address(Network.REGTEST, "p2wpkh"),
            "priceAmount": "10000",
            "autoApprove": True,
        },
    )
    assert response.status == 422  # no on-chain backend on this server
    cancel = await api.client.delete(f"/pointers/{token}", headers=api.auth())
    assert cancel.status == 200
    request = await withdraw_request(api, token)
    assert (request["minWithdrawable"], request["maxWithdrawable"]) == (0, 0)


async def test_liquidity_caps_the_maximum(api: PayoutApi, bridge: Bridge, ln_node: FakeLnd) -> None:
    ln_node.state.outbound_msat = 5_000_000
    token = await api.pointer(amount="10000")
    request = await withdraw_request(api, token)
    assert request["maxWithdrawable"] == 5_000_000


async def test_background_workers_pay_without_being_asked(
    db: Database, bridge_clock: ManualClock, ln_node: FakeLnd
) -> None:
    config = replace(harness.settings(lnd=ln_node), background=True, batch_interval=timedelta(hours=1))
    async with harness.running(config, db, bridge_clock) as bridge, serve(db, bridge_clock, bridge) as api:
        token = await api.pointer(amount="10000")
        request = await withdraw_request(api, token)
        text, payment_hash = wallet_invoice(ln_node, "background", 2_000_000)
        status, _ = await callback(api, request, k1=request["k1"], pr=text)
        assert status == 200
        for _ in range(100):
            if ln_node.settled(payment_hash):
                break
            await asyncio.sleep(0.05)
        assert ln_node.settled(payment_hash) == 1
        for _ in range(100):
            items, _ = await store.list_payouts(db, store.PayoutFilter(), offset=0, limit=1)
            if items[0].status == "SENT":
                break
            await asyncio.sleep(0.05)
        assert items[0].status == "SENT"


def test_lnurl_encoding_round_trips() -> None:
    url = "https://pull.example/abc/lnurlw"
    encoded = encode_lnurl(url)
    assert encoded.startswith("LNURL1")
    hrp, _, rest = encoded.lower().rpartition("1")
    values = [bech32.CHARSET.find(char) for char in rest]
    assert hrp == "lnurl" and bech32.bech32_verify_checksum(hrp, values) == bech32.Encoding.BECH32
    decoded = bech32.convertbits(values[:-6], 5, 8, False)
    assert decoded is not None and bytes(decoded).decode() == url
