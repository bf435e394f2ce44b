"""`payout-limits`: what a pointer can still pay out now, and the smallest payout, in a currency.

`used` is what the current cycle has used (settled pulls and payouts, and open reservations), `available`
what can be pulled or paid out now (the pointer's SPSP `pull.balance`), `minPayoutAmount` the smallest
debit that buys a payout (the smallest relayable output on-chain, one satoshi over Lightning, plus the
fee). Figures are worked out in the pointer's minor units and converted last: amounts that may be paid
rounded down, the minimum rounded up.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from spsp_pull.bridge.amounts import MSAT_PER_BTC, MSAT_PER_SAT, Msats, Rail
from spsp_pull.bridge.offers import OfferTerms, offer_quote
from spsp_pull.bridge.views import METHODS, btc_text
from spsp_pull.domain.agreement import balance
from spsp_pull.domain.errors import InputError
from spsp_pull.store.records import PointerRecord

SMALLEST_OUTPUT_SAT = 294  # P2WPKH dust at the default relay fee; the smallest of all output types
SMALLEST_LIGHTNING_MSAT = MSAT_PER_SAT
BITCOIN_UNITS = ("BTC", "SAT", "MSAT")


def payout_limits(
    pointer: PointerRecord, *, terms: OfferTerms, rate: Decimal, now: datetime, currency: str | None
) -> dict[str, object]:
    asset = pointer.terms.asset_code
    wanted = (currency or asset).upper()
    if wanted not in (asset.upper(), *BITCOIN_UNITS):
        raise InputError(
            "unsupported-currency",
            f"limits are given in {asset}, BTC, SAT or MSAT, not {currency}",
            status=400,
            field="currency",
        )
    current = balance(pointer.version, pointer.usage, now, pointer.cancelled_at)
    minimum = {rail: _min_debit(pointer, terms, rate, now, rail) for rail in sorted(terms.rails)}
    scale = pointer.terms.asset_scale

    def show(units: int, *, up: bool) -> str:
        if wanted == asset.upper():
            return str(units)
        msat = _msat(units, scale, rate, up=up)
        if wanted == "MSAT":
            return str(msat)
        if wanted == "SAT":
            return str(-(-msat // MSAT_PER_SAT) if up else msat // MSAT_PER_SAT)
        return btc_text(msat)

    return {
        "currency": asset if wanted == asset.upper() else wanted,
        "used": show(current.interval, up=False),
        "available": show(current.available, up=False),
        "minPayoutAmount": show(min(minimum.values()), up=True),
        "methods": [
            {"method": METHODS[rail], "minPayoutAmount": show(units, up=True)}
            for rail, units in minimum.items()
        ],
        "supportedCurrencies": [asset, *BITCOIN_UNITS],
        "exchangeRate": str(rate),
        "priceCurrency": asset,
        "priceScale": scale,
        "cycle": current.cycle,
        "network": terms.network.value,
    }


def _min_debit(pointer: PointerRecord, terms: OfferTerms, rate: Decimal, now: datetime, rail: Rail) -> int:
    smallest = SMALLEST_OUTPUT_SAT * MSAT_PER_SAT if rail is Rail.ONCHAIN else SMALLEST_LIGHTNING_MSAT
    return offer_quote(Msats(smallest), rail, pointer, terms, rate, now).debit_units


def _msat(units: int, scale: int, rate: Decimal, *, up: bool) -> int:
    """`units` of an asset with `scale`, at `rate` asset units per bitcoin, in msat."""
    numerator, denominator = (int(part) for part in rate.as_integer_ratio())
    value, divisor = units * MSAT_PER_BTC * denominator, int(10**scale) * numerator
    return -(-value // divisor) if up else value // divisor
