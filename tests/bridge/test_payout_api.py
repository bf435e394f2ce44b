"""The payout API over HTTP on 127.0.0.1 (aiohttp TestServer), with the bridge driving the fake nodes."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web

from spsp_pull.bridge.network import Network
from spsp_pull.bridge.service import Bridge
from spsp_pull.domain.clock import ManualClock
from spsp_pull.domain.outbound_targets import TargetPolicy, parse_networks
from spsp_pull.store import accounts, outbox, pointers
from spsp_pull.store.database import Database
from spsp_pull.webhooks import SIGNATURE_HEADER, WebhookSettings, WebhookWorker
from tests.bridge import factories, harness
from tests.bridge.api_harness import PayoutApi, serve
from tests.bridge.fakes.fake_bitcoind import FakeBitcoind
from tests.bridge.fakes.fake_lnd import FakeLnd
from tests.fake_resolver import FakeResolver

ADDRESS = factories.address(Network.REGTEST, "p2wpkh", "api")
OTHER_ADDRESS = factories.address(Network.REGTEST, "p2tr", "api other")
MAINNET = factories.address(Network.MAIN, "p2wpkh", "api")


def problem(body: dict[str, Any], code: str) -> None:
    assert body["code"] == code, body


async def test_owner_offer_approve_batch_and_proof(
    api: PayoutApi, bridge: Bridge, bitcoind: FakeBitcoind
) -> None:
    token = await api.pointer()
    status, offer = await api.post(
        f"/pointers/{token}/payouts",
        {"destination": ADDRESS, "transferAmount": "0.001", "comment": "Refund for a faulty product"},
    )
    assert status == 201, offer
    assert offer["status"] == "NEW" and offer["method"] == "BTC-CHAIN"
    assert offer["transferAmount"] == "0.00100000" and offer["transferAmountSat"] == "100000"
    assert offer["transferAmountMsat"] == "100000000" and offer["feeMsat"] == "500000"
    assert (
        offer["priceAmount"] == "5025"
        and offer["priceCurrency"] == "USD"
        and offer["exchangeRate"] == "50000"
    )
    assert offer["expirationTime"] == "2025-03-01T12:15:00.000Z" and offer["proof"] is None

    payout = f"/pointers/{token}/payouts/{offer['payoutId']}"
    status, queued = await api.post(f"{payout}/approve")
    assert status == 200 and queued["status"] == "QUEUED" and queued["approvedBy"] == "owner"
    status, pointer = await api.get(f"/pointers/{token}")
    assert pointer["balanceAvailable"] == str(100_000 - 5025) and pointer["balanceReserved"] == "5025"

    await bridge.run_batch()
    bitcoind.mine()
    await bridge.reconcile()
    status, shown = await api.get(payout)
    assert status == 200 and shown["status"] == "CONFIRMED"
    assert shown["proof"]["type"] == "onchain" and shown["proof"]["confirmations"] == 1
    assert shown["btcTxId"] == shown["proof"]["txid"] and isinstance(shown["proof"]["vout"], int)

    status, events = await api.get(f"{payout}/events")
    assert [e["toStatus"] for e in events["items"] if e["toStatus"]] == [
        "NEW",
        "QUEUED",
        "IN_FLIGHT",
        "SENT",
        "CONFIRMED",
    ]
    status, pointer = await api.get(f"/pointers/{token}")
    assert pointer["balanceAvailable"] == str(100_000 - 5025) and pointer["balanceReserved"] == "0"
    assert [p["kind"] for p in pointer["pulls"]] == ["payout"]


async def test_payee_uses_the_pointer_as_capability(api: PayoutApi, bridge: Bridge) -> None:
    token = await api.pointer()
    response = await api.client.post(
        f"/{token}/payouts", json={"destination": ADDRESS, "priceAmount": "10000", "autoApprove": True}
    )
    assert response.status == 201
    created = await response.json()
    assert (
        created["status"] == "QUEUED"
        and created["createdBy"] == "payee"
        and created["priceAmount"] == "10000"
    )
    assert created["transferAmount"] == "0.00199500"
    listed = await (await api.client.get(f"/{token}/payouts")).json()
    assert [p["payoutId"] for p in listed["items"]] == [created["payoutId"]]
    unknown = await api.client.get("/no-such-pointer/payouts")
    assert unknown.status == 404
    # The owner sees it too, and across its pointers.
    status, mine = await api.get(f"/payouts?pointer={token}")
    assert status == 200 and mine["paginationInfo"]["itemsCount"] == 1
    status, others = await api.get("/payouts", key=api.other_key)
    assert others["items"] == []
    status, _ = await api.get(f"/pointers/{token}/payouts", key=api.other_key)
    assert status == 404


async def test_list_filters_and_pagination(api: PayoutApi, bridge: Bridge) -> None:
    token = await api.pointer()
    ids = []
    for index in range(5):
        destination = ADDRESS if index % 2 == 0 else OTHER_ADDRESS
        status, body = await api.post(
            f"/pointers/{token}/payouts",
            {
                "destination": destination,
                "transferAmount": 1000 + index,
                "transferCurrency": "SAT",
                "autoApprove": index < 3,
            },
        )
        assert status == 201, body
        ids.append(body["payoutId"])
        api.clock.advance(timedelta(minutes=1))
    await bridge.run_batch()
    base = f"/pointers/{token}/payouts"
    status, page = await api.get(f"{base}?limit=2&offset=1")
    assert [p["payoutId"] for p in page["items"]] == [ids[3], ids[2]]
    assert page["paginationInfo"] == {"itemsCount": 5, "limit": 2, "offset": 1}
    status, new = await api.get(f"{base}?status=new")
    assert {p["payoutId"] for p in new["items"]} == set(ids[3:])
    status, sent = await api.get(f"{base}?status=SENT,CONFIRMED")
    txid = sent["items"][0]["btcTxId"]
    assert len(sent["items"]) == 3
    status, by_txid = await api.get(f"{base}?btcTxId={txid}")
    assert by_txid["paginationInfo"]["itemsCount"] == 3
    status, by_address = await api.get(f"{base}?address={ADDRESS.upper()}")
    assert {p["payoutId"] for p in by_address["items"]} == {ids[0], ids[2], ids[4]}
    status, window = await api.get(f"{base}?timeFrom=2025-03-01T12:01:00Z&timeTo=2025-03-01T12:02:00Z")
    assert {p["payoutId"] for p in window["items"]} == {ids[1], ids[2]}
    status, bad = await api.get(f"{base}?status=PAID")
    assert status == 400 and bad["code"] == "invalid-status"
    status, bad = await api.get(f"{base}?txid=nothex")
    assert status == 400


async def test_lightning_payout_with_preimage_proof(api: PayoutApi, bridge: Bridge, ln_node: FakeLnd) -> None:
    token = await api.pointer()
    preimage = factories.preimage("api ln")
    payment_hash = ln_node.expect(preimage)
    invoice = factories.invoice(
        Network.REGTEST,
        timestamp=int(factories.NOW.timestamp()),
        amount_msat=2_000_000,
        payment_preimage=preimage,
    )
    status, created = await api.post(
        f"/pointers/{token}/payouts", {"destination": invoice, "autoApprove": True}
    )
    assert status == 201 and created["method"] == "BTC-LN" and created["transferAmountMsat"] == "2000000"
    assert created["paymentHash"] == payment_hash.hex() and "transferAmountSat" not in created
    await bridge.dispatch_lightning()
    status, shown = await api.get(f"/pointers/{token}/payouts/{created['payoutId']}")
    assert shown["status"] == "SENT"
    assert shown["proof"] == {
        "type": "lightning",
        "paymentHash": payment_hash.hex(),
        "preimage": preimage.hex(),
        "routingFeeMsat": "1000",
    }
    status, found = await api.get(f"/payouts?paymentHash={payment_hash.hex()}")
    assert found["paginationInfo"]["itemsCount"] == 1


async def test_refusals_change_nothing(api: PayoutApi, bridge: Bridge) -> None:
    token = await api.pointer(amount="10000")
    base = f"/pointers/{token}/payouts"
    status, body = await api.post(base, {"destination": MAINNET, "priceAmount": "100"})
    assert status == 422 and body["code"] == "wrong-network" and body["field"] == "destination"
    status, body = await api.post(base, {"destination": ADDRESS, "amount": "100"})
    assert status == 422 and body["code"] == "unknown-field"
    status, body = await api.post(base, {"destination": ADDRESS, "priceAmount": "1", "transferAmount": "0.1"})
    assert status == 422 and body["code"] == "amount-conflict"
    status, body = await api.post(base, {"destination": ADDRESS, "transferAmount": "0.000000001"})
    assert status == 422 and body["code"] == "invalid-amount"
    status, body = await api.post(base, {"destination": ADDRESS, "transferAmount": "0.000001"})
    assert status == 422 and body["code"] == "amount-too-small"
    status, body = await api.post(base, {"destination": ADDRESS, "priceAmount": "20000"})
    assert status == 409 and body["code"] == "overdraft"
    status, body = await api.post(
        base, {"destination": ADDRESS, "priceAmount": "100", "priceCurrency": "EUR"}
    )
    assert status == 422 and body["code"] == "currency-mismatch"
    status, body = await api.post(base, {"destination": ADDRESS})
    assert status == 422 and body["code"] == "amount-required"
    response = await api.client.post(base, json={"destination": ADDRESS, "priceAmount": "100"})
    assert response.status == 401
    status, listed = await api.get(base)
    assert listed["items"] == []
    status, body = await api.post(f"{base}/6c1d2f0e-0000-4000-8000-000000000000/approve")
    assert status == 404 and body["code"] == "payout-not-found"


async def test_late_approval_and_cancel(api: PayoutApi, bridge: Bridge) -> None:
    token = await api.pointer()
    base = f"/pointers/{token}/payouts"
    status, offer = await api.post(base, {"destination": ADDRESS, "priceAmount": "1000"})
    api.clock.advance(timedelta(minutes=15))
    status, body = await api.post(f"{base}/{offer['payoutId']}/approve")
    assert status == 409 and body["code"] == "offer-expired"
    status, shown = await api.get(f"{base}/{offer['payoutId']}")
    assert shown["status"] == "NEW"
    await bridge.expire_offers()
    status, shown = await api.get(f"{base}/{offer['payoutId']}")
    assert shown["status"] == "EXPIRED"

    status, queued = await api.post(
        base, {"destination": ADDRESS, "priceAmount": "1000", "autoApprove": True}
    )
    status, cancelled = await api.post(f"/{token}/payouts/{queued['payoutId']}/cancel")
    assert status == 200 and cancelled["status"] == "CANCELLED"
    status, again = await api.post(f"{base}/{queued['payoutId']}/cancel")
    assert status == 409 and again["code"] == "invalid-state"
    await harness.assert_reservations_closed(api.context.db)


async def test_idempotency_keys(api: PayoutApi, bridge: Bridge) -> None:
    token = await api.pointer()
    body = {"destination": ADDRESS, "priceAmount": "1000", "autoApprove": True}
    first = await api.client.post(f"/{token}/payouts", json=body, headers={"Idempotency-Key": "k-1"})
    again = await api.client.post(f"/{token}/payouts", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status == again.status == 201
    assert await first.json() == await again.json() and again.headers["Idempotent-Replayed"] == "true"
    other = await api.client.post(
        f"/{token}/payouts", json={**body, "priceAmount": "2000"}, headers={"Idempotency-Key": "k-1"}
    )
    assert other.status == 409 and (await other.json())["code"] == "idempotency-key-reused"
    # The owner's keys live apart from the payee's.
    status, owned = await api.post(f"/pointers/{token}/payouts", body, **{"Idempotency-Key": "k-1"})
    assert status == 201 and owned["payoutId"] != (await first.json())["payoutId"]
    status, listed = await api.get(f"/pointers/{token}/payouts")
    assert listed["paginationInfo"]["itemsCount"] == 2


async def test_fifty_concurrent_approvals_never_over_reserve(api: PayoutApi, bridge: Bridge) -> None:
    token = await api.pointer(amount="10000")
    base = f"/{token}/payouts"
    offers = []
    for _ in range(50):
        response = await api.client.post(base, json={"destination": ADDRESS, "priceAmount": "500"})
        offers.append((await response.json())["payoutId"])
    responses = await asyncio.gather(*(api.client.post(f"{base}/{pid}/approve") for pid in offers))
    statuses = [r.status for r in responses]
    assert statuses.count(200) == 20 and statuses.count(409) == 30
    _status, pointer = await api.get(f"/pointers/{token}")
    assert pointer["balanceAvailable"] == "0" and pointer["balanceReserved"] == "10000"


async def test_limits_endpoint(api: PayoutApi, bridge: Bridge) -> None:
    token = await api.pointer(amount="10000")
    await api.post(
        f"/pointers/{token}/payouts", {"destination": ADDRESS, "priceAmount": "2500", "autoApprove": True}
    )
    response = await api.client.get(f"/{token}/payout-limits")
    limits = await response.json()
    assert response.status == 200
    assert {k: limits[k] for k in ("used", "available", "minPayoutAmount", "currency")} == {
        "used": "2500",
        "available": "7500",
        "minPayoutAmount": "1",  # 1 sat + 1.005 sat fee over Lightning is 0.1 cent, rounded up
        "currency": "USD",
    }
    assert limits["methods"] == [
        {"method": "BTC-LN", "minPayoutAmount": "1"},
        {"method": "BTC-CHAIN", "minPayoutAmount": "40"},
    ]
    assert (
        limits["lnurl"].startswith("LNURL1") and limits["lnurlw"] == f"lnurlw://pull.example/{token}/lnurlw"
    )
    status, in_btc = await api.get(f"/pointers/{token}/payout-limits?currency=BTC")
    assert in_btc["available"] == "0.00150000" and in_btc["currency"] == "BTC"
    status, bad = await api.get(f"/pointers/{token}/payout-limits?currency=EUR")
    assert status == 400 and bad["code"] == "unsupported-currency"


async def test_disabled_bridge_answers_503(db: Database, bridge_clock: ManualClock) -> None:
    async with serve(db, bridge_clock, None) as api:
        token = await api.pointer()
        status, body = await api.post(f"/pointers/{token}/payouts", {"destination": ADDRESS})
        assert status == 503 and body["code"] == "payouts-disabled"


async def test_notifications_are_signed_with_the_payouts_own_secret(api: PayoutApi, bridge: Bridge) -> None:
    """The payee's notificationUrl gets messages signed with a secret of this payout alone, shown once in
    the create response: not the account's secret, and not in any later view of the payout."""
    received: list[tuple[dict[str, str], bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        token = await api.pointer()
        url = f"http://payee-hooks.example:{port}/hook"  # resolved by the fake resolver to 127.0.0.1
        status, created = await api.post(
            f"/{token}/payouts",
            {"destination": ADDRESS, "priceAmount": "1000", "autoApprove": True, "notificationUrl": url},
        )
        assert status == 201
        payout_secret = created["notificationSecret"]
        await bridge.run_batch()
        record = await pointers.find_by_token(api.context.db, token)
        assert record is not None
        events = [event for _, event, _ in await outbox.messages_for_pointer(api.context.db, record.id)]
        assert events == ["payout.created", "payout.approved", "payout.in_flight", "payout.sent"]
        worker = WebhookWorker(
            api.context.db,
            api.clock,
            WebhookSettings(targets=TargetPolicy(parse_networks(["127.0.0.0/8"]))),
            resolver=FakeResolver({"payee-hooks.example": ["127.0.0.1"]}),
        )
        async with worker:
            assert await worker.deliver_due() == 4
        _, shown = await api.get(f"/{token}/payouts/{created['payoutId']}")
        assert "notificationSecret" not in shown
        account_secret = (
            await accounts.webhook_secret(api.context.db, record.account_id, api.clock.now())
        ).secret
    finally:
        await runner.cleanup()
    bodies = [json.loads(body) for _, body in received]
    assert sorted(b["type"] for b in bodies) == [
        "payout.approved",
        "payout.created",
        "payout.in_flight",
        "payout.sent",
    ]
    assert all(b["data"]["payout"]["payoutId"] == created["payoutId"] for b in bodies)
    assert all(
        b["id"] == headers["Webhook-Id"] for headers, b in zip((h for h, _ in received), bodies, strict=True)
    )
    for headers, body in received:
        assert "Authorization" not in headers
        stamp, mac = (part.split("=", 1)[1] for part in headers[SIGNATURE_HEADER].split(","))
        signed = f"{headers['Webhook-Id']}.{stamp}.".encode() + body
        assert hmac.compare_digest(mac, hmac.new(payout_secret.encode(), signed, hashlib.sha256).hexdigest())
        assert mac != hmac.new(account_secret.encode(), signed, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    "url",
    ["http://0x7f000001:6000/admin", "http://127.1/", "http://[::ffff:10.0.0.1]/", "http://a.localhost/"],
)
async def test_internal_notification_urls_are_refused_at_creation(api: PayoutApi, url: str) -> None:
    token = await api.pointer()
    status, problem = await api.post(
        f"/{token}/payouts", {"destination": ADDRESS, "priceAmount": "1000", "notificationUrl": url}
    )
    assert (status, problem["code"], problem["field"]) == (
        422,
        "notification-target-refused",
        "notificationUrl",
    )
    _, page = await api.get(f"/{token}/payouts")
    assert page["items"] == []
