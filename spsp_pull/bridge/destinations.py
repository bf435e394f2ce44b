"""Where a payout goes: an on-chain address, a BIP 21 URI or a BOLT 11 invoice, checked against a network.

Every refusal is an `InputError` with `field="destination"` and one of the codes `invalid-destination`,
`wrong-network`, `bad-checksum`, `invoice-expired`, `invoice-expiring`, `unknown-required-feature`,
`amount-conflict`, `amount-required` or `amount-too-small`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from spsp_pull.bridge.address import dust_limit_sat, parse_address
from spsp_pull.bridge.amounts import MSAT_PER_SAT, Amount, DebitUnits, Msats, Rail, Sats
from spsp_pull.bridge.bip21 import is_payment_uri, parse_payment_uri
from spsp_pull.bridge.invoice import Invoice, InvoicePolicy, is_invoice, parse_invoice
from spsp_pull.bridge.network import Network
from spsp_pull.domain.clock import utc
from spsp_pull.domain.errors import InputError

_MAX_LENGTH = 8_192
_MIN_LIGHTNING_MSAT = MSAT_PER_SAT
DEFAULT_POLICY = InvoicePolicy()


@dataclass(frozen=True)
class OnchainDestination:
    address: str
    script_pubkey: bytes
    amount_sat: int | None = None

    @property
    def dust_limit_sat(self) -> int:
        return dust_limit_sat(self.script_pubkey)


@dataclass(frozen=True)
class LightningDestination:
    invoice: str
    payment_hash: bytes
    amount_msat: int | None
    expires_at: datetime
    network: Network


Destination: TypeAlias = OnchainDestination | LightningDestination


def _refuse(code: str, detail: str) -> InputError:
    return InputError(code, detail, field="destination")


def parse_destination(
    text: object,
    network: Network,
    *,
    now: datetime,
    rail: Rail | None = None,
    policy: InvoicePolicy = DEFAULT_POLICY,
) -> Destination:
    """Validate a destination for `network`; `rail` restricts it to one rail (None: either).

    A BIP 21 URI carrying both an address and a `lightning=` invoice resolves to Lightning unless `rail`
    asks for on-chain. A URI amount is the transfer amount; with an amountless invoice it becomes the
    amount to pay it with, with a fixed-amount invoice it must be the same amount.
    """
    if not isinstance(text, str) or not text.strip() or len(text) > _MAX_LENGTH:
        raise _refuse("invalid-destination", "the destination must be a Bitcoin address, URI or invoice")
    now = utc(now)
    if is_payment_uri(text):
        return _from_uri(text, network, now, rail, policy)
    if is_invoice(text):
        _require_rail(rail, Rail.LIGHTNING)
        return _lightning(parse_invoice(text, network, now=now, policy=policy), None)
    _require_rail(rail, Rail.ONCHAIN)
    address, script = parse_address(text, network)
    return OnchainDestination(address, script)


def _from_uri(
    text: str, network: Network, now: datetime, rail: Rail | None, policy: InvoicePolicy
) -> Destination:
    uri = parse_payment_uri(text)
    if uri.lightning is not None and rail is not Rail.ONCHAIN:
        invoice = parse_invoice(uri.lightning, network, now=now, policy=policy)
        return _lightning(invoice, uri.amount_sat)
    if uri.address is None:
        raise _refuse("invalid-destination", "the URI has no on-chain address")
    _require_rail(rail, Rail.ONCHAIN)
    address, script = parse_address(uri.address, network)
    return OnchainDestination(address, script, uri.amount_sat)


def _lightning(invoice: Invoice, uri_amount_sat: int | None) -> LightningDestination:
    amount = invoice.amount_msat
    if uri_amount_sat is not None:
        uri_msat = uri_amount_sat * MSAT_PER_SAT
        if amount is not None and amount != uri_msat:
            raise _refuse(
                "amount-conflict", f"the URI asks for {uri_msat} msat but its invoice for {amount} msat"
            )
        amount = uri_msat
    return LightningDestination(
        invoice.text, invoice.payment_hash, amount, invoice.expires_at, invoice.network
    )


def _require_rail(asked: Rail | None, found: Rail) -> None:
    if asked is not None and asked is not found:
        raise _refuse("invalid-destination", f"a {found} destination cannot be paid {asked}")


def rail_of(destination: Destination) -> Rail:
    return Rail.ONCHAIN if isinstance(destination, OnchainDestination) else Rail.LIGHTNING


def resolve_amount(destination: Destination, requested: Amount | None) -> Amount:
    """The amount to quote: the destination's own amount wins; a requested one must agree with it.

    With a fixed destination amount, a requested transfer amount must be the same and a requested price
    amount is refused (both cannot hold at once). Without one, an amount must be requested.
    """
    fixed = _fixed_msat(destination)
    if fixed is None:
        if requested is None:
            raise _refuse("amount-required", "the destination carries no amount, so one must be given")
        return requested
    onchain = rail_of(destination) is Rail.ONCHAIN
    fixed_amount: Amount = Sats(fixed // MSAT_PER_SAT) if onchain else Msats(fixed)
    if requested is None:
        return fixed_amount
    if isinstance(requested, DebitUnits) or requested.msat != fixed:
        raise _refuse("amount-conflict", f"the destination fixes the amount at {fixed} msat")
    return fixed_amount


def check_transfer(destination: Destination, transfer_msat: int) -> None:
    """Refuse a transfer the destination cannot take: below dust on-chain, or not its fixed amount."""
    fixed = _fixed_msat(destination)
    if fixed is not None and transfer_msat != fixed:
        raise _refuse("amount-conflict", f"the destination fixes the amount at {fixed} msat")
    if isinstance(destination, OnchainDestination):
        if transfer_msat % MSAT_PER_SAT:
            raise ValueError("on-chain transfers are whole satoshis")
        limit = destination.dust_limit_sat
        if transfer_msat < limit * MSAT_PER_SAT:
            raise _refuse("amount-too-small", f"outputs below {limit} sat are dust for this address type")
    elif transfer_msat < _MIN_LIGHTNING_MSAT:
        raise _refuse("amount-too-small", f"Lightning payouts start at {_MIN_LIGHTNING_MSAT} msat")


def _fixed_msat(destination: Destination) -> int | None:
    if isinstance(destination, OnchainDestination):
        return None if destination.amount_sat is None else destination.amount_sat * MSAT_PER_SAT
    return destination.amount_msat
