"""An offer: a validated destination, an amount on either side, a locked rate and the resulting debit.

Pure given the rate: the caller fetches the rate (`rate_for`) and the network; `make_offer` does the
rest and returns the row to store. Payouts are quoted in the pointer's own asset, so a pointer in BTC
has the rate 1 and only the scale changes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from spsp_pull.bridge.amounts import Amount, DebitUnits, Rail
from spsp_pull.bridge.destinations import (
    LightningDestination,
    OnchainDestination,
    check_transfer,
    parse_destination,
    rail_of,
    resolve_amount,
)
from spsp_pull.bridge.inputs import OfferRequest
from spsp_pull.bridge.invoice import InvoicePolicy
from spsp_pull.bridge.network import Network
from spsp_pull.bridge.quote import Asset, FeePolicy, Quote, quote
from spsp_pull.domain.errors import InputError
from spsp_pull.rates import RateSource, RateUnavailable
from spsp_pull.store.payouts import NewPayout
from spsp_pull.store.records import PointerRecord

BITCOIN = "BTC"


@dataclass(frozen=True)
class OfferTerms:
    """What an offer is made under: the chain, the fees per rail, the invoice policy, its lifetime."""

    network: Network
    fees: dict[Rail, FeePolicy]
    invoice_policy: InvoicePolicy
    ttl: timedelta
    rails: frozenset[Rail]


async def rate_for(rates: RateSource, asset_code: str) -> Decimal:
    """The price of one bitcoin in the asset's major unit; InputError `rate-unavailable` if unknown."""
    try:
        return await rates.rate(BITCOIN, asset_code)
    except RateUnavailable:
        raise InputError(
            "rate-unavailable", f"No BTC/{asset_code} exchange rate is configured.", status=503
        ) from None


def asset_of(pointer: PointerRecord) -> Asset:
    return Asset(pointer.terms.asset_code, pointer.terms.asset_scale)


def make_offer(
    pointer: PointerRecord,
    request: OfferRequest,
    *,
    terms: OfferTerms,
    rate: Decimal,
    now: datetime,
    created_by: str,
) -> NewPayout:
    if request.price_currency is not None and request.price_currency != pointer.terms.asset_code.upper():
        raise InputError(
            "currency-mismatch",
            f"this pointer pays in {pointer.terms.asset_code}, not {request.price_currency}",
            field="priceCurrency",
        )
    # With one rail only, a unified BIP 21 URI (address and invoice) resolves to that rail.
    only = next(iter(terms.rails)) if len(terms.rails) == 1 else None
    destination = parse_destination(
        request.destination, terms.network, now=now, rail=request.rail or only, policy=terms.invoice_policy
    )
    rail = rail_of(destination)
    if rail not in terms.rails:
        raise InputError(
            "unsupported-method", f"this server has no {rail} backend", status=422, field="destination"
        )
    offered = offer_quote(resolve_amount(destination, request.amount), rail, pointer, terms, rate, now)
    check_transfer(destination, offered.transfer_msat)
    onchain = destination if isinstance(destination, OnchainDestination) else None
    lightning = destination if isinstance(destination, LightningDestination) else None
    return NewPayout(
        public_id=str(uuid.uuid4()),
        pointer_id=pointer.id,
        account_id=pointer.account_id,
        created_by=created_by,
        rail=rail.value,
        destination=request.destination,
        address=onchain.address if onchain else None,
        script_pubkey=onchain.script_pubkey.hex() if onchain else None,
        invoice=lightning.invoice if lightning else None,
        payment_hash=lightning.payment_hash.hex() if lightning else None,
        amount_side="price" if isinstance(request.amount, DebitUnits) else "transfer",
        transfer_msat=offered.transfer_msat,
        fee_msat=offered.fee_msat,
        debit=offered.debit_units,
        asset_code=pointer.terms.asset_code,
        asset_scale=pointer.terms.asset_scale,
        rate=str(rate),
        expires_at=offered.expires_at,
        notification_url=request.notification_url,
        notification_secret=request.notification_secret,
        comment=request.comment,
        metadata=request.metadata,
    )


def offer_quote(
    amount: Amount, rail: Rail, pointer: PointerRecord, terms: OfferTerms, rate: Decimal, now: datetime
) -> Quote:
    return quote(
        amount, rail=rail, asset=asset_of(pointer), rate=rate, fees=terms.fees[rail], now=now, ttl=terms.ttl
    )
