"""LNURL-withdraw (LUD-03) for a pointer: the `withdrawRequest` a wallet reads, and its callback.

Each GET hands out a fresh single-use `k1` (kept only as a hash) that fixes the rate and the bounds for
a few minutes, like an offer. The callback (`k1` + `pr`) checks the invoice (network, expiry, an amount
within the bounds), makes an auto-approved Lightning payout through the ordinary flow, answers
`{"status": "OK"}` and the payment follows asynchronously. A pointer with nothing available answers
`minWithdrawable = maxWithdrawable = 0` (LUD-03), never an error. Errors are
`{"status": "ERROR", "reason": …}` with HTTP 400.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from decimal import Decimal

from embit import bech32

from spsp_pull.bridge.amounts import DebitUnits, Rail
from spsp_pull.bridge.limits import SMALLEST_LIGHTNING_MSAT
from spsp_pull.bridge.offers import OfferTerms, offer_quote
from spsp_pull.domain.agreement import balance
from spsp_pull.domain.errors import InputError
from spsp_pull.store import payouts as store
from spsp_pull.store.database import Database
from spsp_pull.store.payouts import LnurlRecord
from spsp_pull.store.records import PointerRecord

TAG = "withdrawRequest"


class LnurlError(Exception):
    """Answered as `{"status": "ERROR", "reason": reason}`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def encode_lnurl(url: str) -> str:
    """The bech32 `LNURL1…` form of a URL (LUD-01), upper case for QR codes."""
    data = bech32.convertbits(url.encode(), 8, 5)
    assert data is not None
    return str(bech32.bech32_encode(bech32.Encoding.BECH32, "lnurl", data)).upper()


def lnurlw_uri(url: str) -> str:
    """The LUD-17 form: the URL with its scheme replaced by `lnurlw`."""
    return "lnurlw://" + url.split("://", 1)[-1]


def k1_digest(k1: str) -> str:
    return hashlib.sha256(k1.encode()).hexdigest()


def withdraw_bounds(
    pointer: PointerRecord, *, terms: OfferTerms, rate: Decimal, now: datetime, outbound_msat: int | None
) -> tuple[int, int]:
    """(minWithdrawable, maxWithdrawable) in msat: the most the available allowance pays for after the
    fee, capped by the node's outbound liquidity; (0, 0) when that is below one satoshi."""
    available = balance(pointer.version, pointer.usage, now, pointer.cancelled_at).available
    most = 0
    if available > 0:
        try:
            most = offer_quote(DebitUnits(available), Rail.LIGHTNING, pointer, terms, rate, now).transfer_msat
        except InputError:
            most = 0
    if outbound_msat is not None:
        most = min(most, outbound_msat)
    if most < SMALLEST_LIGHTNING_MSAT:
        return 0, 0
    return SMALLEST_LIGHTNING_MSAT, most


async def issue_k1(
    db: Database,
    pointer: PointerRecord,
    *,
    rate: Decimal,
    bounds: tuple[int, int],
    now: datetime,
    terms: OfferTerms,
) -> str:
    k1 = secrets.token_hex(32)
    async with db.write() as session:
        store.insert_lnurl(
            session,
            pointer_id=pointer.id,
            k1_hash=k1_digest(k1),
            rate=str(rate),
            min_msat=bounds[0],
            max_msat=bounds[1],
            now=now,
            expires_at=now + terms.ttl,
        )
    return k1


def withdraw_request(
    *, callback: str, k1: str, bounds: tuple[int, int], description: str
) -> dict[str, object]:
    return {
        "tag": TAG,
        "callback": callback,
        "k1": k1,
        "defaultDescription": description,
        "minWithdrawable": bounds[0],
        "maxWithdrawable": bounds[1],
    }


async def redeem_k1(db: Database, pointer: PointerRecord, k1: object, *, now: datetime) -> LnurlRecord:
    """Use up a k1 of this pointer (once, before it expires); LnurlError otherwise."""
    if not isinstance(k1, str) or not 1 <= len(k1) <= 128:
        raise LnurlError("k1 is missing")
    async with db.write() as session:
        row = await store.lock_lnurl(session, k1_digest(k1))
        if row is None or row.pointer_id != pointer.id:
            raise LnurlError("unknown k1")
        if row.used_at is not None:
            raise LnurlError("this k1 was already used")
        if now >= row.expires_at:
            raise LnurlError("this k1 expired; ask for a new withdrawRequest")
        row.used_at = now
        return store.lnurl_record(row)


async def link_payout(db: Database, lnurl_id: int, payout_id: int) -> None:
    async with db.write() as session:
        await store.set_lnurl_payout(session, lnurl_id, payout_id)
