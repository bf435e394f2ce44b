"""BIP 21 payment URIs (`bitcoin:<address>?amount=…&lightning=…`), syntax only.

The address and the Lightning invoice are returned as text for the caller to validate. Parameter names
are matched case-insensitively because unified QR codes upper-case the whole URI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from spsp_pull.bridge.amounts import MAX_MONEY_SAT, SAT_PER_BTC
from spsp_pull.domain.errors import InputError

SCHEME = "bitcoin:"
_AMOUNT = re.compile(r"([0-9]*)(?:\.([0-9]*))?")
_KNOWN = frozenset({"amount", "label", "message", "lightning"})


@dataclass(frozen=True)
class PaymentUri:
    address: str | None
    amount_sat: int | None
    lightning: str | None


def _invalid(detail: str) -> InputError:
    return InputError("invalid-destination", detail, field="destination")


def is_payment_uri(text: str) -> bool:
    return text.strip()[: len(SCHEME)].lower() == SCHEME


def parse_payment_uri(text: str) -> PaymentUri:
    body = text.strip()[len(SCHEME) :]
    address, _, query = body.partition("?")
    params: dict[str, str] = {}
    for pair in query.split("&") if query else ():
        key, _, value = pair.partition("=")
        key = key.lower()
        if key in params:
            raise _invalid(f"the URI repeats the parameter {key!r}")
        params[key] = unquote(value)
    required_unknown = sorted(key for key in params if key.startswith("req-") and key not in _KNOWN)
    if required_unknown:
        raise _invalid(f"the URI requires parameters this server does not understand: {required_unknown}")
    amount = params.get("amount")
    lightning = params.get("lightning") or None
    if not address and lightning is None:
        raise _invalid("the URI names neither an address nor a Lightning invoice")
    return PaymentUri(address or None, _amount_sat(amount) if amount is not None else None, lightning)


def _amount_sat(text: str) -> int:
    """Exact satoshis of a decimal BTC amount; fractions of a satoshi are refused, never rounded."""
    match = _AMOUNT.fullmatch(text)
    if match is None or not text.strip("."):
        raise _invalid("the URI amount must be a decimal number of bitcoin")
    whole, fraction = match.group(1), match.group(2) or ""
    significant = fraction.rstrip("0")
    if len(significant) > 8:
        raise _invalid("the URI amount has a fraction of a satoshi")
    whole = whole.lstrip("0")
    if len(whole) > len(str(MAX_MONEY_SAT // SAT_PER_BTC)):
        raise _invalid("the URI amount exceeds the bitcoin supply")
    sat = int(whole or "0") * SAT_PER_BTC + int(significant.ljust(8, "0"))
    if not 0 < sat <= MAX_MONEY_SAT:
        raise _invalid("the URI amount must be positive and within the bitcoin supply")
    return sat
