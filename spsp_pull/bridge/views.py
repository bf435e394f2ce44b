"""JSON shapes of payouts, their events and limits. Amounts are strings: pointer units and msat as
integers, bitcoin as exact decimals (`"0.00100000"`); times ISO 8601 UTC with `Z`."""

from __future__ import annotations

from datetime import datetime

from spsp_pull.bridge.amounts import MSAT_PER_BTC, MSAT_PER_SAT, SAT_PER_BTC, Rail
from spsp_pull.domain.clock import isoformat_z
from spsp_pull.store.payouts import PayoutEventRecord, PayoutRecord

METHODS = {Rail.ONCHAIN: "BTC-CHAIN", Rail.LIGHTNING: "BTC-LN"}


def btc_text(msat: int) -> str:
    """Exact bitcoin: 8 decimals for whole satoshis, 11 when there are millisatoshis."""
    if msat % MSAT_PER_SAT == 0:
        sat = msat // MSAT_PER_SAT
        return f"{sat // SAT_PER_BTC}.{sat % SAT_PER_BTC:08d}"
    return f"{msat // MSAT_PER_BTC}.{msat % MSAT_PER_BTC:011d}"


def _time(value: datetime | None) -> str | None:
    return None if value is None else isoformat_z(value)


def payout_view(record: PayoutRecord) -> dict[str, object]:
    """A payout as the API shows it (and as notifications carry it). `priceAmount` is everything the
    pointer is charged, fee included; `transferAmount` is what reaches the destination."""
    rail = Rail(record.rail)
    view: dict[str, object] = {
        "payoutId": record.public_id,
        "status": record.status,
        "method": METHODS[rail],
        "destination": record.destination,
        "address": record.address,
        "invoice": record.invoice,
        "paymentHash": record.payment_hash,
        "priceAmount": str(record.debit),
        "priceCurrency": record.asset_code,
        "priceScale": record.asset_scale,
        "transferAmount": btc_text(record.transfer_msat),
        "transferCurrency": "BTC",
        "transferAmountMsat": str(record.transfer_msat),
        "feeMsat": str(record.fee_msat),
        "exchangeRate": record.rate,
        "amountGivenAs": record.amount_side,
        "createdBy": record.created_by,
        "createdTime": _time(record.created_at),
        "expirationTime": _time(record.expires_at),
        "approvalTime": _time(record.approved_at),
        "approvedBy": record.approved_by,
        "sentTime": _time(record.sent_at),
        "confirmedTime": _time(record.confirmed_at),
        "btcTxId": record.txid,
        "failureReason": record.failure_reason,
        "notificationUrl": record.notification_url,
        "comment": record.comment,
        "metadata": record.metadata,
        "proof": _proof(record),
    }
    if rail is Rail.ONCHAIN:
        view["transferAmountSat"] = str(record.transfer_msat // MSAT_PER_SAT)
    return view


def _proof(record: PayoutRecord) -> dict[str, object] | None:
    if record.rail == Rail.ONCHAIN:
        if record.txid is None:
            return None
        return {
            "type": "onchain",
            "txid": record.txid,
            "vout": record.vout,
            "confirmations": record.confirmations or 0,
        }
    if record.preimage is None:
        return None
    return {
        "type": "lightning",
        "paymentHash": record.payment_hash,
        "preimage": record.preimage,
        "routingFeeMsat": None if record.routing_fee_msat is None else str(record.routing_fee_msat),
    }


def event_view(record: PayoutEventRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "time": isoformat_z(record.at),
        "kind": record.kind,
        "fromStatus": record.from_status,
        "toStatus": record.to_status,
        "detail": record.detail,
    }
