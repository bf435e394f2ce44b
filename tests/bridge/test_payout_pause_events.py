"""Payouts and the payer's pause: offers and approvals are refused while paused (409 pointer-paused, nothing
changed) and allowed after the resume; the payout's states, the pause and the low allowance reach the
pointer's webhook as events."""

from __future__ import annotations

import json
from typing import Any

from spsp_pull.bridge.network import Network
from spsp_pull.bridge.service import Bridge
from spsp_pull.store import models, outbox, pointers
from tests.bridge import factories
from tests.bridge.api_harness import PayoutApi

ADDRESS = factories.address(Network.REGTEST, "p2wpkh", "paused")
HOOK = "https://wallet.example/hooks"
PAUSED = "paused: the payer paused this pointer until the payer resumes it"


async def set_paused(api: PayoutApi, token: str, paused: bool) -> None:
    response = await api.client.patch(f"/pointers/{token}", json={"paused": paused}, headers=api.auth())
    assert response.status == 200, await response.text()


async def messages(api: PayoutApi, token: str) -> list[tuple[str, dict[str, Any]]]:
    record = await pointers.find_by_token(api.context.db, token)
    assert record is not None
    found = []
    async with api.context.db.read() as session:
        for message_id, event, _ in await outbox.messages_for_pointer(api.context.db, record.id):
            row = await session.get_one(models.WebhookMessage, message_id)
            found.append((event, {**json.loads(row.body), "_to": row.url}))
    return found


async def test_a_paused_pointer_pays_nothing_out_until_resumed(api: PayoutApi, bridge: Bridge) -> None:
    token = await api.pointer(amount="6000", webhook=HOOK)
    offer_body = {"destination": ADDRESS, "transferAmount": "0.001"}
    status, offer = await api.post(f"/pointers/{token}/payouts", offer_body)
    assert status == 201, offer
    approve = f"/pointers/{token}/payouts/{offer['payoutId']}/approve"

    await set_paused(api, token, True)
    status, problem = await api.post(approve)
    assert (status, problem["code"], problem["detail"]) == (409, "pointer-paused", PAUSED)
    status, problem = await api.post(f"/pointers/{token}/payouts", offer_body)
    assert (status, problem["code"]) == (409, "pointer-paused")
    status, shown = await api.get(f"/pointers/{token}/payouts/{offer['payoutId']}")
    assert shown["status"] == "NEW"
    status, pointer = await api.get(f"/pointers/{token}")
    assert (pointer["balanceReserved"], pointer["state"]) == ("0", "paused")
    lnurl = await api.client.get(f"/{token}/lnurlw")
    assert (lnurl.status, await lnurl.json()) == (400, {"status": "ERROR", "reason": PAUSED})

    await set_paused(api, token, False)
    status, queued = await api.post(approve)
    assert (status, queued["status"]) == (200, "QUEUED")
    await bridge.run_batch()
    status, pointer = await api.get(f"/pointers/{token}")
    assert (pointer["balanceTotal"], pointer["balanceAvailable"]) == ("5025", "975")

    sent = await messages(api, token)
    assert [event for event, _ in sent] == [
        "pointer.created",
        "payout.created",
        "pointer.paused",
        "pointer.resumed",
        "payout.approved",
        "payout.in_flight",
        "payout.sent",
        "allowance.low",  # 5025 of 6000 used
    ]
    assert all(body["_to"] == HOOK for _, body in sent)
    payout_events = [body for event, body in sent if event.startswith("payout.")]
    assert all(
        body["token"] == token and body["payout"]["payoutId"] == offer["payoutId"] for body in payout_events
    )
    assert sent[2][1]["state"] == "paused" and sent[3][1]["state"] == "active"
    assert (sent[-1][1]["used"], sent[-1][1]["available"]) == ("5025", "975")
