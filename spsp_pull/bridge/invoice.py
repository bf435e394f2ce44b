"""BOLT 11 invoices: decoding with the `bolt11` library plus the checks a payer owes the spec.

The library verifies the signature, the tagged fields and the presence of a payment hash and secret. It
does not refuse unknown required features, sub-millisatoshi amounts, mixed case or expired invoices, nor
tell a checksum typo from other damage; those checks live here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import bolt11
from bolt11.models.features import FeatureState

from spsp_pull.bridge.amounts import MAX_MONEY_SAT, MSAT_PER_SAT
from spsp_pull.bridge.checksum import Checksum, bech32_checksum
from spsp_pull.bridge.network import Network, network_of_invoice_currency
from spsp_pull.domain.errors import InputError

_HRP = re.compile(r"ln(bcrt|bc|tbs|tb)(?:([0-9]+)([munp]?))?")
_LATEST = datetime.max.replace(tzinfo=UTC)

# Even bit of each feature pair a payer through LND understands in an invoice (BOLT 9, context "9"):
# var_onion_optin, payment_secret, basic_mpp, option_payment_metadata.
UNDERSTOOD_FEATURES = frozenset({8, 14, 16, 48})


@dataclass(frozen=True)
class InvoicePolicy:
    """How much life an invoice must have left, and which required features the payer can honour."""

    min_remaining: timedelta = timedelta(minutes=10)
    understood_features: frozenset[int] = field(default=UNDERSTOOD_FEATURES)


@dataclass(frozen=True)
class Invoice:
    text: str
    payment_hash: bytes
    amount_msat: int | None
    expires_at: datetime
    network: Network


def _invalid(code: str, detail: str) -> InputError:
    return InputError(code, detail, field="destination")


def is_invoice(text: str) -> bool:
    return text.strip().lower().startswith(("ln", "lightning:"))


def parse_invoice(text: str, network: Network, *, now: datetime, policy: InvoicePolicy) -> Invoice:
    """A payable invoice for `network` with at least `policy.min_remaining` of life left after `now`."""
    candidate = text.strip()
    if candidate.lower().startswith("lightning:"):
        candidate = candidate[len("lightning:") :]
    if not candidate.isascii() or (candidate != candidate.lower() and candidate != candidate.upper()):
        raise _invalid("invalid-destination", "an invoice must not mix upper and lower case")
    pr = candidate.lower()
    separator = pr.rfind("1")
    hrp = pr[:separator] if separator > 0 else pr
    match = _HRP.fullmatch(hrp)
    if match is None:
        if pr.startswith("lnurl"):
            raise _invalid("invalid-destination", "LNURL is not accepted here; give a BOLT 11 invoice")
        raise _invalid("invalid-destination", "not a BOLT 11 invoice")
    checksum, _ = bech32_checksum(hrp, pr[separator + 1 :], what="invoice")
    if checksum is not Checksum.BECH32:
        raise _invalid("bad-checksum", "an invoice checksum is bech32, not bech32m")
    invoice_network = network_of_invoice_currency(match.group(1))
    if invoice_network is not network:
        raise _invalid("wrong-network", f"the invoice is for {invoice_network}, not {network}")
    _check_amount_text(match.group(2), match.group(3))
    try:
        decoded = bolt11.decode(pr)
    except (bolt11.Bolt11Exception, ValueError, IndexError, KeyError) as exc:
        raise _invalid("invalid-destination", f"malformed invoice: {exc}") from None
    payment_hash = bytes.fromhex(decoded.payment_hash)
    expires_at = _expiry(decoded.date, decoded.expiry)
    if now >= expires_at:
        raise _invalid("invoice-expired", f"the invoice expired at {expires_at.isoformat()}")
    if expires_at - now < policy.min_remaining:
        raise _invalid(
            "invoice-expiring",
            f"the invoice expires at {expires_at.isoformat()}, less than {policy.min_remaining} from now",
        )
    _check_features(decoded, policy.understood_features)
    amount = int(decoded.amount_msat) if decoded.amount_msat is not None else None
    if amount is not None and not 0 < amount <= MAX_MONEY_SAT * MSAT_PER_SAT:
        raise _invalid("invalid-destination", "the invoice amount is out of range")
    return Invoice(pr, payment_hash, amount, expires_at, network)


def _check_amount_text(digits: str | None, multiplier: str | None) -> None:
    # BOLT 11: a pico-bitcoin amount must be a whole number of millisatoshis (its last digit 0).
    if digits is not None and multiplier == "p" and not digits.endswith("0"):
        raise _invalid("invalid-destination", "the invoice amount is a fraction of a millisatoshi")


def _expiry(timestamp: int, expiry_seconds: int) -> datetime:
    try:
        return datetime.fromtimestamp(timestamp, UTC) + timedelta(seconds=expiry_seconds)
    except (OverflowError, OSError, ValueError):
        return _LATEST


def _check_features(decoded: bolt11.Bolt11, understood: frozenset[int]) -> None:
    features = decoded.features
    if features is None:
        return
    unknown = sorted(
        feature.value * 2
        for feature, state in features.feature_list.items()
        if state is FeatureState.required and feature.value * 2 not in understood
    )
    if unknown:
        bits = ", ".join(str(bit) for bit in unknown)
        raise _invalid("unknown-required-feature", f"the invoice requires unknown feature bit(s) {bits}")
