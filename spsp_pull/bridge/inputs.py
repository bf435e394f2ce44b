"""Reading a payout request body. Every refusal is an `InputError` naming the field; nothing is stored.

```
{"destination": "<address | bitcoin: URI | BOLT 11 invoice>",     (alias: "address")
 "priceAmount": "1000",                 the most to charge, in the pointer's minor units
   or "transferAmount": "0.001", "transferCurrency": "BTC" | "SAT" | "MSAT"   what must arrive
   (neither, when the destination carries its own amount)
 "priceCurrency": "USD",                optional; must be the pointer's asset
 "method": "BTC-CHAIN" | "BTC-LN",      optional (alias "payoutMethodId"); default from the destination
 "autoApprove": false, "notificationUrl": "https://…", "comment": "…", "metadata": {…}}
```
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from spsp_pull.bridge.amounts import MSAT_PER_BTC, Amount, DebitUnits, Msats, Rail, Sats
from spsp_pull.domain.details_input import parse_target_url
from spsp_pull.domain.errors import InputError
from spsp_pull.domain.money import U64_MAX
from spsp_pull.domain.outbound_targets import TargetPolicy

FIELDS = frozenset(
    {
        "destination",
        "address",
        "priceAmount",
        "priceCurrency",
        "transferAmount",
        "transferCurrency",
        "method",
        "payoutMethodId",
        "autoApprove",
        "notificationUrl",
        "comment",
        "metadata",
    }
)
RAILS = {
    "BTC-CHAIN": Rail.ONCHAIN,
    "BTC-LN": Rail.LIGHTNING,
    "ONCHAIN": Rail.ONCHAIN,
    "LIGHTNING": Rail.LIGHTNING,
}
_INTEGER = re.compile(r"[0-9]{1,20}")
_BTC = re.compile(r"([0-9]{1,8})(?:\.([0-9]{1,11}))?")
_MAX_COMMENT = 1000
_MAX_METADATA = 8192


@dataclass(frozen=True)
class OfferRequest:
    destination: str
    amount: Amount | None = None
    price_currency: str | None = None
    rail: Rail | None = None
    auto_approve: bool = False
    notification_url: str | None = None
    notification_secret: str | None = None  # signs the notifications; given once, in the create response
    comment: str | None = None
    metadata: dict[str, object] | None = None


def parse_offer_request(body: dict[str, Any], targets: TargetPolicy) -> OfferRequest:
    """A payout request; `targets` says where its notificationUrl may point."""
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise InputError("unknown-field", f"unknown field(s): {', '.join(unknown)}", field=unknown[0])
    if "destination" in body and "address" in body:
        raise InputError("invalid-destination", "give destination or address, not both", field="destination")
    destination = body.get("destination", body.get("address"))
    if not isinstance(destination, str) or not destination.strip():
        raise InputError("invalid-destination", "destination is required", field="destination")
    return OfferRequest(
        destination=destination.strip(),
        amount=_amount(body),
        price_currency=_currency(body.get("priceCurrency")),
        rail=_rail(body),
        auto_approve=_flag(body.get("autoApprove", False), "autoApprove"),
        notification_url=notification_url(body.get("notificationUrl"), targets),
        comment=_comment(body.get("comment")),
        metadata=_metadata(body.get("metadata")),
    )


def _amount(body: dict[str, Any]) -> Amount | None:
    price, transfer = body.get("priceAmount"), body.get("transferAmount")
    if price is not None and transfer is not None:
        raise InputError(
            "amount-conflict", "give priceAmount or transferAmount, not both", field="transferAmount"
        )
    if price is not None:
        return DebitUnits(integer(price, "priceAmount"))
    currency = body.get("transferCurrency", "BTC")
    if not isinstance(currency, str) or currency.upper() not in ("BTC", "SAT", "MSAT"):
        raise InputError(
            "unsupported-currency", "transferCurrency is BTC, SAT or MSAT", field="transferCurrency"
        )
    if transfer is None:
        return None
    currency = currency.upper()
    if currency == "SAT":
        return Sats(integer(transfer, "transferAmount"))
    if currency == "MSAT":
        return Msats(integer(transfer, "transferAmount"))
    return Msats(btc_msat(transfer, "transferAmount"))


def integer(value: object, name: str) -> int:
    """A positive u64 given as a JSON integer or an integer string."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InputError("invalid-amount", f"{name} must be an integer string", field=name)
    text = str(value)
    if not _INTEGER.fullmatch(text) or not 0 < int(text) <= U64_MAX:
        raise InputError("amount-out-of-range", f"{name} must be an integer from 1 to {U64_MAX}", field=name)
    return int(text)


def btc_msat(value: object, name: str) -> int:
    """Exact msat of a decimal bitcoin amount (a string, or a JSON number read as an exact decimal);
    more than 11 decimals (a fraction of a millisatoshi) is refused, never rounded."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise InputError("invalid-amount", f"{name} must be a decimal string of bitcoin", field=name)
    text = value if isinstance(value, str) else format(value, "f")
    match = _BTC.fullmatch(text)
    if match is None:
        raise InputError(
            "invalid-amount",
            f"{name} must be a decimal amount of bitcoin with at most 11 decimals",
            field=name,
        )
    msat = int(match.group(1)) * MSAT_PER_BTC + int((match.group(2) or "").ljust(11, "0"))
    if not 0 < msat <= U64_MAX:
        raise InputError("amount-out-of-range", f"{name} must be positive", field=name)
    return msat


def _currency(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 12:
        raise InputError("invalid-currency", "priceCurrency is an asset code", field="priceCurrency")
    return value.upper()


def _rail(body: dict[str, Any]) -> Rail | None:
    value = body.get("method", body.get("payoutMethodId"))
    if value is None:
        return None
    rail = RAILS.get(value.upper()) if isinstance(value, str) else None
    if rail is None:
        raise InputError("unsupported-method", "method is BTC-CHAIN or BTC-LN", field="method")
    return rail


def _flag(value: object, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise InputError("invalid-flag", f"{name} must be true or false", field=name)


def notification_url(value: object, targets: TargetPolicy) -> str | None:
    return parse_target_url(
        value,
        targets,
        field="notificationUrl",
        invalid_code="invalid-notification-url",
        refused_code="notification-target-refused",
    )


def _comment(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > _MAX_COMMENT:
        raise InputError(
            "invalid-comment", f"comment is text of at most {_MAX_COMMENT} characters", field="comment"
        )
    return value


def _metadata(value: object) -> dict[str, object] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InputError("invalid-metadata", "metadata is a JSON object", field="metadata")
    text = json.dumps(value, default=str)
    if len(text) > _MAX_METADATA:
        raise InputError("invalid-metadata", f"metadata is at most {_MAX_METADATA} bytes", field="metadata")
    loaded: dict[str, object] = json.loads(text)
    return loaded
