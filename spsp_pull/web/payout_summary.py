"""A payout in words for the payee: what arrives, what it costs, the locked rate, the state."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from spsp_pull.bridge.amounts import MSAT_PER_SAT, Rail
from spsp_pull.bridge.views import btc_text
from spsp_pull.domain.states import PayoutStatus
from spsp_pull.store.payouts import PayoutRecord
from spsp_pull.web.money import format_money
from spsp_pull.web.words import moment

STATUS_TEXT = {
    PayoutStatus.NEW: "Offer: waiting for your confirmation",
    PayoutStatus.QUEUED: "Confirmed: waiting to be sent",
    PayoutStatus.IN_FLIGHT: "Being sent",
    PayoutStatus.SENT: "Sent",
    PayoutStatus.CONFIRMED: "Confirmed on the blockchain",
    PayoutStatus.EXPIRED: "Expired: the offer was not confirmed in time",
    PayoutStatus.CANCELLED: "Cancelled",
    PayoutStatus.FAILED: "Failed: nothing was paid",
}
# States that change by themselves (an on-chain payout goes on from SENT to CONFIRMED; a Lightning one ends).
MOVING = frozenset({PayoutStatus.QUEUED, PayoutStatus.IN_FLIGHT})
METHOD_TEXT = {Rail.ONCHAIN: "Bitcoin on-chain", Rail.LIGHTNING: "Lightning"}


@dataclass(frozen=True, slots=True)
class PayoutSummary:
    public_id: str
    status: str  # PayoutStatus value
    status_text: str
    method: str
    destination: str
    receive: str  # "0.00100000 BTC (100,000 sat)"
    fee: str  # "250 sat"
    charged: str  # what the pull payment is charged, fee included: "51.25 USD"
    rate: str  # "1 BTC = 50,000 USD"
    created: str
    expires: str
    sent: str | None
    proof: str | None  # txid or payment preimage
    failure: str | None
    awaits_confirmation: bool  # NEW: the payee may confirm or cancel
    moving: bool  # the state will change by itself: the page follows it


def payout_summary(record: PayoutRecord) -> PayoutSummary:
    status = PayoutStatus(record.status)
    rail = Rail(record.rail)
    sent_proof = record.txid if rail is Rail.ONCHAIN else record.preimage
    return PayoutSummary(
        public_id=record.public_id,
        status=status.value,
        status_text=STATUS_TEXT[status],
        method=METHOD_TEXT[rail],
        destination=record.destination,
        receive=f"{btc_text(record.transfer_msat)} BTC ({_sats(record.transfer_msat)})",
        fee=_sats(record.fee_msat),
        charged=format_money(record.debit, record.asset_scale, record.asset_code),
        rate=f"1 BTC = {Decimal(record.rate):,f} {record.asset_code}",
        created=moment(record.created_at),
        expires=moment(record.expires_at),
        sent=None if record.sent_at is None else moment(record.sent_at),
        proof=sent_proof,
        failure=record.failure_reason,
        awaits_confirmation=status is PayoutStatus.NEW,
        moving=status in MOVING or (status is PayoutStatus.SENT and rail is Rail.ONCHAIN),
    )


def _sats(msat: int) -> str:
    sats, rest = divmod(msat, MSAT_PER_SAT)
    return f"{sats:,} sat" if rest == 0 else f"{msat:,} msat"
